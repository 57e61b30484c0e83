import Foundation
import LinkerdCore
import Testing

@Suite struct CIDRTests {
    @Test(arguments: [
        ("10.0.0.0/8", IPAddress.v4(0x0A00_0000), 8, "10.0.0.0/8", "10.0.0.0"),
        ("192.168.1.5/32", .v4(0xC0A8_0105), 32, "192.168.1.5/32", "192.168.1.5"),
        ("192.168.1.5/24", .v4(0xC0A8_0105), 24, "192.168.1.5/24", "192.168.1.0"),
        ("10.0.0.1", .v4(0x0A00_0001), 32, "10.0.0.1/32", "10.0.0.1"),
        ("0.0.0.0/0", .v4(0), 0, "0.0.0.0/0", "0.0.0.0"),
        ("255.255.255.255/1", .v4(.max), 1, "255.255.255.255/1", "128.0.0.0"),
        ("fd00::/8", .v6(0xFD00_0000_0000_0000_0000_0000_0000_0000), 8, "fd00::/8", "fd00::"),
        ("::1/128", .v6(1), 128, "::1/128", "::1"),
        ("::1", .v6(1), 128, "::1/128", "::1"),
        ("::/0", .v6(0), 0, "::/0", "::"),
        ("2001:DB8::1/32", .v6(0x2001_0DB8_0000_0000_0000_0000_0000_0001), 32, "2001:db8::1/32", "2001:db8::"),
    ])
    func parsesNetworks(
        string: String,
        address: IPAddress,
        prefixLength: Int,
        description: String,
        network: String
    ) throws {
        let cidr = try CIDR(parsing: string)
        #expect(cidr.address == address)
        #expect(cidr.prefixLength == prefixLength)
        #expect(cidr.description == description)
        #expect(cidr.network.description == network)
        #expect(try CIDR(parsing: cidr.description) == cidr)
        #expect(try CIDR(address: address, prefixLength: prefixLength) == cidr)
    }

    @Test(arguments: [
        ("", "the address is missing"),
        ("/8", "the address is missing"),
        ("10.0.0.0/33", "the prefix length 33 is greater than 32"),
        ("10.0.0.0/1000", "the prefix length 1000 is greater than 32"),
        ("fd00::/129", "the prefix length 129 is greater than 128"),
        ("10.0.0.0/", "the prefix length is missing"),
        ("10.0.0.0/-1", #"the prefix length "-1" is not a decimal number"#),
        ("10.0.0.0/ 8", #"the prefix length " 8" is not a decimal number"#),
        ("10.0.0.0/08", #"the prefix length "08" has a leading zero"#),
        ("10.0.0.0/8/8", #"it has more than one "/""#),
        ("10.0.0.256/8", "the part 256 is greater than 255"),
        ("10.0.0/8", "it has 3 parts, but an IPv4 address such as 10.0.0.1 has 4"),
        ("fd00:::/8", "it has an empty group"),
    ])
    func rejectsMalformedNetworks(string: String, reason: String) {
        expectParseError(string, expected: "CIDR", reason: reason) {
            try CIDR(parsing: string)
        }
    }

    @Test(arguments: [
        (IPAddress.v4(0x0A00_0000), 33, "10.0.0.0/33", "the prefix length 33 is not from 0 to 32"),
        (.v4(0x0A00_0000), -1, "10.0.0.0/-1", "the prefix length -1 is not from 0 to 32"),
        (.v6(0), 129, "::/129", "the prefix length 129 is not from 0 to 128"),
    ])
    func rejectsPrefixLengthsOutsideTheAddress(address: IPAddress, prefixLength: Int, value: String, reason: String) {
        expectParseError(value, expected: "CIDR", reason: reason) {
            try CIDR(address: address, prefixLength: prefixLength)
        }
    }

    @Test(arguments: [
        ("10.0.0.0/8", "10.255.255.255", true),
        ("10.0.0.0/8", "11.0.0.0", false),
        ("10.0.0.0/8", "9.255.255.255", false),
        ("192.168.1.5/24", "192.168.1.200", true),
        ("192.168.1.5/24", "192.168.2.1", false),
        ("10.0.0.1/32", "10.0.0.1", true),
        ("10.0.0.1/32", "10.0.0.2", false),
        ("0.0.0.0/0", "1.2.3.4", true),
        ("0.0.0.0/0", "::1", false),
        ("10.0.0.0/8", "::ffff:10.0.0.1", false),
        ("fd00::/8", "fd12::1", true),
        ("fd00::/8", "fe00::", false),
        ("::/0", "::ffff:10.0.0.1", true),
        ("::/0", "10.0.0.1", false),
        ("::1/128", "::1", true),
        ("::1/128", "::2", false),
        ("2001:db8::/33", "2001:db8:7fff::", true),
        ("2001:db8::/33", "2001:db8:8000::", false),
    ])
    func containment(cidr: String, address: String, contained: Bool) throws {
        #expect(try CIDR(parsing: cidr).contains(IPAddress(parsing: address)) == contained)
    }

    @Test(arguments: [
        ("", [String]()),
        (" ", []),
        ("10.0.0.0/8", ["10.0.0.0/8"]),
        (
            "10.0.0.0/8,100.64.0.0/10,172.16.0.0/12,192.168.0.0/16,fd00::/8",
            ["10.0.0.0/8", "100.64.0.0/10", "172.16.0.0/12", "192.168.0.0/16", "fd00::/8"]
        ),
        (" 10.0.0.0/8 , fd00::/8 ", ["10.0.0.0/8", "fd00::/8"]),
        ("10.0.0.1,::1", ["10.0.0.1/32", "::1/128"]),
    ])
    func parsesLists(string: String, descriptions: [String]) throws {
        #expect(try CIDR.parseList(string).map(\.description) == descriptions)
    }

    @Test(arguments: [
        ("10.0.0.0/8,,fd00::/8", "entry 2 is empty"),
        ("10.0.0.0/8,", "entry 2 is empty"),
        ("10.0.0.0/8,bogus", #"entry 2 "bogus": it has 1 part, but an IPv4 address such as 10.0.0.1 has 4"#),
        ("10.0.0.0/40", #"entry 1 "10.0.0.0/40": the prefix length 40 is greater than 32"#),
    ])
    func rejectsMalformedLists(string: String, reason: String) {
        expectParseError(string, expected: "CIDR list", reason: reason) {
            try CIDR.parseList(string)
        }
    }

    @Test func codesAsItsString() throws {
        let cidrs = try CIDR.parseList("10.0.0.0/8,fd00::/8")
        let data = try JSONEncoder().encode(cidrs)
        #expect(String(decoding: data, as: UTF8.self) == #"["10.0.0.0\/8","fd00::\/8"]"#)
        #expect(try JSONDecoder().decode([CIDR].self, from: data) == cidrs)
    }
}
