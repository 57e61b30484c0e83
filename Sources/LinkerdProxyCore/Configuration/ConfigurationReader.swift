import LinkerdCore

/// Reads variables from an environment, recording every problem instead of stopping at the first, so that one
/// ``ProxyConfigurationError`` can list them all.
///
/// A read that fails records its problem and returns nil or the default, so that reading can go on; the caller must
/// not use the result once ``problems`` is non-empty.
struct ConfigurationReader {
    /// The variables being read.
    let environment: any EnvironmentReader
    /// The problems found so far, in the order found.
    private(set) var problems: [ProxyConfigurationError.Problem] = []

    init(_ environment: any EnvironmentReader) {
        self.environment = environment
    }

    /// The value of `name` as set, empty included, or nil when unset.
    func value(_ name: String) -> String? {
        environment.value(name)
    }

    /// Whether `name` is set, even to the empty string.
    func isSet(_ name: String) -> Bool {
        environment.value(name) != nil
    }

    /// Records `problem`.
    mutating func record(_ problem: ProxyConfigurationError.Problem) {
        problems.append(problem)
    }

    /// The value of `name` converted by `parse`, or nil when `name` is unset (or empty, when `emptyIsUnset`) or
    /// `parse` refuses it, which is recorded as an invalid value with the parser's reason.
    mutating func read<Value>(
        _ name: String,
        emptyIsUnset: Bool = false,
        _ parse: (String) throws(ParseError) -> Value
    ) -> Value? {
        guard let text = environment.value(name), !(emptyIsUnset && text.isEmpty) else {
            return nil
        }
        do throws(ParseError) {
            return try parse(text)
        } catch {
            record(.invalid(name: name, value: text, reason: error.reason))
            return nil
        }
    }

    /// The value of `name` converted by `parse`, or `defaultValue` when it is unset or refused (and recorded).
    mutating func read<Value>(
        _ name: String,
        default defaultValue: Value,
        _ parse: (String) throws(ParseError) -> Value
    ) -> Value {
        read(name, parse) ?? defaultValue
    }

    /// The value of `name` converted by `parse`; when it is unset, records it as missing with `reason`.
    mutating func required<Value>(
        _ name: String,
        reason: String? = nil,
        _ parse: (String) throws(ParseError) -> Value
    ) -> Value? {
        guard isSet(name) else {
            record(.missing(name: name, reason: reason))
            return nil
        }
        return read(name, parse)
    }

    /// The duration `name`, or `defaultValue`.
    mutating func duration(_ name: String, default defaultValue: Duration) -> Duration {
        read(name, default: defaultValue, ProxyValueSyntax.duration)
    }

    /// The duration `name`, or nil when it is unset (or empty, when `emptyIsUnset`).
    mutating func optionalDuration(_ name: String, emptyIsUnset: Bool = false) -> Duration? {
        read(name, emptyIsUnset: emptyIsUnset, ProxyValueSyntax.duration)
    }

    /// The Boolean `name`, or `defaultValue`.
    mutating func bool(_ name: String, default defaultValue: Bool) -> Bool {
        read(name, default: defaultValue, ProxyValueSyntax.bool)
    }

    /// The number `name`, from 0 to `Int.max` unless `range` says otherwise, or nil when it is unset.
    mutating func count(_ name: String, in range: ClosedRange<Int> = 0...Int.max) -> Int? {
        read(name, ProxyValueSyntax.count(in: range))
    }

    /// Records the violation `SHORTER="…" must not be longer than LONGER="…"` when both are set and `shorter` is
    /// longer than `longer`.
    mutating func requireOrder(
        _ shorter: (name: String, value: Duration?),
        notLongerThan longer: (name: String, value: Duration?)
    ) {
        guard let short = shorter.value, let long = longer.value, short > long else {
            return
        }
        record(
            .violation(
                names: [shorter.name, longer.name],
                message: "\(assignment(shorter.name)) must not be longer than \(assignment(longer.name))"
            )
        )
    }

    /// Records a violation when some but not all of `names` are set: they configure one thing together.
    ///
    /// - Returns: whether all of them are set.
    mutating func requireTogether(_ names: [String]) -> Bool {
        let setCount = names.count(where: isSet)
        guard setCount == 0 || setCount == names.count else {
            let unset = names.filter { !isSet($0) }
            record(
                .violation(
                    names: names,
                    message: "\(conjunction(names)) must be set together, but \(conjunction(unset)) "
                        + (unset.count == 1 ? "is" : "are") + " not set"
                )
            )
            return false
        }
        return setCount == names.count
    }

    /// `NAME="value"` with the value quoted and escaped, or `NAME` when it is unset.
    func assignment(_ name: String) -> String {
        value(name).map { "\(name)=\($0.quoted)" } ?? name
    }

    /// `A`, `A and B`, or `A, B and C`.
    private func conjunction(_ names: [String]) -> String {
        guard let last = names.last, names.count > 1 else {
            return names.first ?? ""
        }
        return names.dropLast().joined(separator: ", ") + " and " + last
    }
}
