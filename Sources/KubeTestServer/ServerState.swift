import KubeModel

/// Everything the server keeps, guarded as one unit by `ServerCore`'s lock: the store, the open watches, the
/// credentials, the injected faults and the logs tests read.
struct ServerState: Sendable {
    /// A watch that still receives events.
    struct Watch: Sendable {
        var type: ResourceType
        var filter: WatchFilter
        var stream: WatchStream
        /// Sends bookmarks and ends the watch at its timeout; cancelled when the watch is removed.
        var timer: Task<Void, Never>?
    }

    var store: APIStore
    /// Watches that receive events, by id.
    var watches: [Int: Watch] = [:]
    /// Every watch stream whose connection still consumes it, including ended ones not yet drained, by id.
    var streams: [Int: WatchStream] = [:]
    var nextWatchID = 0
    var watchesStalled = false
    var authenticator = Authenticator()
    var faults: [FaultRule] = []
    var requestLog: [KubeTestServer.RequestRecord] = []
    var requestUsers: [String] = []
    var admissionLog: [KubeTestServer.AdmissionRecord] = []
    var serviceRoutes: [KubeTestServer.ServiceKey: KubeTestServer.ServiceRoute] = [:]

    init(store: APIStore) {
        self.store = store
    }

    /// Hands the store's new events to every watch that sees them, in order.
    mutating func publishEvents() {
        for event in store.takeEvents() {
            for watch in watches.values {
                if let (type, object) = watch.filter.watchEvent(for: event) {
                    watch.stream.enqueue(.event(type: type, object: object))
                }
            }
        }
    }

    /// Stops sending events to a watch (its stream stays until the connection drains it).
    @discardableResult
    mutating func removeWatch(_ id: Int) -> Watch? {
        let watch = watches.removeValue(forKey: id)
        watch?.timer?.cancel()
        return watch
    }

    /// The fault for this request, if an injected one matches; uses up one of its requests.
    mutating func takeFault(method: String, path: String) -> KubeTestServer.Fault? {
        guard let index = faults.firstIndex(where: { $0.matches(method: method, path: path) }) else { return nil }
        let fault = faults[index].fault
        faults[index].remaining -= 1
        if faults[index].remaining <= 0 {
            faults.remove(at: index)
        }
        return fault
    }
}
