/// An ordered list of ports and port ranges, written comma-separated: `25,443,587,3306` or `80,1000-2000`.
///
/// This is the syntax of Linkerd settings such as `config.linkerd.io/opaque-ports` and
/// `config.linkerd.io/skip-inbound-ports`. The list keeps its entries in the order given, duplicates and overlaps
/// included, so that ``description`` reproduces it.
public struct PortList: Hashable, Sendable, CustomStringConvertible, Codable, ExpressibleByArrayLiteral {
    /// The entries of the list, in the order given.
    public let ranges: [PortRange]

    /// The list of `ranges`, in that order.
    public init(_ ranges: [PortRange]) {
        self.ranges = ranges
    }

    /// The list of the given ranges, in that order.
    public init(arrayLiteral ranges: PortRange...) {
        self.init(ranges)
    }

    /// Parses a comma-separated list of ports and ranges, each as ``PortRange/init(parsing:)`` parses it.
    ///
    /// Whitespace around entries is ignored; an empty or all-whitespace string is the empty list.
    ///
    /// - Throws: ``ParseError`` about the whole list when an entry is empty (`80,,443`, `80,`) or invalid; the reason
    ///   names the entry by position and gives the entry's own reason.
    public init(parsing string: String) throws(ParseError) {
        self.init(try ListSyntax.parse(string, expected: "port list", entry: PortRange.init(parsing:)))
    }

    /// Whether the list has no entries.
    public var isEmpty: Bool {
        ranges.isEmpty
    }

    /// Whether `port` is in any entry of the list.
    public func contains(_ port: UInt16) -> Bool {
        ranges.contains { $0.contains(port) }
    }

    /// The number of distinct ports in the list: a port in several overlapping entries counts once.
    public var portCount: Int {
        var count = 0
        var nextUncounted = 0
        for range in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            let start = max(Int(range.lowerBound), nextUncounted)
            let end = Int(range.upperBound)
            if start <= end {
                count += end - start + 1
                nextUncounted = end + 1
            }
        }
        return count
    }

    /// The entries' descriptions joined by commas, such as `80,1000-2000`; the empty list is the empty string.
    public var description: String {
        ranges.map(\.description).joined(separator: ",")
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
