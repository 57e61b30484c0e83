import Foundation
import LinkerdCore
import Testing

@Suite struct PortRangeTests {
    @Test(arguments: [
        ("80", UInt16(80), UInt16(80), "80"),
        ("0", 0, 0, "0"),
        ("65535", 65535, 65535, "65535"),
        ("1000-2000", 1000, 2000, "1000-2000"),
        ("0-65535", 0, 65535, "0-65535"),
        ("80-80", 80, 80, "80"),
        (" 80 ", 80, 80, "80"),
        ("1000 - 2000", 1000, 2000, "1000-2000"),
        ("0080", 80, 80, "80"),
    ])
    func parsesPortsAndRanges(string: String, lower: UInt16, upper: UInt16, description: String) throws {
        let range = try PortRange(parsing: string)
        #expect(range.lowerBound == lower)
        #expect(range.upperBound == upper)
        #expect(range.range == lower...upper)
        #expect(range.description == description)
        #expect(try PortRange(parsing: range.description) == range)
    }

    @Test(arguments: [
        ("", "it is empty"),
        ("   ", "it is empty"),
        ("abc", #"the port "abc" is not a decimal number"#),
        ("+80", #"the port "+80" is not a decimal number"#),
        ("8 0", #"the port "8 0" is not a decimal number"#),
        ("1.5", #"the port "1.5" is not a decimal number"#),
        ("-80", "the start is missing; expected a port such as 80 or a range such as 1000-2000"),
        ("80-", "the end is missing"),
        ("-", "the start is missing"),
        ("70000", "the port 70000 is greater than 65535"),
        ("99999999999999999999999", "the port 99999999999999999999999 is greater than 65535"),
        ("1-70000", "the end 70000 is greater than 65535"),
        ("x-2", #"the start "x" is not a decimal number"#),
        ("80-70", "the start 80 is greater than the end 70"),
        ("1-2-3", #"it has more than one "-""#),
        ("-1-5", #"it has more than one "-""#),
    ])
    func rejectsMalformedRanges(string: String, reason: String) {
        expectParseError(string, expected: "port range", reason: reason) {
            try PortRange(parsing: string)
        }
    }

    @Test func reversedRangeMessageIsExact() throws {
        let error = try #require(throws: ParseError.self) {
            try PortRange(parsing: "80-70")
        }
        #expect(error.value == "80-70")
        #expect(error.expected == "port range")
        #expect(error.reason == "the start 80 is greater than the end 70")
        #expect(error.description == #""80-70" is not a valid port range: the start 80 is greater than the end 70"#)
    }

    @Test(arguments: [
        (PortRange(80), UInt16(80), true),
        (PortRange(80), 81, false),
        (PortRange(1000...2000), 999, false),
        (PortRange(1000...2000), 1000, true),
        (PortRange(1000...2000), 2000, true),
        (PortRange(1000...2000), 2001, false),
        (PortRange(0...65535), 65535, true),
    ])
    func containment(range: PortRange, port: UInt16, contained: Bool) {
        #expect(range.contains(port) == contained)
    }

    @Test func countsPorts() {
        #expect(PortRange(80).count == 1)
        #expect(PortRange(1000...2000).count == 1001)
        #expect(PortRange(0...65535).count == 65536)
    }

    @Test func codesAsItsString() throws {
        let data = try JSONEncoder().encode([PortRange(80), PortRange(1000...2000)])
        #expect(String(decoding: data, as: UTF8.self) == #"["80","1000-2000"]"#)
        #expect(try JSONDecoder().decode([PortRange].self, from: data) == [PortRange(80), PortRange(1000...2000)])
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode([PortRange].self, from: Data(#"["80-70"]"#.utf8))
        }
    }
}
