import Foundation
import KubeModel
import LinkerdCLI
import Testing

@Suite("Reading and writing manifests")
struct ManifestCodecTests {
    @Test("YAML scalars take their YAML types; quoted ones stay strings; integers stay exact")
    func scalarTypes() throws {
        let parsed = try objects(
            """
            kind: ConfigMap
            big: 9007199254740993
            hex: 0x1F
            negative: -12
            float: 1.5
            quotedNumber: "443"
            yes: yes
            quotedYes: "yes"
            nothing: ~
            empty: ""
            timestamp: 2024-01-01T00:00:00Z
            tagged: !!str 12
            """)
        let object = try #require(parsed.first)
        #expect(object["big"] == .integer(9_007_199_254_740_993))
        #expect(object["hex"] == .integer(31))
        #expect(object["negative"] == .integer(-12))
        #expect(object["float"] == .double(1.5))
        #expect(object["quotedNumber"] == .string("443"))
        #expect(object["yes"] == .bool(true))
        #expect(object["quotedYes"] == .string("yes"))
        #expect(object["nothing"] == .null)
        #expect(object["empty"] == .string(""))
        #expect(object["timestamp"] == .string("2024-01-01T00:00:00Z"))
        #expect(object["tagged"] == .string("12"))
    }

    @Test("A stream: documents split on ---, empty documents dropped, lists kept whole")
    func multipleDocuments() throws {
        let parsed = try objects(try Fixture.text("workloads.yaml"))
        #expect(
            parsed.compactMap { $0["kind"]?.stringValue } == [
                "Namespace", "Deployment", "Service", "ConfigMap", "CronJob", "Pod", "List",
            ])
        let blank = try objects("---\n# only a comment\n---\nkind: A\n---\n")
        #expect(blank == [["kind": "A"]])
    }

    @Test("A JSON object, and JSON that YAML reads")
    func json() throws {
        let object = try objects(#"{"kind": "Pod", "metadata": {"name": "p"}, "spec": {"n": 12345678901234}}"#)
        #expect(object == [["kind": "Pod", "metadata": ["name": "p"], "spec": ["n": .integer(12_345_678_901_234)]]])
    }

    @Test(
        "Written YAML reads back to the same value, strings that look like other types included",
        arguments: [
            "yes", "no", "y", "N", "on", "true", "null", "~", "", "443", "0755", "0x1F", "1.5", "1e3", ".inf",
            "2024-01-01", "=", "<<", "- item", "key: value", "#comment", " leading", "trailing ", "a\nb",
            "ends with newline\n", "  indented\nlines\n", "tab\there", "quote ' and \" both", "ünïcödé ✓",
            "*alias", "&anchor", "!tag", "%percent", "@at", "`backtick", "{flow}", "[flow]", "a,b", "100m",
        ])
    func stringsRoundTrip(_ string: String) throws {
        let original: JSONValue = ["kind": "ConfigMap", "data": ["value": .string(string), string: "key"]]
        let written = ManifestCodec.yaml([original])
        let reread = try objects(written)
        #expect(reread == [original], "written as:\n\(written)")
    }

    @Test("Numbers, booleans, null and nesting round-trip; several documents are separated by ---")
    func valuesRoundTrip() throws {
        let first: JSONValue = [
            "kind": "Thing",
            "spec": [
                "int": .integer(Int64.max), "min": .integer(Int64.min), "double": 0.25, "bool": false, "null": nil,
                "list": [1, "two", [3], ["four": 4]], "empty": [:], "emptyList": [],
            ],
        ]
        let second: JSONValue = ["kind": "Other", "metadata": ["name": "x"]]
        let written = ManifestCodec.yaml([first, second])
        #expect(written.components(separatedBy: "\n---\n").count == 2)
        #expect(try objects(written) == [first, second])
    }

    @Test("JSON output: one object as itself, several as a List")
    func jsonOutput() throws {
        let one: JSONValue = ["kind": "A", "n": 1]
        let two: JSONValue = ["kind": "B"]
        #expect(try JSONValue(json: Data(ManifestCodec.json([one]).utf8)) == one)
        #expect(
            try JSONValue(json: Data(ManifestCodec.json([one, two]).utf8))
                == ["apiVersion": "v1", "kind": "List", "items": [one, two]])
        #expect(ManifestCodec.json([]) == "")
    }

    @Test("Invalid YAML is reported with the input, the document and the line")
    func invalidYAML() throws {
        let source = ManifestSource(name: "broken.yaml", text: try Fixture.text("invalid-second-document.yaml"))
        let error = try #require(throws: ManifestError.self) { try ManifestCodec.objects(in: source) }
        #expect(error.source == "broken.yaml")
        #expect(error.document == 2)
        #expect(error.description.hasPrefix("broken.yaml: document 2: invalid YAML: "))
        #expect(error.description.contains("line 10"))
    }

    @Test(
        "Documents that are not Kubernetes objects are refused",
        arguments: [
            ("kind: A\n---\njust text\n", 2, "of type string"),
            ("- a\n- b\n", 1, "of type array"),
            ("metadata: {name: x}\n", 1, "it has no \"kind\""),
            ("kind: A\nkind: B\n", 1, "kind"),
        ])
    func notObjects(_ text: String, document: Int, fragment: String) throws {
        let error = try #require(throws: ManifestError.self) {
            try ManifestCodec.objects(in: ManifestSource(name: "in", text: text))
        }
        #expect(error.document == document)
        #expect(error.description.contains(fragment), "\(error)")
    }

    @Test("A nested alias bomb fails fast with an error naming the input and the document")
    func aliasBomb() throws {
        var yaml = "kind: ConfigMap\n---\nkind: ConfigMap\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        for level in 1..<12 {
            let previous = "*a\(level - 1)"
            yaml += "a\(level): &a\(level) [\(Array(repeating: previous, count: 10).joined(separator: ", "))]\n"
        }
        let start = ContinuousClock.now
        #expect {
            try ManifestCodec.objects(in: ManifestSource(name: "bomb.yaml", text: yaml))
        } throws: { error in
            (error as? ManifestError)?.description
                == "bomb.yaml: document 2: the document expands to more than 1000000 values (through aliases?)"
        }
        #expect(ContinuousClock.now - start < .seconds(30))
    }

    @Test("Non-finite numbers are refused, naming the document and the position", arguments: [".inf", "-.inf", ".nan"])
    func nonFinite(_ number: String) throws {
        #expect {
            try ManifestCodec.objects(
                in: ManifestSource(name: "in.yaml", text: "kind: A\n---\nkind: ConfigMap\nx: \(number)\n"))
        } throws: { error in
            (error as? ManifestError)?.description
                == "in.yaml: document 2: the number \(number) at line 4, column 4 is not finite; JSON has no such numbers"
        }
    }
}
