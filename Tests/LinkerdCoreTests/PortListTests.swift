import Foundation
import LinkerdCore
import Testing

@Suite struct PortListTests {
    @Test(arguments: [
        ("", [PortRange](), ""),
        ("   ", [], ""),
        ("80", [PortRange(80)], "80"),
        (
            "25,443,587,3306,4444,5432,6379,9300,11211",
            ([25, 443, 587, 3306, 4444, 5432, 6379, 9300, 11211] as [UInt16]).map { PortRange($0) },
            "25,443,587,3306,4444,5432,6379,9300,11211"
        ),
        ("80,1000-2000", [PortRange(80), PortRange(1000...2000)], "80,1000-2000"),
        (" 80 , 443 ,8080", [PortRange(80), PortRange(443), PortRange(8080)], "80,443,8080"),
        ("1000-2000,80,80", [PortRange(1000...2000), PortRange(80), PortRange(80)], "1000-2000,80,80"),
    ])
    func parsesListsInOrder(string: String, ranges: [PortRange], description: String) throws {
        let list = try PortList(parsing: string)
        #expect(list.ranges == ranges)
        #expect(list.isEmpty == ranges.isEmpty)
        #expect(list.description == description)
        #expect(try PortList(parsing: list.description) == list)
    }

    @Test(arguments: [
        (",80", "entry 1 is empty"),
        ("80,", "entry 2 is empty"),
        ("80,,443", "entry 2 is empty"),
        ("80, ,443", "entry 2 is empty"),
        ("80,abc", #"entry 2 "abc": the port "abc" is not a decimal number"#),
        ("80;443", #"entry 1 "80;443": the port "80;443" is not a decimal number"#),
        ("80,70000", #"entry 2 "70000": the port 70000 is greater than 65535"#),
        ("1-2,3-4,9-5", #"entry 3 "9-5": the start 9 is greater than the end 5"#),
    ])
    func rejectsMalformedLists(string: String, reason: String) {
        expectParseError(string, expected: "port list", reason: reason) {
            try PortList(parsing: string)
        }
    }

    @Test(arguments: [
        ("80,1000-2000", UInt16(80), true),
        ("80,1000-2000", 1500, true),
        ("80,1000-2000", 81, false),
        ("80,1000-2000", 2001, false),
        ("", 80, false),
    ])
    func containment(string: String, port: UInt16, contained: Bool) throws {
        #expect(try PortList(parsing: string).contains(port) == contained)
    }

    @Test(arguments: [
        ("", 0),
        ("80", 1),
        ("80,443", 2),
        ("80,80", 1),
        ("1000-2000", 1001),
        ("80,80,1-10,5-20,100", 22),
        ("5-20,1-10", 20),
        ("1-10,2-3", 10),
        ("0-65535,80", 65536),
    ])
    func countsDistinctPorts(string: String, count: Int) throws {
        #expect(try PortList(parsing: string).portCount == count)
    }

    @Test func buildsFromRanges() {
        let list: PortList = [PortRange(80), PortRange(8000...8080)]
        #expect(list == PortList([PortRange(80), PortRange(8000...8080)]))
        #expect(list.description == "80,8000-8080")
        #expect(PortList([]).isEmpty)
    }

    @Test func codesAsItsString() throws {
        let list: PortList = [PortRange(80), PortRange(8000...8080)]
        let data = try JSONEncoder().encode([list])
        #expect(String(decoding: data, as: UTF8.self) == #"["80,8000-8080"]"#)
        #expect(try JSONDecoder().decode([PortList].self, from: data) == [list])
    }
}
