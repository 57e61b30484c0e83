/// An IP network in CIDR notation: an address and a prefix length, such as `10.0.0.0/8` or `fd00::/8`.
///
/// The address is kept as given, host bits included (`192.168.1.5/24` stays so); ``network`` is the address with
/// the host bits cleared, and ``contains(_:)`` compares only the prefix bits.
public struct CIDR: Hashable, Sendable, CustomStringConvertible, Codable {
    /// The address as given, possibly with host bits set.
    public let address: IPAddress
    /// The number of leading bits that identify the network: 0 to 32 for IPv4, 0 to 128 for IPv6.
    public let prefixLength: Int

    /// The network of `address` with `prefixLength` leading bits.
    ///
    /// - Throws: ``ParseError`` when `prefixLength` is negative or longer than the address.
    public init(address: IPAddress, prefixLength: Int) throws(ParseError) {
        guard (0...address.bitWidth).contains(prefixLength) else {
            throw ParseError(
                value: "\(address)/\(prefixLength)",
                expected: Self.expected,
                reason: "the prefix length \(prefixLength) is not from 0 to \(address.bitWidth)"
            )
        }
        self.address = address
        self.prefixLength = prefixLength
    }

    /// Parses `<address>/<prefix-length>`, or a bare address as the network of only that address (`/32` for IPv4,
    /// `/128` for IPv6). The address is parsed as ``IPAddress/init(parsing:)`` does; the prefix length is a decimal
    /// number without leading zeros.
    ///
    /// - Throws: ``ParseError`` about the whole string, naming the address or prefix length at fault.
    public init(parsing string: String) throws(ParseError) {
        func failure(_ reason: String) -> ParseError {
            ParseError(value: string, expected: Self.expected, reason: reason)
        }
        let pieces = string.split(separator: "/", omittingEmptySubsequences: false)
        guard pieces.count <= 2 else {
            throw failure("it has more than one \"/\"")
        }
        let address: IPAddress
        do throws(ParseError) {
            address = try IPAddress(parsing: String(pieces[0]))
        } catch {
            throw failure(pieces[0].isEmpty ? "the address is missing" : error.reason)
        }
        guard pieces.count == 2 else {
            self.init(unchecked: address, prefixLength: address.bitWidth)
            return
        }
        let prefix = pieces[1]
        guard !prefix.isEmpty else {
            throw failure("the prefix length is missing")
        }
        guard prefix.isASCIIDigits else {
            throw failure("the prefix length \(prefix.quoted) is not a decimal number")
        }
        guard prefix == "0" || !prefix.hasPrefix("0") else {
            throw failure("the prefix length \(prefix.quoted) has a leading zero")
        }
        guard prefix.count <= 3, let length = Int(prefix), length <= address.bitWidth else {
            throw failure("the prefix length \(prefix) is greater than \(address.bitWidth)")
        }
        self.init(unchecked: address, prefixLength: length)
    }

    /// Parses a comma-separated list of networks, each as ``init(parsing:)`` parses it, such as Linkerd's cluster
    /// networks `10.0.0.0/8,100.64.0.0/10,172.16.0.0/12,192.168.0.0/16,fd00::/8`.
    ///
    /// Whitespace around entries is ignored; an empty or all-whitespace string is the empty list.
    ///
    /// - Throws: ``ParseError`` about the whole list when an entry is empty or invalid; the reason names the entry by
    ///   position and gives the entry's own reason.
    public static func parseList(_ string: String) throws(ParseError) -> [CIDR] {
        try ListSyntax.parse(string, expected: "CIDR list", entry: CIDR.init(parsing:))
    }

    /// The address with every bit after the prefix cleared, such as `192.168.1.0` for `192.168.1.5/24`.
    public var network: IPAddress {
        switch address {
        case .v4(let value): .v4(value & Self.mask(prefixLength, of: UInt32.self))
        case .v6(let value): .v6(value & Self.mask(prefixLength, of: UInt128.self))
        }
    }

    /// Whether `address` is in this network: it is of the same family (IPv4 or IPv6) and its first ``prefixLength``
    /// bits are those of ``address``. IPv4-mapped IPv6 addresses are not in IPv4 networks.
    public func contains(_ address: IPAddress) -> Bool {
        switch (self.address, address) {
        case (.v4(let network), .v4(let candidate)):
            let mask = Self.mask(prefixLength, of: UInt32.self)
            return network & mask == candidate & mask
        case (.v6(let network), .v6(let candidate)):
            let mask = Self.mask(prefixLength, of: UInt128.self)
            return network & mask == candidate & mask
        default:
            return false
        }
    }

    /// `<address>/<prefix-length>` with the address in canonical form, such as `fd00::/8`; a bare address parsed as
    /// a network is printed with its full prefix length, such as `10.0.0.1/32`.
    public var description: String {
        "\(address)/\(prefixLength)"
    }

    /// Decodes the string form, as ``init(parsing:)`` parses it.
    public init(from decoder: any Decoder) throws {
        self = try StringCoding.decode(from: decoder, Self.init(parsing:))
    }

    /// Encodes the string form.
    public func encode(to encoder: any Encoder) throws {
        try StringCoding.encode(self, to: encoder)
    }

    private static let expected = "CIDR"

    private init(unchecked address: IPAddress, prefixLength: Int) {
        self.address = address
        self.prefixLength = prefixLength
    }

    /// The value of `Bits` whose first `length` bits are set.
    private static func mask<Bits: FixedWidthInteger & UnsignedInteger>(_ length: Int, of _: Bits.Type) -> Bits {
        length == 0 ? 0 : Bits.max << (Bits.bitWidth - length)
    }
}
