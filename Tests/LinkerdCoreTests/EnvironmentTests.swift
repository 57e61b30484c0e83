import Foundation
import LinkerdCore
import Testing

@Suite struct EnvironmentTests {
    private struct Refusal: Error, CustomStringConvertible {
        var description: String { "refused for a test" }
    }

    @Test func readsStringsTreatingEmptyAsUnset() throws {
        let environment: DictionaryEnvironment = ["NAME": "linkerd", "EMPTY": ""]
        #expect(environment.value("NAME") == "linkerd")
        #expect(environment.value("EMPTY") == "")
        #expect(environment.value("UNSET") == nil)
        #expect(environment.string("NAME") == "linkerd")
        #expect(environment.string("EMPTY") == nil)
        #expect(environment.string("UNSET") == nil)
        #expect(try environment.required("NAME") == "linkerd")
    }

    @Test(arguments: ["EMPTY", "UNSET"])
    func requiredVariablesMustBeSet(name: String) {
        let environment = DictionaryEnvironment(["EMPTY": ""])
        #expect(throws: EnvironmentError.missing(name: name)) {
            try environment.required(name)
        }
        #expect(EnvironmentError.missing(name: name).description == "\(name) must be set")
        #expect(EnvironmentError.missing(name: name).name == name)
    }

    @Test func duplicateLiteralKeysKeepTheLastValue() {
        let environment: DictionaryEnvironment = ["A": "1", "A": "2"]
        #expect(environment.value("A") == "2")
    }

    @Test func parseWrapsErrorsInTheProxyWording() throws {
        let environment: DictionaryEnvironment = ["PORTS": "80-70", "OTHER": "x", "GOOD": "1000-2000"]
        do {
            _ = try environment.parse("PORTS", PortRange.init(parsing:))
            Issue.record("expected PORTS to be rejected")
        } catch {
            #expect(error == .invalid(name: "PORTS", value: "80-70", reason: "the start 80 is greater than the end 70"))
            #expect(error.description == #"PORTS="80-70" is not valid: the start 80 is greater than the end 70"#)
            #expect(error.name == "PORTS")
        }
        #expect(throws: EnvironmentError.invalid(name: "OTHER", value: "x", reason: "refused for a test")) {
            try environment.parse("OTHER") { _ in throw Refusal() }
        }
        #expect(try environment.parse("GOOD", PortRange.init(parsing:)) == PortRange(1000...2000))
        #expect(try environment.parse("UNSET") { _ in throw Refusal() } == nil)
    }

    @Test func invalidValuesAreQuotedAndEscaped() {
        let error = EnvironmentError.invalid(name: "X", value: "a\"b\n", reason: "no")
        #expect(error.description == #"X="a\"b\n" is not valid: no"#)
    }

    @Test(arguments: [("true", true), ("false", false)])
    func readsBooleans(value: String, expected: Bool) throws {
        #expect(try DictionaryEnvironment(["FLAG": value]).bool("FLAG") == expected)
    }

    @Test(arguments: ["True", "TRUE", "1", "yes", " true"])
    func rejectsOtherBooleans(value: String) {
        #expect(throws: EnvironmentError.invalid(name: "FLAG", value: value, reason: #"expected "true" or "false""#)) {
            try DictionaryEnvironment(["FLAG": value]).bool("FLAG")
        }
    }

    @Test(arguments: [("42", 42), ("-3", -3), ("+7", 7), ("0", 0)])
    func readsIntegers(value: String, expected: Int) throws {
        #expect(try DictionaryEnvironment(["N": value]).int("N") == expected)
    }

    @Test(arguments: ["4.2", "ten", " 1", "1_000", "99999999999999999999"])
    func rejectsOtherIntegers(value: String) throws {
        let environment = DictionaryEnvironment(["N": value])
        #expect(
            throws: EnvironmentError.invalid(
                name: "N",
                value: value,
                reason: "expected a decimal integer from \(Int.min) to \(Int.max)"
            )
        ) {
            try environment.int("N")
        }
    }

    @Test(arguments: [("8080", UInt16(8080)), ("0", 0), ("65535", 65535)])
    func readsPorts(value: String, expected: UInt16) throws {
        #expect(try DictionaryEnvironment(["PORT": value]).port("PORT") == expected)
    }

    @Test(arguments: ["65536", "-1", "+80", "http", "80 "])
    func rejectsOtherPorts(value: String) {
        let expected = EnvironmentError.invalid(
            name: "PORT",
            value: value,
            reason: "expected a port number from 0 to 65535"
        )
        #expect(throws: expected) {
            try DictionaryEnvironment(["PORT": value]).port("PORT")
        }
    }

    @Test func readsTypedValues() throws {
        let environment: DictionaryEnvironment = [
            "TIMEOUT": "1h30m",
            "OPAQUE": "25,443,587",
            "NETWORKS": "10.0.0.0/8,fd00::/8",
        ]
        #expect(try environment.duration("TIMEOUT") == GoDuration(.seconds(5400)))
        #expect(try environment.portList("OPAQUE") == [PortRange(25), PortRange(443), PortRange(587)])
        #expect(try environment.cidrs("NETWORKS")?.map(\.description) == ["10.0.0.0/8", "fd00::/8"])
        #expect(try environment.duration("UNSET") == nil)
        #expect(try environment.portList("UNSET") == nil)
        #expect(try environment.cidrs("UNSET") == nil)
        #expect(try environment.bool("UNSET") == nil)
        #expect(try environment.port("UNSET") == nil)
    }

    @Test(arguments: [
        (
            "TIMEOUT", "10",
            #"TIMEOUT="10" is not valid: the number 10 has no unit; expected one of ns, us, µs, ms, s, m, h, d"#
        ),
        ("OPAQUE", "80,", #"OPAQUE="80," is not valid: entry 2 is empty"#),
        (
            "NETWORKS", "10.0.0.0/8,10.0.0.0/33",
            #"NETWORKS="10.0.0.0/8,10.0.0.0/33" is not valid: "#
                + #"entry 2 "10.0.0.0/33": the prefix length 33 is greater than 32"#
        ),
    ])
    func typedValuesReportTheirReason(name: String, value: String, description: String) {
        let environment = DictionaryEnvironment([name: value])
        do {
            switch name {
            case "TIMEOUT": _ = try environment.duration(name)
            case "OPAQUE": _ = try environment.portList(name)
            default: _ = try environment.cidrs(name)
            }
            Issue.record("expected \(name) to be rejected")
        } catch {
            #expect(error.description == description)
        }
    }

    @Test func processEnvironmentReadsTheProcessEnvironment() {
        let environment = ProcessEnvironment()
        for (name, value) in ProcessInfo.processInfo.environment.prefix(5) {
            #expect(environment.value(name) == value)
        }
        #expect(environment.value("LINKERD_CORE_TESTS_VARIABLE_THAT_IS_NEVER_SET") == nil)
    }
}
