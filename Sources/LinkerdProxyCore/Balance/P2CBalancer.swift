/// The proxy's endpoint choice (reference proxy §3.4, linkerd's `pool/p2c` with tower's Peak-EWMA): among the
/// *ready* endpoints, two distinct ones are drawn uniformly at random and the one with the lower
/// ``PeakEWMA/load(pending:now:)`` wins, ties going to the first drawn.
///
/// Two random choices avoid both the herding of "always the least loaded" (every proxy would pile onto the same
/// endpoint between updates) and the blindness of a purely random choice; Peak-EWMA makes the load
/// latency-aware.
///
/// This is pure state: the I/O layer tells it which endpoints exist (discovery), which are ready (connected), and
/// when requests start and finish; it answers ``pick(now:using:)``. Endpoints keep their statistics (estimate,
/// pending count, readiness) for as long as they stay in the set.
///
/// Storage: the endpoints sit in an array whose first ``readyCount`` entries are the ready ones, with a dictionary
/// from key to position. A pick is O(1) and allocates nothing; ``insert(_:now:)``, ``remove(_:)`` and
/// ``setReady(_:_:)`` are O(1) (a swap across the ready boundary); ``replaceEndpoints(with:now:)`` is O(n + m).
/// The order of the array is not meaningful and changes as endpoints come and go.
public struct P2CBalancer<Key: Hashable & Sendable>: Sendable {
    /// A fresh endpoint's RTT estimate.
    public let defaultRTT: Duration
    /// The Peak-EWMA decay constant.
    public let decay: Duration

    private struct Endpoint: Sendable {
        let key: Key
        var rtt: PeakEWMA
        /// Requests started and not yet finished.
        var pending: Int
    }

    /// Ready endpoints in `0..<readyCount`, the others after them.
    private var endpoints: [Endpoint] = []
    private var positions: [Key: Int] = [:]

    /// How many endpoints can take a request; 0 means requests must wait in the queue (``BalancerQueue``).
    public private(set) var readyCount = 0

    /// - Parameters:
    ///   - defaultRTT: the estimate of an endpoint with no sample yet (30 ms in the proxy; at least 1 ms).
    ///   - decay: the Peak-EWMA decay constant (10 s in the proxy).
    public init(defaultRTT: Duration = .milliseconds(30), decay: Duration = .seconds(10)) {
        self.defaultRTT = defaultRTT
        self.decay = decay
    }

    /// How many endpoints are known, ready or not.
    public var count: Int { endpoints.count }

    public func contains(_ key: Key) -> Bool {
        positions[key] != nil
    }

    /// Whether `key` can take a request; nil when it is not known.
    public func isReady(_ key: Key) -> Bool? {
        positions[key].map { $0 < readyCount }
    }

    /// The load the balancer compares for `key` (estimate × (pending + 1), in nanoseconds); nil when it is not
    /// known. For metrics and tests.
    public func load(of key: Key, now: UInt64) -> Double? {
        positions[key].map { endpoints[$0].rtt.load(pending: endpoints[$0].pending, now: now) }
    }

    /// Adds `key` as a ready endpoint with a fresh estimate, as a discovery `Add` does. A key already present is
    /// left as it is, statistics and readiness included.
    ///
    /// - Returns: whether the key was new.
    @discardableResult
    public mutating func insert(_ key: Key, now: UInt64) -> Bool {
        guard positions[key] == nil else { return false }
        positions[key] = endpoints.count
        endpoints.append(Endpoint(key: key, rtt: PeakEWMA(defaultRTT: defaultRTT, decay: decay, now: now), pending: 0))
        swapEndpoints(endpoints.count - 1, readyCount)
        readyCount += 1
        return true
    }

