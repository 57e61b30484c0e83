import Foundation
import KubeModel
import NIOHTTP1
import Synchronization

/// The shared heart of a `KubeTestServer`: its state behind one lock, and the watch machinery.
///
/// Every store change publishes its events to the watches under the same lock acquisition, so each watch gets
/// every event exactly once and in resourceVersion order, and a watch opened concurrently with a change sees it
/// either in its initial events or live, never both or neither.
final class ServerCore: Sendable {
    let configuration: KubeTestServer.Configuration
    private let state: Mutex<ServerState>

    init(configuration: KubeTestServer.Configuration) {
        self.configuration = configuration
        state = Mutex(ServerState(store: APIStore(historyLimit: configuration.historyLimit)))
    }

    // MARK: - State access

    func withState<T: Sendable, E: Error>(_ body: (inout ServerState) throws(E) -> T) throws(E) -> T {
        try state.withLock { (state: inout ServerState) throws(E) -> T in try body(&state) }
    }

    func read<T: Sendable, E: Error>(_ body: (APIStore) throws(E) -> T) throws(E) -> T {
        try state.withLock { (state: inout ServerState) throws(E) -> T in try body(state.store) }
    }

    /// Runs a store change and publishes its events. A dry run changes a copy of the store and publishes nothing.
    func mutate<T: Sendable>(dryRun: Bool = false, _ body: (inout APIStore) throws(Status) -> T) throws(Status) -> T {
        try state.withLock { (state: inout ServerState) throws(Status) -> T in
            if dryRun {
                var copy = state.store
                return try body(&copy)
            }
            defer { state.publishEvents() }
            return try body(&state.store)
        }
    }

    // MARK: - Requests

    /// Authenticates a request and logs it (in `requestLog`, and in `requestUsers` when authenticated).
    func authenticateAndRecord(_ request: HTTPRequest) -> Authenticator.Outcome {
        var token: String?
        if let authorization = request.headers.first(name: "authorization"),
            authorization.lowercased().hasPrefix("bearer ")
        {
            token = String(authorization.dropFirst("bearer ".count)).trimmingCharacters(in: .whitespaces)
        }
        return state.withLock { state in
            let outcome = state.authenticator.authenticate(
                bearerToken: token, certificateName: request.clientCertificateName,
                required: configuration.requireAuthentication)
            var user: String?
            if case .authenticated(let info) = outcome {
                user = info.username ?? ""
                state.requestUsers.append(user ?? "")
            }
            state.requestLog.append(
                KubeTestServer.RequestRecord(
                    method: request.method.rawValue, path: request.path, query: request.query,
                    contentType: request.contentType, user: user))
            return outcome
        }
    }

    // MARK: - Watches

    /// Opens a watch: from `resourceVersion` (replaying retained events after it, or an ERROR 410 event and the end
    /// when they are no longer retained), or with nil from now (an ADDED event per matching object first).
    func openWatch(
        type: ResourceType, filter: WatchFilter, from resourceVersion: Int?, bookmarks: Bool, timeout: Duration?
    ) -> WatchStream {
        let (id, stream, live) = state.withLock { state in
            let id = state.nextWatchID
            state.nextWatchID += 1
            let stream = WatchStream(stalled: state.watchesStalled) { [weak self] in self?.closeWatch(id) }
            state.streams[id] = stream
            if let resourceVersion {
                do throws(Status) {
                    for event in try state.store.events(after: resourceVersion) {
                        if let (type, object) = filter.watchEvent(for: event) {
                            stream.enqueue(.event(type: type, object: object))
                        }
                    }
                } catch {
                    stream.enqueue(.event(type: "ERROR", object: error.json))
                    stream.enqueue(.end)
                    return (id, stream, false)
                }
            } else {
                for object in state.store.snapshot(filter) {
                    stream.enqueue(.event(type: "ADDED", object: object))
                }
            }
            state.watches[id] = ServerState.Watch(type: type, filter: filter, stream: stream)
            return (id, stream, true)
        }
        let interval = bookmarks ? configuration.bookmarkInterval : nil
        if live, interval != nil || timeout != nil {
            let timer = Task { [weak self] in
                guard let self else { return }
                await runTimer(id: id, bookmarkInterval: interval, timeout: timeout)
            }
            state.withLock { state in
                if state.watches[id] != nil {
                    state.watches[id]?.timer = timer
                } else {
                    timer.cancel()
                }
            }
        }
        return stream
    }

    var openWatchCount: Int {
        state.withLock { $0.watches.count }
    }

    /// Sends every watch an ERROR event with a 410 Expired status and ends it, and compacts the history.
    func expireWatches() {
        state.withLock { state in
            let previous = state.store.resourceVersion
            state.store.expire()
            let status = Status.expired("too old resource version: \(previous) (\(state.store.compactedRevision))")
            for id in Array(state.watches.keys) {
                guard let watch = state.removeWatch(id) else { continue }
                watch.stream.enqueue(.event(type: "ERROR", object: status.json))
                watch.stream.enqueue(.end)
            }
        }
    }

    /// Closes every watch connection without the terminating chunk.
    func dropWatchConnections() {
        state.withLock { state in
            for id in Array(state.watches.keys) {
                state.removeWatch(id)
            }
            for stream in state.streams.values {
                stream.abort()
            }
        }
    }

    func setWatchesStalled(_ stalled: Bool) {
        state.withLock { state in
            state.watchesStalled = stalled
            for stream in state.streams.values {
                stream.setStalled(stalled)
            }
        }
    }

    private func closeWatch(_ id: Int) {
        state.withLock { state in
            state.removeWatch(id)
            state.streams[id] = nil
        }
    }

    private func runTimer(id: Int, bookmarkInterval: Duration?, timeout: Duration?) async {
        let clock = ContinuousClock()
        let deadline = timeout.map { clock.now + $0 }
        while true {
            let nextBookmark = bookmarkInterval.map { clock.now + $0 }
            guard let wake = [deadline, nextBookmark].compactMap({ $0 }).min() else { return }
            do {
                try await Task.sleep(until: wake, clock: clock)
            } catch {
                return
            }
            if let deadline, clock.now >= deadline {
                state.withLock { state in
                    state.removeWatch(id)?.stream.enqueue(.end)
                }
                return
            }
            state.withLock { state in
                guard !state.watchesStalled, let watch = state.watches[id] else { return }
                let bookmark: JSONValue = [
                    "kind": .string(watch.type.kind),
                    "apiVersion": .string(watch.type.apiVersion),
                    "metadata": ["resourceVersion": .string(String(state.store.resourceVersion))],
                ]
                watch.stream.enqueue(.event(type: "BOOKMARK", object: bookmark))
            }
        }
    }
}
