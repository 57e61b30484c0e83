/// What the mesh needs from the Kubernetes API server. `KubeClient` implements it over HTTP(S); tests may use the
/// loopback `KubeTestServer` through the same client. Every method throws `KubeError`, or `CancellationError`
/// when its task is cancelled.
///
/// `update` replaces the whole object: a typed value carries only the fields this package models, so update
/// partially modelled objects as `JSONValue` (read, change, write back) or change them with `patch`.
///
/// Methods take the `ResourceType` explicitly and are generic over the body type, so the same call serves typed
/// resources (`Pod`) and lossless `JSONValue` documents. The typed conveniences below pass `R.resourceType`.
public protocol KubeAPI: Sendable {
    func get<T: Decodable & Sendable>(
        _ resource: ResourceType, namespace: String?, name: String, subresource: String?, as type: T.Type
    ) async throws -> T

    /// One page of a list; follow `metadata.continue` for the next.
    func list<T: Codable & Sendable>(
        _ resource: ResourceType, namespace: String?, options: ListOptions, as type: T.Type
    ) async throws -> ObjectList<T>

    func create<T: Codable & Sendable>(
        _ resource: ResourceType, namespace: String?, object: T, subresource: String?
    ) async throws -> T

    /// A PUT; the object's `metadata.resourceVersion` makes it conditional (409 `conflict` when stale).
    func update<T: Codable & Sendable>(
        _ resource: ResourceType, namespace: String?, name: String, object: T, subresource: String?
    ) async throws -> T

    func patch<T: Decodable & Sendable>(
        _ resource: ResourceType, namespace: String?, name: String, patch: Patch, subresource: String?, as type: T.Type
    ) async throws -> T

    func delete(_ resource: ResourceType, namespace: String?, name: String) async throws

    /// Opens a watch. The stream ends when the server closes it (normally after its timeout) and throws on
    /// errors, including a `410 Gone` `ERROR` event. Resuming is the caller's job (see `Watcher`).
    func watch<T: Decodable & Sendable>(
        _ resource: ResourceType, namespace: String?, options: WatchOptions, as type: T.Type
    ) async throws -> AsyncThrowingStream<WatchEvent<T>, any Error>
}

/// Query parameters of a list.
public struct ListOptions: Hashable, Sendable {
    public var labelSelector: String?
    public var fieldSelector: String?
    public var limit: Int?
    public var continueToken: String?
    public var resourceVersion: String?

    public init(
        labelSelector: String? = nil, fieldSelector: String? = nil, limit: Int? = nil, continueToken: String? = nil,
        resourceVersion: String? = nil
    ) {
        self.labelSelector = labelSelector
        self.fieldSelector = fieldSelector
        self.limit = limit
        self.continueToken = continueToken
        self.resourceVersion = resourceVersion
    }
}

/// Query parameters of a watch.
public struct WatchOptions: Hashable, Sendable {
    public var resourceVersion: String?
    public var labelSelector: String?
    public var fieldSelector: String?
    public var allowWatchBookmarks: Bool
    /// Asks the server to end the watch after this long; the client then resumes.
    public var timeoutSeconds: Int?

    public init(
        resourceVersion: String? = nil, labelSelector: String? = nil, fieldSelector: String? = nil,
        allowWatchBookmarks: Bool = true, timeoutSeconds: Int? = nil
    ) {
        self.resourceVersion = resourceVersion
        self.labelSelector = labelSelector
        self.fieldSelector = fieldSelector
        self.allowWatchBookmarks = allowWatchBookmarks
        self.timeoutSeconds = timeoutSeconds
    }
}

/// One event of a watch stream. `ERROR` events are thrown as `KubeError`, not delivered.
public enum WatchEvent<T: Sendable>: Sendable {
    case added(T)
    case modified(T)
    case deleted(T)
    /// The server's progress marker: nothing changed, but the watch may resume from here.
    case bookmark(resourceVersion: String)
}

extension WatchEvent: Equatable where T: Equatable {}

/// A patch body and its content type.
public enum Patch: Hashable, Sendable {
    case json(JSONPatch)
    case merge(JSONValue)

    public var contentType: String {
        switch self {
        case .json: "application/json-patch+json"
        case .merge: "application/merge-patch+json"
        }
    }
}

// MARK: - Typed conveniences

extension KubeAPI {
    public func get<R: KubeResource>(_ type: R.Type, namespace: String? = nil, name: String) async throws -> R {
        try await get(R.resourceType, namespace: namespace, name: name, subresource: nil, as: R.self)
    }

    public func list<R: KubeResource>(
        _ type: R.Type, namespace: String? = nil, options: ListOptions = ListOptions()
    ) async throws -> ObjectList<R> {
        try await list(R.resourceType, namespace: namespace, options: options, as: R.self)
    }

    /// Lists every page, following `continue` tokens.
    public func listAll<R: KubeResource>(
        _ type: R.Type, namespace: String? = nil, options: ListOptions = ListOptions()
    ) async throws -> [R] {
        var options = options
        var items: [R] = []
        while true {
            let page = try await list(R.resourceType, namespace: namespace, options: options, as: R.self)
            items += page.items
            guard let next = page.metadata.continue, !next.isEmpty else { return items }
            options.continueToken = next
        }
    }

    public func create<R: KubeResource>(_ object: R) async throws -> R {
        try await create(R.resourceType, namespace: object.metadata.namespace, object: object, subresource: nil)
    }

    public func update<R: KubeResource>(_ object: R) async throws -> R {
        try await update(
            R.resourceType, namespace: object.metadata.namespace, name: object.metadata.name ?? "", object: object,
            subresource: nil)
    }

    public func updateStatus<R: KubeResource>(_ object: R) async throws -> R {
        try await update(
            R.resourceType, namespace: object.metadata.namespace, name: object.metadata.name ?? "", object: object,
            subresource: "status")
    }

    public func patch<R: KubeResource>(
        _ type: R.Type, namespace: String? = nil, name: String, patch: Patch, subresource: String? = nil
    ) async throws -> R {
        try await self.patch(
            R.resourceType, namespace: namespace, name: name, patch: patch, subresource: subresource, as: R.self)
    }

    public func delete<R: KubeResource>(_ type: R.Type, namespace: String? = nil, name: String) async throws {
        try await delete(R.resourceType, namespace: namespace, name: name)
    }

    public func watch<R: KubeResource>(
        _ type: R.Type, namespace: String? = nil, options: WatchOptions = WatchOptions()
    ) async throws -> AsyncThrowingStream<WatchEvent<R>, any Error> {
        try await watch(R.resourceType, namespace: namespace, options: options, as: R.self)
    }
}
