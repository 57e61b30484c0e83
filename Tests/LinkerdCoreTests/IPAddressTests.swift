import Foundation
import LinkerdCore
import LinkerdTestSupport
import Testing

@Suite struct IPAddressTests {
    static let canonicalForms: [(String, IPAddress, String)] = [
        ("10.0.0.1", .v4(0x0A00_0001), "10.0.0.1"),
        ("0.0.0.0", .v4(0), "0.0.0.0"),
        ("255.255.255.255", .v4(.max), "255.255.255.255"),
        ("192.168.1.5", .v4(0xC0A8_0105), "192.168.1.5"),
        ("::", .v6(0), "::"),
        ("::1", .v6(1), "::1"),
        ("fd00::", .v6(0xFD00_0000_0000_0000_0000_0000_0000_0000), "fd00::"),
        ("2001:DB8::1", .v6(0x2001_0DB8_0000_0000_0000_0000_0000_0001), "2001:db8::1"),
        ("2001:0db8:0000:0000:0000:0000:0000:0001", .v6(0x2001_0DB8_0000_0000_0000_0000_0000_0001), "2001:db8::1"),
        ("2001:db8:0:0:1:0:0:1", .v6(0x2001_0DB8_0000_0000_0001_0000_0000_0001), "2001:db8::1:0:0:1"),
        ("2001:db8:0:1:1:1:1:1", .v6(0x2001_0DB8_0000_0001_0001_0001_0001_0001), "2001:db8:0:1:1:1:1:1"),
        ("1:0:0:2:0:0:0:3", .v6(0x0001_0000_0000_0002_0000_0000_0000_0003), "1:0:0:2::3"),
        ("1:2:3:4:5:6:7:8", .v6(0x0001_0002_0003_0004_0005_0006_0007_0008), "1:2:3:4:5:6:7:8"),
        ("1:2:3:4:5:6:7::", .v6(0x0001_0002_0003_0004_0005_0006_0007_0000), "1:2:3:4:5:6:7:0"),
        ("::2:3:4:5:6:7:8", .v6(0x0000_0002_0003_0004_0005_0006_0007_0008), "0:2:3:4:5:6:7:8"),
        ("::ffff:10.0.0.1", .v6(0xFFFF_0A00_0001), "::ffff:10.0.0.1"),
        ("::FFFF:a00:1", .v6(0xFFFF_0A00_0001), "::ffff:10.0.0.1"),
        ("64:ff9b::192.0.2.33", .v6(0x0064_FF9B_0000_0000_0000_0000_C000_0221), "64:ff9b::c000:221"),
        ("1:2:3:4:5:6:1.2.3.4", .v6(0x0001_0002_0003_0004_0005_0006_0102_0304), "1:2:3:4:5:6:102:304"),
        ("fe80::1:2", .v6(0xFE80_0000_0000_0000_0000_0000_0001_0002), "fe80::1:2"),
    ]

    @Test(arguments: canonicalForms)
    func parsesAndPrintsCanonically(string: String, address: IPAddress, description: String) throws {
        let parsed = try IPAddress(parsing: string)
        #expect(parsed == address)
        #expect(parsed.description == description)
        #expect(try IPAddress(parsing: description) == address)
    }

    @Test(arguments: [
        ("", "it is empty"),
        ("10.0.0", "it has 3 parts, but an IPv4 address such as 10.0.0.1 has 4"),
        ("10", "it has 1 part, but"),
        ("10.0.0.1.2", "it has 5 parts"),
        ("10.0.0.256", "the part 256 is greater than 255"),
        ("10.0.0.1000", "the part 1000 is greater than 255"),
        ("10.0.0.01", #"the part "01" has a leading zero"#),
        ("10.0..1", "it has an empty part"),
        ("10.0.0.a", #"the part "a" is not a decimal number"#),
        ("10.0.0.+1", #"the part "+1" is not a decimal number"#),
        (" 10.0.0.1", #"the part " 10" is not a decimal number"#),
        ("1:2:3:4:5:6:7", "it has 7 groups, but an IPv6 address has 8"),
        ("1:2:3:4:5:6:7:8:9", "it has 9 groups, but an IPv6 address has 8"),
        ("1::2::3", #"it has more than one "::""#),
        ("1:2:3:4:5:6:7:8::", #"it has 8 groups and a "::", which must stand for at least one of the 8"#),
        ("::1:2:3:4:5:6:1.2.3.4", #"it has 8 groups and a "::""#),
        (":::", "it has an empty group"),
        (":1::", "it has an empty group"),
        ("1:", "it has an empty group"),
        ("12345::", #"the group "12345" is not 1 to 4 hex digits"#),
        ("g::", #"the group "g" is not 1 to 4 hex digits"#),
        ("+1::", #"the group "+1" is not 1 to 4 hex digits"#),
        ("fe80::1%eth0", #"the zone "%eth0" is not supported"#),
        ("::1.2.3.4:5", #"the IPv4 part "1.2.3.4" is not at the end"#),
        ("1.2.3.4::", #"the IPv4 part "1.2.3.4" is not at the end"#),
        ("::ffff:10.0.0.256", #"in the IPv4 part "10.0.0.256", the part 256 is greater than 255"#),
    ])
    func rejectsMalformedAddresses(string: String, reason: String) {
        expectParseError(string, expected: "IP address", reason: reason) {
            try IPAddress(parsing: string)
        }
    }

    @Test func convertsToAndFromBytes() throws {
        #expect(IPAddress(bytes: [10, 0, 0, 1]) == .v4(0x0A00_0001))
        #expect(IPAddress.v4(0x0A00_0001).bytes == [10, 0, 0, 1])
        let v6 = try IPAddress(parsing: "2001:db8::ff")
        #expect(v6.bytes == [0x20, 0x01, 0x0D, 0xB8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF])
        #expect(IPAddress(bytes: v6.bytes) == v6)
        #expect(IPAddress(bytes: [1, 2, 3]) == nil)
        #expect(IPAddress(bytes: []) == nil)
        #expect(IPAddress.v4(0).bitWidth == 32)
        #expect(IPAddress.v6(0).bitWidth == 128)
    }

    @Test func sampledAddressesRoundTripThroughTheirDescription() throws {
        var generator = SeededRandom(seed: 6)
        for _ in 0..<2_000 {
            // Zero some 16-bit groups so that runs of zeros of every length and position occur.
            var words = (0..<8).map { _ in UInt16.random(in: 0...UInt16.max, using: &generator) }
            for index in words.indices where Bool.random(using: &generator) {
                words[index] = 0
            }
            let v6 = IPAddress.v6(words.reduce(0) { $0 << 16 | UInt128($1) })
            #expect(try IPAddress(parsing: v6.description) == v6, "\(v6)")
            let v4 = IPAddress.v4(UInt32.random(in: 0...UInt32.max, using: &generator))
            #expect(try IPAddress(parsing: v4.description) == v4, "\(v4)")
        }
    }

    @Test func ipv4MappedAddressesAreIPv6() throws {
        #expect(try IPAddress(parsing: "::ffff:10.0.0.1") != IPAddress(parsing: "10.0.0.1"))
    }

    @Test func codesAsItsString() throws {
        let addresses = [IPAddress.v4(0x0A00_0001), .v6(1)]
        let data = try JSONEncoder().encode(addresses)
        #expect(String(decoding: data, as: UTF8.self) == #"["10.0.0.1","::1"]"#)
        #expect(try JSONDecoder().decode([IPAddress].self, from: data) == addresses)
    }
}
