/// An IPv4 or IPv6 address, parsed and printed without the system resolver.
///
/// The associated value is the address as one big-endian number: `10.0.0.1` is `.v4(0x0A00_0001)` and `::1` is
/// `.v6(1)`. IPv6 zones (`fe80::1%eth0`) are not supported. An IPv4-mapped IPv6 address such as `::ffff:10.0.0.1` is
/// an IPv6 address, distinct from the IPv4 address `10.0.0.1`.
public enum IPAddress: Hashable, Sendable, CustomStringConvertible, Codable {
    /// An IPv4 address: 32 bits.
    case v4(UInt32)
    /// An IPv6 address: 128 bits.
    case v6(UInt128)

    /// The address made of `bytes` in network order: 4 bytes for IPv4, 16 for IPv6, or nil for any other count.
    public init?(bytes: [UInt8]) {
        switch bytes.count {
        case 4: self = .v4(bytes.reduce(0) { $0 << 8 | UInt32($1) })
        case 16: self = .v6(bytes.reduce(0) { $0 << 8 | UInt128($1) })
        default: return nil
        }
    }

    /// Parses dotted-decimal IPv4 (`192.168.1.5`) or IPv6 text (`fd00::1`, `::ffff:10.0.0.1`).
    ///
    /// IPv4 needs four decimal parts from 0 to 255 without leading zeros (`010` could be octal, so it is refused).
    /// IPv6 needs eight groups of 1 to 4 hex digits in either case, or fewer with one `::` standing for the missing
    /// zero groups; the last 32 bits may be written as an IPv4 address. Text with a `:` is taken as IPv6.
    ///
    /// - Throws: ``ParseError`` naming the part or group at fault.
    public init(parsing string: String) throws(ParseError) {
        guard !string.isEmpty else {
            throw ParseError(value: string, expected: "IP address", reason: "it is empty")
        }
        do throws(Problem) {
            self = string.contains(":") ? .v6(try Self.parseV6(string)) : .v4(try Self.parseV4(string))
        } catch {
            throw ParseError(value: string, expected: "IP address", reason: error.text)
        }
    }

    /// Whether the address is this host's own: `127.0.0.0/8`, `::1`, or an IPv4-mapped `::ffff:127.x.y.z` (how a
    /// dual-stack socket sees an IPv4 loopback client).
    public var isLoopback: Bool {
        switch self {
        case .v4(let value): value >> 24 == 127
        case .v6(let value): value == 1 || value >> 24 == 0xFFFF_7F
        }
    }

