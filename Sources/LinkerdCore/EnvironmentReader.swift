/// A source of configuration variables, such as the process environment, that tests can replace with a dictionary.
public protocol EnvironmentReader: Sendable {
    /// The value of the variable `name` exactly as set, empty included, or nil when it is unset.
    func value(_ name: String) -> String?
}

extension EnvironmentReader {
    /// The value of `name`, or nil when it is unset or empty: an empty variable counts as unset everywhere below.
    public func string(_ name: String) -> String? {
        guard let value = value(name), !value.isEmpty else {
            return nil
        }
        return value
    }

    /// The value of `name`.
    ///
    /// - Throws: ``EnvironmentError/missing(name:)`` when it is unset or empty.
    public func required(_ name: String) throws(EnvironmentError) -> String {
        guard let value = string(name) else {
            throw .missing(name: name)
        }
        return value
    }

    /// The value of `name` converted by `parse`, or nil when it is unset or empty.
    ///
    /// - Throws: ``EnvironmentError/invalid(name:value:reason:)`` when `parse` throws. A ``ParseError`` gives its
    ///   ``ParseError/reason``; any other error gives its description.
    public func parse<Value>(_ name: String, _ parse: (String) throws -> Value) throws(EnvironmentError) -> Value? {
        guard let value = string(name) else {
            return nil
        }
        do {
            return try parse(value)
        } catch let error as ParseError {
            throw .invalid(name: name, value: value, reason: error.reason)
        } catch {
            throw .invalid(name: name, value: value, reason: String(describing: error))
        }
    }

    /// The value of `name` as a Boolean: exactly `true` or `false`.
    public func bool(_ name: String) throws(EnvironmentError) -> Bool? {
        try parse(name) { value throws(ParseError) in
            switch value {
            case "true": return true
            case "false": return false
            default: throw ParseError(value: value, expected: "Boolean", reason: "expected \"true\" or \"false\"")
            }
        }
    }

    /// The value of `name` as a decimal integer with an optional sign, such as `-3` or `42`.
    public func int(_ name: String) throws(EnvironmentError) -> Int? {
        try parse(name) { value throws(ParseError) in
            guard let integer = Int(value) else {
                throw ParseError(
                    value: value,
                    expected: "integer",
                    reason: "expected a decimal integer from \(Int.min) to \(Int.max)"
                )
            }
            return integer
        }
    }

    /// The value of `name` as a port number: decimal digits from 0 to 65535.
    public func port(_ name: String) throws(EnvironmentError) -> UInt16? {
        try parse(name) { value throws(ParseError) in
            guard value.isASCIIDigits, let port = UInt16(value) else {
                throw ParseError(value: value, expected: "port", reason: "expected a port number from 0 to 65535")
            }
            return port
        }
    }

    /// The value of `name` as a Go-style duration, as ``GoDuration/init(parsing:)`` parses it.
    public func duration(_ name: String) throws(EnvironmentError) -> GoDuration? {
        try parse(name, GoDuration.init(parsing:))
    }

    /// The value of `name` as a comma-separated port list, as ``PortList/init(parsing:)`` parses it.
    public func portList(_ name: String) throws(EnvironmentError) -> PortList? {
        try parse(name, PortList.init(parsing:))
    }

    /// The value of `name` as a comma-separated list of networks, as ``CIDR/parseList(_:)`` parses it.
    public func cidrs(_ name: String) throws(EnvironmentError) -> [CIDR]? {
        try parse(name, CIDR.parseList)
    }
}
