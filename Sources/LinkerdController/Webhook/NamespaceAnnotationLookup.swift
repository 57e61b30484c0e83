import KubeModel
import KubeRuntime

/// Where the webhook reads a namespace's annotations (the namespace-level `linkerd.io/inject` and
/// `config.linkerd.io/*` that pods inherit).
///
/// The Go injector reads them from an informer's cache. Here that is a `Store<Namespace>` filled by a `Reflector`
/// that the caller runs; a namespace the store does not hold (not synced yet, or created a moment ago) is read from
/// the API server instead. A namespace that does not exist has no annotations.
public struct NamespaceAnnotationLookup: Sendable {
    private let local: @Sendable (String) -> [String: String]?
    private let remote: @Sendable (String) async throws -> [String: String]

    /// From `store`, falling back to the API server for namespaces the store does not hold.
    public init(store: Store<Namespace>, api: any KubeAPI) {
        local = { name in
            store.get(ObjectKey(namespace: nil, name: name)).map { $0.metadata.annotations ?? [:] }
        }
        remote = { name in try await Self.fetch(name, from: api) }
    }

    /// Always from the API server (one GET per review): for tools and tests, not for a busy webhook.
    public init(api: any KubeAPI) {
        local = { _ in nil }
        remote = { name in try await Self.fetch(name, from: api) }
    }

    /// Fixed annotations per namespace name; other namespaces have none.
    public init(annotations: [String: [String: String]]) {
        local = { annotations[$0] ?? [:] }
        remote = { annotations[$0] ?? [:] }
    }

    /// The annotations when known without I/O.
    func lookupLocally(_ namespace: String) -> [String: String]? {
        local(namespace)
    }

    /// The annotations, from the API server when they are not known locally.
    ///
    /// - Throws: the API server's error (other than not found).
    func lookup(_ namespace: String) async throws -> [String: String] {
        if let known = local(namespace) { return known }
        return try await remote(namespace)
    }

    private static func fetch(_ name: String, from api: any KubeAPI) async throws -> [String: String] {
        do {
            return try await api.get(Namespace.self, name: name).metadata.annotations ?? [:]
        } catch let error as KubeError where error.code == .notFound {
            return [:]
        }
    }
}
