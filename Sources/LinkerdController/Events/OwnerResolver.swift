import KubeModel
import LinkerdInject
import Synchronization

/// The workload a pod belongs to: the object to report Events on, and its kind and name for the injector.
public struct ResolvedOwner: Sendable, Hashable {
    /// The owner as an `involvedObject` (apiVersion, kind, namespace, name, uid).
    public var reference: ObjectReference
    /// The owner's lower-cased kind and name.
    public var owner: WorkloadOwner

    public init(reference: ObjectReference, owner: WorkloadOwner) {
        self.reference = reference
        self.owner = owner
    }
}

/// Finds the workload that owns a pod from its `ownerReferences`, as the Go injector's `GetOwnerKindAndName` does
/// (control-plane.md §2.3 step 3):
///
/// - no owner reference, or more than one: nil (a bare pod; no Event is emitted for it);
/// - a ReplicaSet (`apps`) whose own `ownerReferences` hold exactly one entry: that entry (usually the Deployment);
/// - a Job (`batch`) whose own `ownerReferences` hold exactly one entry: that entry (the CronJob);
/// - otherwise the single owner itself (a StatefulSet, a DaemonSet, a ReplicaSet or Job without a single owner...).
///
/// Looking at a ReplicaSet's or Job's owners costs one GET of that object. When the GET fails (not found, forbidden,
/// unreachable), the direct owner is returned: an approximate owner is better than failing the caller. Successful
/// lookups are cached by the parent's uid (owner references of a ReplicaSet or Job practically never change; a UID
/// is never reused), at most `cacheCapacity` entries, the whole cache being dropped when it is full.
public struct OwnerResolver: Sendable {
    /// How many parents' owner lists are kept.
    static let cacheCapacity = 4096

    private let api: any KubeAPI
    private let cache: ParentOwnerCache

    public init(api: any KubeAPI) {
        self.api = api
        cache = ParentOwnerCache(capacity: Self.cacheCapacity)
    }

    /// The owner of a pod in `namespace` with these owner references; nil for a bare pod.
    public func resolve(namespace: String, ownerReferences: [OwnerReference]?) async -> ResolvedOwner? {
        switch resolveLocally(namespace: namespace, ownerReferences: ownerReferences) {
        case .resolved(let owner):
            return owner
        case .needsParent(let parent, let resource):
            do {
                let fetched = try await api.get(
                    resource, namespace: namespace, name: parent.name, subresource: nil, as: MetadataOnly.self)
                // A parent recreated under the same name is another object: its owners say nothing about ours.
                if let uid = fetched.metadata.uid, !uid.isEmpty, !parent.uid.isEmpty, uid != parent.uid {
                    return Self.owner(parent, namespace: namespace)
                }
                let grandparents = fetched.metadata.ownerReferences ?? []
                cache.store(grandparents, for: ParentKey(namespace: namespace, parent: parent))
                return Self.owner(of: parent, grandparents: grandparents, namespace: namespace)
            } catch {
                return Self.owner(parent, namespace: namespace)
            }
        }
    }

    /// What can be decided without I/O: the answer, or the parent whose owners must be fetched first.
    enum LocalResolution {
        case resolved(ResolvedOwner?)
        case needsParent(OwnerReference, ResourceType)
    }

    /// Resolves from the references and the cache alone, so callers on an event loop can avoid a task when the
    /// answer is known.
    func resolveLocally(namespace: String, ownerReferences: [OwnerReference]?) -> LocalResolution {
        guard let references = ownerReferences, references.count == 1, let parent = references.first else {
            return .resolved(nil)
        }
        let resource: ResourceType
        switch (parent.kind, Self.group(of: parent.apiVersion)) {
        case ("ReplicaSet", "apps"): resource = .replicaSets
        case ("Job", "batch"): resource = .jobs
        default: return .resolved(Self.owner(parent, namespace: namespace))
        }
        if let grandparents = cache.lookup(ParentKey(namespace: namespace, parent: parent)) {
            return .resolved(Self.owner(of: parent, grandparents: grandparents, namespace: namespace))
        }
        return .needsParent(parent, resource)
    }

    private static func owner(
        of parent: OwnerReference, grandparents: [OwnerReference], namespace: String
    ) -> ResolvedOwner {
        if grandparents.count == 1, let grandparent = grandparents.first {
            return owner(grandparent, namespace: namespace)
        }
        return owner(parent, namespace: namespace)
    }

    private static func owner(_ reference: OwnerReference, namespace: String) -> ResolvedOwner {
        ResolvedOwner(
            reference: ObjectReference(
                apiVersion: reference.apiVersion, kind: reference.kind, namespace: namespace, name: reference.name,
                uid: reference.uid),
            owner: WorkloadOwner(kind: reference.kind.lowercased(), name: reference.name))
    }

    /// `apps` of `apps/v1`; empty for the core group (`v1`).
    private static func group(of apiVersion: String) -> Substring {
        guard let slash = apiVersion.firstIndex(of: "/") else { return "" }
        return apiVersion[..<slash]
    }
}

/// Only the metadata of a fetched object: the rest of a ReplicaSet or Job is not needed, nor decoded.
private struct MetadataOnly: Decodable, Sendable {
    var metadata: ObjectMeta
}

private struct ParentKey: Hashable {
    var namespace: String
    var kind: String
    var name: String
    var uid: String

    init(namespace: String, parent: OwnerReference) {
        self.namespace = namespace
        kind = parent.kind
        name = parent.name
        uid = parent.uid
    }
}

/// The owner references of recently looked-up parents, bounded by dropping everything when full.
private final class ParentOwnerCache: Sendable {
    private let capacity: Int
    private let entries = Mutex<[ParentKey: [OwnerReference]]>([:])

    init(capacity: Int) {
        self.capacity = capacity
    }

    func lookup(_ key: ParentKey) -> [OwnerReference]? {
        entries.withLock { $0[key] }
    }

    func store(_ owners: [OwnerReference], for key: ParentKey) {
        entries.withLock { entries in
            if entries.count >= capacity, entries[key] == nil {
                entries.removeAll(keepingCapacity: true)
            }
            entries[key] = owners
        }
    }
}
