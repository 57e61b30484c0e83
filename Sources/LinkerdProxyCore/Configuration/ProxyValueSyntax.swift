import LinkerdCore

/// The upstream proxy's syntax for the values of its environment variables, which differs from Go's in places:
/// durations are a whole number and one unit, and list entries may be empty.
enum ProxyValueSyntax {
    /// Parses the proxy's duration syntax: optional whitespace, a whole number, an optional unit (`ms`, `s`, `m`,
    /// `h` or `d`) right after it, and optional whitespace. Only `0` may omit the unit.
    ///
    /// This is the regular expression `^\s*(\d+)(ms|s|m|h|d)?\s*$` with decimal digits, so `1.5s` (a fraction),
    /// `1 s` (a space before the unit), `1y` (an unknown unit) and `5` (no unit) are refused, each with its own reason.
    static func duration(_ text: String) throws(ParseError) -> Duration {
        func failure(_ reason: String) -> ParseError {
            ParseError(value: text, expected: "duration", reason: reason)
        }
        let trimmed = text.trimmingWhitespace
        guard !trimmed.isEmpty else {
            throw failure("it is empty; \(durationForm)")
        }
        let digits = trimmed.prefix { $0.isASCII && $0.isWholeNumber }
        guard !digits.isEmpty else {
            throw failure(durationForm)
        }
        let unit = trimmed.dropFirst(digits.count)
        if unit.first == "." {
            throw failure("it has a fraction; durations are whole numbers, so use a smaller unit (1500ms, not 1.5s)")
        }
        if let first = unit.first, first.isWhitespace {
            throw failure("it has a space before the unit; write them together, as in 10s")
        }
        guard let magnitude = UInt64(digits) else {
            throw failure("the number \(digits) is too large")
        }
        guard !unit.isEmpty else {
            guard magnitude == 0 else {
                throw failure("the number \(digits) has no unit; expected \(unitNames) after it (only 0 may omit it)")
            }
            return .zero
        }
        guard let millisecondsPerUnit = durationUnits[String(unit)] else {
            throw failure("unknown unit \(String(unit).quoted); expected \(unitNames)")
        }
        let (milliseconds, overflow) = magnitude.multipliedReportingOverflow(by: millisecondsPerUnit)
        guard !overflow, let exact = Int64(exactly: milliseconds) else {
            throw failure("it is too long to represent")
        }
        return .milliseconds(exact)
    }

    /// Parses exactly `true` or `false`, as Rust's `bool::from_str` does.
    static func bool(_ text: String) throws(ParseError) -> Bool {
        switch text {
        case "true": return true
        case "false": return false
        default: throw ParseError(value: text, expected: "Boolean", reason: "expected \"true\" or \"false\"")
        }
    }

    /// A parser of decimal numbers in `range`: ASCII digits only, no sign, no spaces.
    static func count(in range: ClosedRange<Int>) -> (String) throws(ParseError) -> Int {
        { text throws(ParseError) in
            guard !text.isEmpty, text.utf8.allSatisfy(HostPortSyntax.isASCIIDigit), let number = Int(text),
                range.contains(number)
            else {
                throw ParseError(
                    value: text,
                    expected: "number",
                    reason: "expected a whole number from \(range.lowerBound) to \(range.upperBound)"
                )
            }
            return number
        }
    }

    /// A backoff jitter: a decimal number from 0 to 100, such as `0.1`.
    static func jitter(_ text: String) throws(ParseError) -> Double {
        guard let value = Double(text), value.isFinite, (0...100).contains(value) else {
            throw ParseError(value: text, expected: "jitter", reason: "expected a number from 0 to 100, such as 0.1")
        }
        return value
    }

    /// A positive ratio, such as `0.5`.
    static func ratio(_ text: String) throws(ParseError) -> Double {
        guard let value = Double(text), value.isFinite, value > 0 else {
            throw ParseError(value: text, expected: "ratio", reason: "expected a number greater than 0, such as 0.5")
        }
        return value
    }

