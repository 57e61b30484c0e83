import Foundation
import KubeModel
import Yams

/// The manifests in manifests/, read with Yams: every document, and typed views of the objects the tests check.
struct ManifestFiles {
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let directory = packageRoot.appendingPathComponent("manifests")

    /// One YAML document of a manifest file.
    struct Document {
        var file: String
        var node: Node
        var header: Header

        func decode<T: Decodable>(_ type: T.Type = T.self) throws -> T {
            try YAMLDecoder().decode(type, from: node)
        }
    }

    /// The fields every object has.
    struct Header: Decodable {
        var apiVersion: String
        var kind: String
        var metadata: ObjectMeta
    }

    /// The `*.yaml` files in name order, as `kubectl apply -f manifests/` applies them.
    let files: [URL]
    let documents: [Document]

    init() throws {
        files = try FileManager.default.contentsOfDirectory(atPath: Self.directory.path)
            .filter { $0.hasSuffix(".yaml") }.sorted().map { Self.directory.appendingPathComponent($0) }
        var documents: [Document] = []
        for file in files {
            for node in try Yams.compose_all(yaml: String(contentsOf: file, encoding: .utf8)) {
                let header = try YAMLDecoder().decode(Header.self, from: node)
                documents.append(Document(file: file.lastPathComponent, node: node, header: header))
            }
        }
        self.documents = documents
    }

    /// The only object of `kind` named `name`.
    func object(_ kind: String, _ name: String) throws -> Document {
        let matches = documents.filter { $0.header.kind == kind && $0.header.metadata.name == name }
        guard matches.count == 1 else {
            throw MissingObject(description: "expected one \(kind) \(name), found \(matches.count)")
        }
        return matches[0]
    }

    struct MissingObject: Error, CustomStringConvertible {
        var description: String
    }
}

/// The RBAC kinds, which KubeModel does not model.
struct PolicyRule: Decodable, Hashable {
    var apiGroups: [String]
    var resources: [String]
    var verbs: [String]
    var resourceNames: [String]?
}

struct RBACRole: Decodable {
    var metadata: ObjectMeta
    var rules: [PolicyRule]
}

struct RBACBinding: Decodable {
    struct RoleRef: Decodable, Hashable {
        var apiGroup: String
        var kind: String
        var name: String
    }

    struct Subject: Decodable, Hashable {
        var kind: String
        var name: String
        var namespace: String?
    }

    var metadata: ObjectMeta
    var roleRef: RoleRef
    var subjects: [Subject]
}

/// Every grant of a set of rules, one per (group, resource, verb, name) so that rule layouts compare equal.
struct Grant: Hashable, CustomStringConvertible {
    var group: String
    var resource: String
    var verb: String
    var name: String?

    static func of(_ rules: [PolicyRule]) -> Set<Grant> {
        var grants: Set<Grant> = []
        for rule in rules {
            for group in rule.apiGroups {
                for resource in rule.resources {
                    for verb in rule.verbs {
                        if let names = rule.resourceNames {
                            for name in names {
                                grants.insert(Grant(group: group, resource: resource, verb: verb, name: name))
                            }
                        } else {
                            grants.insert(Grant(group: group, resource: resource, verb: verb, name: nil))
                        }
                    }
                }
            }
        }
        return grants
    }

    static func grants(_ group: String, _ resources: [String], _ verbs: [String], name: String? = nil) -> Set<Grant> {
        Set(
            resources.flatMap { resource in
                verbs.map { Grant(group: group, resource: resource, verb: $0, name: name) }
            })
    }

    var description: String {
        "\(group.isEmpty ? "core" : group)/\(resource) \(verb)\(name.map { " (\($0))" } ?? "")"
    }
}
