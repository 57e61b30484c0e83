import Foundation
import KubeModel
import LinkerdInject
import LinkerdTestSupport
import Testing

/// Golden files for whole injections: each folder of `Fixtures/` holds an input object (`pod.json`, whatever its
/// kind), optionally the namespace (`namespace.json`, for its annotations), the mesh values (`config.yaml`) and
/// the request (`request.json`: `origin` `webhook`/`cli`, `owner` `{kind, name}`, `namespace`), and the expected
/// `report.golden.json` (skip reasons, where the inject annotation was, warnings), `patch.golden.json` (`null` for
/// no patch) and `patched.golden.json` (the input with the patch applied by KubeModel's `JSONPatch.apply`).
///
/// Run with `UPDATE_GOLDEN=1` to rewrite the golden files from the current output, then review the diff.
@Suite("Injection golden files")
struct GoldenTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    static var cases: [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: fixtures.path)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted()
    }

    @Test("fixture folders are present")
    func fixturesExist() {
        #expect(Self.cases.count >= 20, "found \(Self.cases) in \(Self.fixtures.path)")
    }

    @Test("patch and patched object match the golden files", arguments: cases)
    func golden(_ name: String) throws {
        let folder = Self.fixtures.appendingPathComponent(name)
        let (request, configuration) = try Self.load(folder)
        let result = ProxyInjector(configuration: configuration).inject(request)
        let patched = try result.patch.map { try $0.apply(to: request.object) } ?? request.object
        let report: JSONValue = [
            "skipReasons": .array(result.report.skipReasons.map { .string($0.rawValue) }),
            "annotationAt": .string(result.report.annotationAt),
            "warnings": .array(result.report.warnings.map { .string($0.description) }),
        ]
        try Self.compare(try prettyJSON(report), file: folder.appendingPathComponent("report.golden.json"))
        try Self.compare(try prettyJSON(result.patch), file: folder.appendingPathComponent("patch.golden.json"))
        try Self.compare(try prettyJSON(patched), file: folder.appendingPathComponent("patched.golden.json"))
    }

    static func load(_ folder: URL) throws -> (InjectionRequest, MeshConfiguration) {
        func read(_ file: String) throws -> String? {
            let url = folder.appendingPathComponent(file)
            guard FileManager.default.fileExists(atPath: url.path) else { return nil }
            return try String(contentsOf: url, encoding: .utf8)
        }
        let object = try json(try #require(try read("pod.json"), "pod.json is missing in \(folder.path)"))
        let namespace = try read("namespace.json").map(json)
        let options = try read("request.json").map(json) ?? [:]
        let configuration = try MeshConfiguration(
            valuesYAML: try read("config.yaml") ?? "", trustAnchorsPEM: testTrustAnchors)
        let owner = options["owner"].flatMap { owner -> WorkloadOwner? in
            guard let kind = owner["kind"]?.stringValue, let name = owner["name"]?.stringValue else { return nil }
            return WorkloadOwner(kind: kind, name: name)
        }
        let request = InjectionRequest(
            object: object,
            kind: try #require(object["kind"]?.stringValue),
            namespace: options["namespace"]?.stringValue ?? namespace?["metadata"]?["name"]?.stringValue
                ?? object["metadata"]?["namespace"]?.stringValue ?? "default",
            namespaceAnnotations: namespace?["metadata"]?["annotations"]?.objectValue?.compactMapValues(\.stringValue)
                ?? [:],
            owner: owner,
            origin: options["origin"]?.stringValue == "cli" ? .cli : .webhook)
        return (request, configuration)
    }

    /// Compares `actual` with the golden file, or rewrites the file when updating.
    static func compare(_ actual: String, file: URL, sourceLocation: SourceLocation = #_sourceLocation) throws {
        if let mismatch = try GoldenFile.mismatch(
            actual, file: file,
            name: "\(file.lastPathComponent) of \(file.deletingLastPathComponent().lastPathComponent)")
        {
            Issue.record(Comment(rawValue: mismatch), sourceLocation: sourceLocation)
        }
    }
}
