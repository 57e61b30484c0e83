/// An inclusive range of TCP or UDP ports, written as a single port (`80`) or as `<start>-<end>` (`1000-2000`).
///
/// Like Linkerd, port ranges accept every port from 0 to 65535, and a single port is the range holding only it.
public struct PortRange: Hashable, Sendable, CustomStringConvertible, Codable {
    /// The first port in the range.
    public let lowerBound: UInt16
    /// The last port in the range; never less than ``lowerBound``.
    public let upperBound: UInt16

    /// The range holding only `port`.
    public init(_ port: UInt16) {
        lowerBound = port
        upperBound = port
    }

    /// The range holding the ports of `range`.
    public init(_ range: ClosedRange<UInt16>) {
        lowerBound = range.lowerBound
        upperBound = range.upperBound
    }

    /// Parses `80` or `1000-2000`, ignoring whitespace around the string and around each bound.
    ///
    /// - Throws: ``ParseError`` when the string is empty, a bound is missing or is not a decimal number, a bound is
    ///   greater than 65535, or the start is greater than the end.
    public init(parsing string: String) throws(ParseError) {
        func failure(_ reason: String) -> ParseError {
            ParseError(value: string, expected: "port range", reason: reason)
        }
        func port(_ text: Substring, named name: String) throws(ParseError) -> UInt16 {
            let digits = text.trimmingWhitespace
            guard !digits.isEmpty else {
                throw failure("the \(name) is missing; expected a port such as 80 or a range such as 1000-2000")
            }
            guard digits.isASCIIDigits else {
                throw failure("the \(name) \(digits.quoted) is not a decimal number")
            }
            guard let port = UInt16(digits) else {
                throw failure("the \(name) \(digits) is greater than \(UInt16.max)")
            }
            return port
        }

        let trimmed = string.trimmingWhitespace
        guard !trimmed.isEmpty else {
            throw failure("it is empty")
        }
        let bounds = trimmed.split(separator: "-", omittingEmptySubsequences: false)
        switch bounds.count {
        case 1:
            self.init(try port(bounds[0], named: "port"))
        case 2:
            let start = try port(bounds[0], named: "start")
            let end = try port(bounds[1], named: "end")
            guard start <= end else {
                throw failure("the start \(start) is greater than the end \(end)")
            }
            self.init(start...end)
        default:
            throw failure("it has more than one \"-\"; expected a port such as 80 or a range such as 1000-2000")
        }
    }

    /// The ports of this range as a `ClosedRange`.
    public var range: ClosedRange<UInt16> {
        lowerBound...upperBound
    }

    /// The number of ports in the range, from 1 to 65536.
    public var count: Int {
        Int(upperBound) - Int(lowerBound) + 1
    }

    /// Whether `port` is in the range.
    public func contains(_ port: UInt16) -> Bool {
        range.contains(port)
    }

    /// `80` for a single port, `1000-2000` otherwise; ``init(parsing:)`` parses it back to an equal range.
    public var description: String {
        lowerBound == upperBound ? "\(lowerBound)" : "\(lowerBound)-\(upperBound)"
    }

    /// Decodes the string form, as ``init(parsing:)`` parses it.
    public init(from decoder: any Decoder) throws {
        self = try StringCoding.decode(from: decoder, Self.init(parsing:))
    }

    /// Encodes the string form.
    public func encode(to encoder: any Encoder) throws {
        try StringCoding.encode(self, to: encoder)
    }
}
