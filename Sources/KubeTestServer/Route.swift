import Foundation
import KubeModel

/// What a request path names, parsed as kube-apiserver parses it.
///
/// Resource paths are `/api/v1/...` and `/apis/{group}/{version}/...`, followed by
/// `namespaces/{ns}/{plural}[/{name}[/{subresource}]]` for namespaced types (or `{plural}` alone: all namespaces),
/// and `{plural}[/{name}[/{subresource}]]` for cluster-scoped ones. Namespaces are themselves a cluster-scoped type,
/// so `/api/v1/namespaces/{name}` is a Namespace. Anything else is 404 `the server could not find the requested
/// resource`; the deprecated `/watch/` paths are not served.
enum Route: Sendable {
    case version
    /// `/healthz`, `/livez`, `/readyz`.
    case health
    /// `/api`.
    case coreVersions
    /// `/apis`.
    case groupList
    /// `/apis/{group}`.
    case group(String)
    /// `/api/v1`, `/apis/{group}/{version}`.
    case resourceList(group: String, version: String)
    /// A list, watch, create or delete-collection path; a nil namespace of a namespaced type means all namespaces.
    case collection(ResourceDefinition, namespace: String?)
    case object(ResourceDefinition, namespace: String?, name: String, subresource: String?)

    init(path: String, definitions: [ResourceDefinition]) throws(Status) {
        let segments = path.split(separator: "/").map { String($0).removingPercentEncoding ?? String($0) }
        switch segments.first {
        case "version" where segments.count == 1:
            self = .version
        case "healthz", "livez", "readyz":
            guard segments.count == 1 else { throw Status.resourceNotFound }
            self = .health
        case "api":
            guard segments.count > 1 else {
                self = .coreVersions
                return
            }
            self = try Self.groupVersionRoute(
                group: "", version: segments[1], rest: Array(segments.dropFirst(2)), definitions)
        case "apis":
            switch segments.count {
            case 1: self = .groupList
            case 2:
                guard definitions.contains(where: { $0.type.group == segments[1] }), !segments[1].isEmpty else {
                    throw Status.resourceNotFound
                }
                self = .group(segments[1])
            default:
                self = try Self.groupVersionRoute(
                    group: segments[1], version: segments[2], rest: Array(segments.dropFirst(3)), definitions)
            }
        default:
            throw Status.resourceNotFound
        }
    }

    private static func groupVersionRoute(
        group: String, version: String, rest: [String], _ definitions: [ResourceDefinition]
    ) throws(Status) -> Route {
        let served = definitions.filter { $0.type.group == group && $0.type.version == version }
        guard !served.isEmpty else { throw Status.resourceNotFound }
        func definition(_ plural: String) -> ResourceDefinition? {
            served.first { $0.type.plural == plural }
        }
        guard let first = rest.first else { return .resourceList(group: group, version: version) }
        if first == "namespaces", rest.count >= 3, let namespaced = definition(rest[2]), namespaced.type.namespaced {
            return try objectRoute(namespaced, namespace: rest[1], rest: Array(rest.dropFirst(3)))
        }
        guard let type = definition(first) else { throw Status.resourceNotFound }
        if type.type.namespaced {
            guard rest.count == 1 else { throw Status.resourceNotFound }
            return .collection(type, namespace: nil)
        }
        return try objectRoute(type, namespace: nil, rest: Array(rest.dropFirst()))
    }

    private static func objectRoute(_ definition: ResourceDefinition, namespace: String?, rest: [String])
        throws(Status) -> Route
    {
        switch rest.count {
        case 0: return .collection(definition, namespace: namespace)
        case 1: return .object(definition, namespace: namespace, name: rest[0], subresource: nil)
        case 2: return .object(definition, namespace: namespace, name: rest[0], subresource: rest[1])
        default: throw Status.resourceNotFound
        }
    }
}
