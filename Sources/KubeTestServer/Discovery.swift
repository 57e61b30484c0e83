import KubeModel

/// The discovery documents: `/version`, `/api`, `/apis`, `/apis/{group}`, `/api/v1` and `/apis/{group}/{version}`,
/// built from the served resource definitions (one version per group).
enum Discovery {
    static let gitVersion = "v1.31.0-linkerd-swift-test"

    static var version: JSONValue {
        [
            "major": "1",
            "minor": "31",
            "gitVersion": .string(gitVersion),
            "gitCommit": "0000000000000000000000000000000000000000",
            "gitTreeState": "clean",
            "buildDate": "2024-08-13T00:00:00Z",
            "goVersion": "go1.22.5",
            "compiler": "gc",
            "platform": "linux/amd64",
        ]
    }

    /// `APIVersions` for `/api`; `serverAddress` is where clients reach the server (the request's Host).
    static func coreVersions(serverAddress: String) -> JSONValue {
        [
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [["clientCIDR": "0.0.0.0/0", "serverAddress": .string(serverAddress)]],
        ]
    }

    static func groupList(_ definitions: [ResourceDefinition]) -> JSONValue {
        let groups = Set(definitions.map(\.type.group)).filter { !$0.isEmpty }.sorted()
        return [
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": .array(groups.compactMap { group($0, definitions) }),
        ]
    }

    /// `APIGroup` for `/apis/{name}`; nil when no served type is in the group.
    static func group(_ name: String, _ definitions: [ResourceDefinition]) -> JSONValue? {
        let versions = Set(definitions.filter { $0.type.group == name }.map(\.type.version)).sorted()
        guard let preferred = versions.first else { return nil }
        func entry(_ version: String) -> JSONValue {
            ["groupVersion": .string("\(name)/\(version)"), "version": .string(version)]
        }
        return [
            "kind": "APIGroup",
            "apiVersion": "v1",
            "name": .string(name),
            "versions": .array(versions.map(entry)),
            "preferredVersion": entry(preferred),
        ]
    }

    /// `APIResourceList` for one group version, with a `{plural}/status` entry for each status subresource;
    /// nil when no served type is in it.
    static func resourceList(group: String, version: String, _ definitions: [ResourceDefinition]) -> JSONValue? {
        let served = definitions.filter { $0.type.group == group && $0.type.version == version }
            .sorted { $0.type.plural < $1.type.plural }
        guard let first = served.first else { return nil }
        var resources: [JSONValue] = []
        for definition in served {
            let type = definition.type
            resources.append([
                "name": .string(type.plural),
                "singularName": .string(type.kind.lowercased()),
                "namespaced": .bool(type.namespaced),
                "kind": .string(type.kind),
                "verbs": .array(definition.verbs.map(JSONValue.string)),
            ])
            if definition.hasStatusSubresource {
                resources.append([
                    "name": .string("\(type.plural)/status"),
                    "singularName": "",
                    "namespaced": .bool(type.namespaced),
                    "kind": .string(type.kind),
                    "verbs": ["get", "patch", "update"],
                ])
            }
        }
        return [
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": .string(first.type.apiVersion),
            "resources": .array(resources),
        ]
    }
}
