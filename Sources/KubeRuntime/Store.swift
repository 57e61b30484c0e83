import KubeModel
import Synchronization

/// One change to a `Store`: the object before (nil when added) and after (nil when deleted).
public struct StoreChange<R: KubeResource>: Sendable {
    public var key: ObjectKey
    public var old: R?
    public var new: R?
}

/// A thread-safe, indexed cache of one resource type, filled by a `Reflector` and shared by every controller of
/// a process. Readers never see a partial update. Indexed by namespace and by each `label=value` pair.
public final class Store<R: KubeResource>: Sendable {
    private struct State {
        var objects: [ObjectKey: R] = [:]
        var byNamespace: [String: Set<ObjectKey>] = [:]
        var byLabel: [String: Set<ObjectKey>] = [:]
        var synced = false
        var syncWaiters: [(id: UInt64, continuation: CheckedContinuation<Void, Never>)] = []
        var nextWaiterID: UInt64 = 0
    }

    private let state = Mutex(State())

    public init() {}

    public func get(_ key: ObjectKey) -> R? {
        state.withLock { $0.objects[key] }
    }

    public var count: Int {
        state.withLock { $0.objects.count }
    }

    public var keys: [ObjectKey] {
        state.withLock { Array($0.objects.keys) }
    }

    /// Objects in `namespace` (all namespaces when nil) whose labels match `labels`, sorted by key.
    public func list(namespace: String? = nil, labels: LabelQuery? = nil) -> [R] {
        state.withLock { state in
            var candidates: Set<ObjectKey>?
            if let namespace {
                candidates = state.byNamespace[namespace] ?? []
            }
            for case .equals(let key, let value) in labels?.requirements ?? [] {
                let indexed = state.byLabel["\(key)=\(value)"] ?? []
                candidates = candidates.map { $0.intersection(indexed) } ?? indexed
            }
            let objects = candidates.map { $0.compactMap { state.objects[$0] } } ?? Array(state.objects.values)
            return
                objects
                .filter { labels?.matches($0.metadata.labels ?? [:]) ?? true }
                .sorted { $0.key < $1.key }
        }
    }

    /// True once the first complete list has been stored.
    public var hasSynced: Bool {
        state.withLock { $0.synced }
    }

    /// Returns once the first complete list has been stored, or when the task is cancelled.
    public func waitUntilSynced() async {
        let id = state.withLock { state in
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let ready = state.withLock { state in
                    if state.synced || Task.isCancelled { return true }
                    state.syncWaiters.append((id, continuation))
                    return false
                }
                if ready { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
                guard let index = state.syncWaiters.firstIndex(where: { $0.id == id }) else { return nil }
                return state.syncWaiters.remove(at: index).continuation
            }
            waiter?.resume()
        }
    }

    // MARK: - Writing (the reflector's side)

    /// Replaces the whole content with a fresh list; returns what changed (objects whose resourceVersion is
    /// unchanged are not reported).
    func replace(with objects: [R]) -> [StoreChange<R>] {
        let (changes, waiters) = state.withLock { state in
            var changes: [StoreChange<R>] = []
            var incoming: Set<ObjectKey> = []
            incoming.reserveCapacity(objects.count)
            for object in objects {
                incoming.insert(object.key)
                if let change = Self.apply(object, to: &state) { changes.append(change) }
            }
            for (key, old) in state.objects where !incoming.contains(key) {
                Self.remove(key, from: &state)
                changes.append(StoreChange(key: key, old: old, new: nil))
            }
            state.synced = true
            let waiters = state.syncWaiters
            state.syncWaiters = []
            return (changes, waiters)
        }
        for waiter in waiters { waiter.continuation.resume() }
        return changes
    }

    func apply(_ object: R) -> StoreChange<R>? {
        state.withLock { Self.apply(object, to: &$0) }
    }

    func delete(_ object: R) -> StoreChange<R>? {
        state.withLock { state in
            let key = object.key
            guard let old = state.objects[key] else { return nil }
            Self.remove(key, from: &state)
            return StoreChange(key: key, old: old, new: nil)
        }
    }

    private static func apply(_ object: R, to state: inout State) -> StoreChange<R>? {
        let key = object.key
        let old = state.objects[key]
        if let old, let version = old.metadata.resourceVersion, version == object.metadata.resourceVersion {
            return nil
        }
        if let old { unindex(key, old, in: &state) }
        state.objects[key] = object
        index(key, object, in: &state)
        return StoreChange(key: key, old: old, new: object)
    }

    private static func remove(_ key: ObjectKey, from state: inout State) {
        guard let old = state.objects.removeValue(forKey: key) else { return }
        unindex(key, old, in: &state)
    }

    private static func index(_ key: ObjectKey, _ object: R, in state: inout State) {
        if let namespace = key.namespace {
            state.byNamespace[namespace, default: []].insert(key)
        }
        for (label, value) in object.metadata.labels ?? [:] {
            state.byLabel["\(label)=\(value)", default: []].insert(key)
        }
    }

    private static func unindex(_ key: ObjectKey, _ object: R, in state: inout State) {
        if let namespace = key.namespace {
            state.byNamespace[namespace]?.remove(key)
            if state.byNamespace[namespace]?.isEmpty == true { state.byNamespace[namespace] = nil }
        }
        for (label, value) in object.metadata.labels ?? [:] {
            let indexKey = "\(label)=\(value)"
            state.byLabel[indexKey]?.remove(key)
            if state.byLabel[indexKey]?.isEmpty == true { state.byLabel[indexKey] = nil }
        }
    }
}