    /// Drops `key` and its statistics, as a discovery `Remove` does. Requests still in flight to it finish
    /// without effect (``requestFinished(_:rtt:now:)`` ignores unknown keys).
    ///
    /// - Returns: whether the key was present.
    @discardableResult
    public mutating func remove(_ key: Key) -> Bool {
        guard var position = positions[key] else { return false }
        if position < readyCount {
            readyCount -= 1
            swapEndpoints(position, readyCount)
            position = readyCount
        }
        swapEndpoints(position, endpoints.count - 1)
        endpoints.removeLast()
        positions[key] = nil
        return true
    }

    /// Makes the set exactly `keys`, as a discovery `Reset` does: endpoints that stay keep their statistics and
    /// readiness, new ones are added ready with a fresh estimate, the others are dropped. O(n + m).
    public mutating func replaceEndpoints(with keys: some Sequence<Key>, now: UInt64) {
        let keys = Array(keys)
        let kept = Set(keys)
        // The loop walks the array as it was; `remove` reorders the live one.
        for endpoint in endpoints where !kept.contains(endpoint.key) {
            remove(endpoint.key)
        }
        // In the given order, so that positions, and with them seeded picks, do not depend on hashing.
        for key in keys {
            insert(key, now: now)
        }
    }

    /// Marks `key` ready or not; unknown keys are ignored. The I/O layer marks an endpoint unready when its
    /// connection fails and ready again when a new one is established; the balancer never picks an unready one.
    public mutating func setReady(_ key: Key, _ ready: Bool) {
        guard let position = positions[key] else { return }
        if ready, position >= readyCount {
            swapEndpoints(position, readyCount)
            readyCount += 1
        } else if !ready, position < readyCount {
            readyCount -= 1
            swapEndpoints(position, readyCount)
        }
    }

    /// The endpoint for the next request: nil when none is ready, the only one when one is, otherwise the lower
    /// load of two distinct ready endpoints drawn uniformly (ties to the first drawn). O(1), no allocation.
    ///
    /// The choice does not count the request: call ``requestStarted(_:)`` when dispatching it, before the next
    /// pick, or a burst of picks would all see the same loads.
    public func pick(now: UInt64, using generator: inout some RandomNumberGenerator) -> Key? {
        switch readyCount {
        case 0:
            return nil
        case 1:
            return endpoints[0].key
        default:
            let first = Int.random(in: 0..<readyCount, using: &generator)
            // A draw from the other `readyCount - 1` positions, skipping `first`, keeps the pair distinct and
            // uniform.
            var second = Int.random(in: 0..<(readyCount - 1), using: &generator)
            if second >= first { second += 1 }
            let firstLoad = endpoints[first].rtt.load(pending: endpoints[first].pending, now: now)
            let secondLoad = endpoints[second].rtt.load(pending: endpoints[second].pending, now: now)
            return secondLoad < firstLoad ? endpoints[second].key : endpoints[first].key
        }
    }

    /// Counts a request dispatched to `key` as pending; unknown keys are ignored.
    public mutating func requestStarted(_ key: Key) {
        guard let position = positions[key] else { return }
        endpoints[position].pending += 1
    }

    /// Counts a request to `key` as finished and, when `rtt` is given, records it as a sample (HTTP: until the
    /// first response data frame or end of stream; TCP: until connected). Keys no longer present are ignored;
    /// the pending count never goes below 0, so a request that outlived its endpoint's removal and re-adding
    /// cannot corrupt the new entry's count.
    public mutating func requestFinished(_ key: Key, rtt: Duration?, now: UInt64) {
        guard let position = positions[key] else { return }
        endpoints[position].pending = max(endpoints[position].pending - 1, 0)
        if let rtt {
            endpoints[position].rtt.record(rtt: rtt, now: now)
        }
    }

    /// Swaps two array slots and keeps `positions` in step.
    private mutating func swapEndpoints(_ first: Int, _ second: Int) {
        guard first != second else { return }
        endpoints.swapAt(first, second)
        positions[endpoints[first].key] = first
        positions[endpoints[second].key] = second
    }
}
