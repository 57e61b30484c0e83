import Foundation
import KubeModel
import LinkerdCLI

/// Files in Tests/LinkerdCLITests/Fixtures.
enum Fixture {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
        "Fixtures")

    static func path(_ name: String) -> String {
        directory.appendingPathComponent(name).path
    }

    static func text(_ name: String) throws -> String {
        try String(contentsOfFile: path(name), encoding: .utf8)
    }
}

/// Runs the command line as the executable would, with `standardInput` as standard input.
func linkerd(_ arguments: [String], standardInput: String = "") -> CommandOutcome {
    LinkerdCommand.run(arguments, context: .standardInput(standardInput))
}

/// The objects of a YAML or JSON text.
func objects(_ text: String, name: String = "output") throws -> [JSONValue] {
    try ManifestCodec.objects(in: ManifestSource(name: name, text: text))
}

/// The object with every member whose value is an empty mapping or list removed, recursively.
///
/// The comparison rule of the round-trip tests: uninjecting removes what injection added, but may leave the
/// mapping that held it (`annotations: {}`, `labels: {}`) or an emptied list (`initContainers: []`, `volumes: []`);
/// for Kubernetes an empty mapping or list and an absent one mean the same.
func withoutEmptyCollections(_ value: JSONValue) -> JSONValue {
    switch value {
    case .object(let members):
        var kept: [String: JSONValue] = [:]
        for (key, member) in members {
            let normalized = withoutEmptyCollections(member)
            if normalized != .object([:]) && normalized != .array([]) {
                kept[key] = normalized
            }
        }
        return .object(kept)
    case .array(let elements):
        return .array(elements.map(withoutEmptyCollections))
    default:
        return value
    }
}

/// A temporary directory removed when the closure returns.
func withTemporaryDirectory<T>(_ body: (URL) throws -> T) throws -> T {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
        "linkerd-cli-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    return try body(directory)
}

/// The annotations of the pod (template) of `object`.
func podAnnotations(_ object: JSONValue) -> [String: JSONValue]? {
    let kind = object["kind"]?.stringValue ?? ""
    let path: String
    switch kind {
    case "Pod", "Namespace", "Service": path = "metadata.annotations"
    case "CronJob": path = "spec.jobTemplate.spec.template.metadata.annotations"
    default: path = "spec.template.metadata.annotations"
    }
    return object.value(atPath: path)?.objectValue
}

/// The containers and init containers of the pod (template) of `object`, by name.
func containerNames(_ object: JSONValue) -> [String] {
    let kind = object["kind"]?.stringValue ?? ""
    let spec: String
    switch kind {
    case "Pod": spec = "spec"
    case "CronJob": spec = "spec.jobTemplate.spec.template.spec"
    default: spec = "spec.template.spec"
    }
    return ["initContainers", "containers"].flatMap { key in
        (object.value(atPath: "\(spec).\(key)")?.arrayValue ?? []).compactMap { $0["name"]?.stringValue }
    }
}

/// The objects with the items of lists in their place.
func flattened(_ objects: [JSONValue]) -> [JSONValue] {
    objects.flatMap { object -> [JSONValue] in
        if object["kind"] == .string("List"), let items = object["items"]?.arrayValue {
            return flattened(items)
        }
        return [object]
    }
}