    /// Any text but the empty string, unchanged.
    static func nonEmpty(_ text: String) throws(ParseError) -> String {
        guard !text.isEmpty else {
            throw ParseError(value: text, expected: "value", reason: "it is empty")
        }
        return text
    }

    /// A PEM bundle that holds at least one certificate.
    static func certificatesPEM(_ text: String) throws(ParseError) -> String {
        guard !text.isEmpty else {
            throw ParseError(value: text, expected: "PEM bundle", reason: "it is empty")
        }
        guard text.contains("-----BEGIN CERTIFICATE-----") else {
            throw ParseError(
                value: text,
                expected: "PEM bundle",
                reason: "it holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
            )
        }
        return text
    }

    /// Up to two socket addresses, comma-separated, such as `127.0.0.1:4140,[::1]:4140`.
    static func listenAddresses(_ text: String) throws(ParseError) -> [IPSocketAddress] {
        let addresses = try list(text, expected: "address list", entry: IPSocketAddress.init(parsing:))
        guard !addresses.isEmpty else {
            throw ParseError(value: text, expected: "address list", reason: "it holds no address")
        }
        guard addresses.count <= 2 else {
            throw ParseError(value: text, expected: "address list", reason: "only two addresses are supported")
        }
        return addresses
    }

    /// Ports and port ranges, such as `25,587,3306` or `1-2,42,80-420`.
    static func ports(_ text: String) throws(ParseError) -> PortList {
        PortList(try list(text, expected: "port list", entry: PortRange.init(parsing:)))
    }

    /// Networks with explicit prefix lengths, such as `10.0.0.0/8,fd00::/8`.
    static func networks(_ text: String) throws(ParseError) -> [CIDR] {
        try list(text, expected: "network list") { entry throws(ParseError) in
            guard entry.contains("/") else {
                throw ParseError(
                    value: entry,
                    expected: "CIDR",
                    reason: "the prefix length is missing, as in 10.0.0.0/8"
                )
            }
            return try CIDR(parsing: entry)
        }
    }

    /// IP addresses, such as `10.244.0.5,fd00::5`.
    static func ipAddresses(_ text: String) throws(ParseError) -> [IPAddress] {
        try list(text, expected: "IP address list", entry: IPAddress.init(parsing:))
    }

    /// DNS suffixes, such as `svc.cluster.local.` or `.`.
    static func suffixes(_ text: String) throws(ParseError) -> [DNSSuffix] {
        try list(text, expected: "DNS suffix list", entry: DNSSuffix.init(parsing:))
    }

    /// Parses comma-separated entries in order, ignoring whitespace around each and skipping empty ones, as the
    /// upstream proxy does (`80, ,443,` is two ports); so the empty string is the empty list.
    ///
    /// - Throws: ``ParseError`` about the whole of `text` when an entry is refused; the reason names the entry by its
    ///   1-based position among the comma-separated fields and gives the entry's own reason.
    static func list<Element>(
        _ text: String,
        expected: String,
        entry parseEntry: (String) throws(ParseError) -> Element
    ) throws(ParseError) -> [Element] {
        var elements: [Element] = []
        for (offset, field) in text.split(separator: ",", omittingEmptySubsequences: false).enumerated() {
            let entry = field.trimmingWhitespace
            guard !entry.isEmpty else {
                continue
            }
            do throws(ParseError) {
                elements.append(try parseEntry(entry))
            } catch {
                throw ParseError(
                    value: text,
                    expected: expected,
                    reason: "entry \(offset + 1) \(entry.quoted): \(error.reason)"
                )
            }
        }
        return elements
    }

    private static let durationForm = "expected a whole number followed by ms, s, m, h or d, such as 10s"

    private static let unitNames = "ms, s, m, h or d"

    private static let durationUnits: [String: UInt64] = [
        "ms": 1,
        "s": 1_000,
        "m": 60_000,
        "h": 3_600_000,
        "d": 86_400_000,
    ]
}