    /// The address in network order: 4 bytes for IPv4, 16 for IPv6.
    public var bytes: [UInt8] {
        switch self {
        case .v4(let value): (0..<4).reversed().map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) }
        case .v6(let value): (0..<16).reversed().map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) }
        }
    }

    /// The number of bits in the address: 32 for IPv4, 128 for IPv6.
    public var bitWidth: Int {
        switch self {
        case .v4: 32
        case .v6: 128
        }
    }

    /// The canonical text of the address.
    ///
    /// IPv4 is dotted decimal. IPv6 follows RFC 5952: lowercase hex without leading zeros, the longest run of two or
    /// more zero groups (the first, on a tie) written as `::`, and IPv4-mapped addresses written `::ffff:10.0.0.1`.
    public var description: String {
        switch self {
        case .v4(let value):
            return Self.dotted(value)
        case .v6(let value):
            if value >> 32 == 0xFFFF {
                return "::ffff:" + Self.dotted(UInt32(truncatingIfNeeded: value))
            }
            let groups = (0..<8).reversed().map { UInt16(truncatingIfNeeded: value >> ($0 * 16)) }
            var bestRun = 0..<0
            var index = 0
            while index < groups.count {
                guard groups[index] == 0 else {
                    index += 1
                    continue
                }
                let start = index
                while index < groups.count, groups[index] == 0 {
                    index += 1
                }
                if index - start > bestRun.count {
                    bestRun = start..<index
                }
            }
            let hex = groups.map { String($0, radix: 16) }
            guard bestRun.count >= 2 else {
                return hex.joined(separator: ":")
            }
            return hex[..<bestRun.lowerBound].joined(separator: ":") + "::"
                + hex[bestRun.upperBound...].joined(separator: ":")
        }
    }

    /// Decodes the string form, as ``init(parsing:)`` parses it.
    public init(from decoder: any Decoder) throws {
        self = try StringCoding.decode(from: decoder, Self.init(parsing:))
    }

    /// Encodes the string form.
    public func encode(to encoder: any Encoder) throws {
        try StringCoding.encode(self, to: encoder)
    }

    /// Why a string is not an address.
    private struct Problem: Error {
        let text: String
    }

    private static func dotted(_ value: UInt32) -> String {
        (0..<4).reversed().map { String(UInt8(truncatingIfNeeded: value >> ($0 * 8))) }.joined(separator: ".")
    }

    private static func parseV4(_ string: some StringProtocol) throws(Problem) -> UInt32 {
        let parts = string.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else {
            throw Problem(text: "it has \(counted(parts.count, "part")), but an IPv4 address such as 10.0.0.1 has 4")
        }
        var value: UInt32 = 0
        for part in parts {
            guard !part.isEmpty else {
                throw Problem(text: "it has an empty part")
            }
            guard part.isASCIIDigits else {
                throw Problem(text: "the part \(part.quoted) is not a decimal number")
            }
            guard part == "0" || !part.hasPrefix("0") else {
                throw Problem(text: "the part \(part.quoted) has a leading zero")
            }
            guard part.count <= 3, let byte = UInt8(part) else {
                throw Problem(text: "the part \(part) is greater than 255")
            }
            value = value << 8 | UInt32(byte)
        }
        return value
    }

    private static func parseV6(_ string: String) throws(Problem) -> UInt128 {
        if let zone = string.firstIndex(of: "%") {
            throw Problem(text: "the zone \(string[zone...].quoted) is not supported")
        }
        let halves = string.split(separator: "::", omittingEmptySubsequences: false)
        let words: [UInt16]
        switch halves.count {
        case 1:
            words = try groups(of: string, allowingIPv4: true)
            guard words.count == 8 else {
                throw Problem(text: "it has \(counted(words.count, "group")), but an IPv6 address has 8")
            }
        case 2:
            let leading = try groups(of: halves[0], allowingIPv4: false)
            let trailing = try groups(of: halves[1], allowingIPv4: true)
            let count = leading.count + trailing.count
            guard count <= 7 else {
                throw Problem(
                    text: "it has \(counted(count, "group")) and a \"::\", which must stand for at least one of the 8"
                )
            }
            words = leading + repeatElement(0, count: 8 - count) + trailing
        default:
            throw Problem(text: "it has more than one \"::\"")
        }
        return words.reduce(0) { $0 << 16 | UInt128($1) }
    }

    /// The 16-bit words of colon-separated hex groups; an empty string has none. When `allowingIPv4`, the last
    /// group may be an IPv4 address, which counts as two words.
    private static func groups(of text: some StringProtocol, allowingIPv4: Bool) throws(Problem) -> [UInt16] {
        guard !text.isEmpty else {
            return []
        }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        var words: [UInt16] = []
        for (offset, part) in parts.enumerated() {
            if part.contains(".") {
                guard allowingIPv4, offset == parts.count - 1 else {
                    throw Problem(text: "the IPv4 part \(part.quoted) is not at the end")
                }
                do throws(Problem) {
                    let value = try parseV4(part)
                    words += [UInt16(truncatingIfNeeded: value >> 16), UInt16(truncatingIfNeeded: value)]
                } catch {
                    throw Problem(text: "in the IPv4 part \(part.quoted), \(error.text)")
                }
            } else {
                guard !part.isEmpty else {
                    throw Problem(text: "it has an empty group")
                }
                guard part.utf8.count <= 4, part.utf8.allSatisfy(isASCIIHexDigit), let word = UInt16(part, radix: 16)
                else {
                    throw Problem(text: "the group \(part.quoted) is not 1 to 4 hex digits")
                }
                words.append(word)
            }
        }
        return words
    }

    private static func isASCIIHexDigit(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"),
            UInt8(ascii: "A")...UInt8(ascii: "F"):
            true
        default:
            false
        }
    }
}
