/// The decisions of the bounded request queue in front of each balancer, with its fail-fast gate (reference proxy
/// §3.4, linkerd's `proxy/balance/queue`): requests wait while no endpoint is ready; if none becomes ready within
/// the failfast timeout, the gate shuts, failing everything queued and everything that arrives (504) until an
/// endpoint is ready again; a full queue sheds new requests (503).
///
/// The failfast clock runs only while the balancer has no ready endpoint *and* something waits: it starts with the
/// first request queued while unready and stops when an endpoint becomes ready or the last waiting request is
/// cancelled. (While an endpoint is ready nothing waits, so becoming unready alone never starts it.)
///
/// The state machine decides; the I/O layer acts. It owns the waiting requests (their promises), keyed by the
/// opaque ids handed out here, and drives the machine on one event loop:
///
/// - A request arrives: ``requestArrived(now:)``. On ``Arrival/dispatch`` pick an endpoint with
///   ``P2CBalancer/pick(now:using:)`` and send it. On ``Arrival/enqueued(id:armFailfastTimerAt:)`` store the
///   promise under `id`, and when a deadline is given schedule a timer for it that calls
///   ``failfastTimerFired(now:)``. On ``Arrival/failFast`` answer 504, on ``Arrival/loadShed`` 503.
/// - After every change of the balancer's ready endpoints (discovery update, connection up or down): when
///   ``P2CBalancer/readyCount`` is above 0 call ``endpointsBecameReady()`` and dispatch the returned ids in order,
///   otherwise call ``endpointsBecameUnready()``. Both are harmless when nothing changed.
/// - The failfast timer fires: answer 504 to the ids ``failfastTimerFired(now:)`` returns. Timers need not be
///   cancelled: one that no longer matches the state returns nothing. A timer must not fire before its deadline
///   (NIO's scheduled tasks do not).
/// - A waiting client goes away: ``requestCancelled(id:)``, and drop the promise.
///
/// The queue starts with no ready endpoint, as a balancer does before its first discovery result.
public struct BalancerQueue: Sendable {
    /// What to do with an arriving request.
    public enum Arrival: Hashable, Sendable {
        /// An endpoint is ready and nothing waits ahead: pick one and send the request now.
        case dispatch
        /// No endpoint is ready: the request waits under `id`. `armFailfastTimerAt` is the deadline of a timer to
        /// schedule when this request started the failfast clock (now + failfast timeout), nil when a timer is
        /// already armed.
        case enqueued(id: UInt64, armFailfastTimerAt: UInt64?)
        /// The gate is shut after a failfast: fail the request at once (504).
        case failFast
        /// The queue is full: shed the request (503).
        case loadShed
    }

    private enum Gate: Sendable {
        /// Some endpoint is ready; the queue is empty.
        case open
        /// No endpoint is ready; `deadline` is when the failfast clock expires, nil while nothing waits.
        case waiting(deadline: UInt64?)
        /// The failfast timeout passed with no ready endpoint; the queue is empty and stays so.
        case shut
    }

    /// The most requests waiting at once (10000 in the proxy).
    public let capacity: Int
    /// How long requests may wait with no ready endpoint before the gate shuts (3 s outbound, 1 s inbound).
    public let failfastTimeout: Duration

    private let failfastNanoseconds: UInt64
    private var gate = Gate.waiting(deadline: nil)
    private var nextID: UInt64 = 0
    /// Queued ids in arrival order, including cancelled ones not yet compacted away.
    private var arrivalOrder: [UInt64] = []
    /// The ids still waiting: cancellation removes from here in O(1); `arrivalOrder` is compacted once it holds
    /// more cancelled ids than live ones, so cancellations cost amortised O(1).
    private var waiting: Set<UInt64> = []

    /// - Parameters:
    ///   - capacity: the most requests waiting at once; a negative value counts as 0 (every request that cannot
    ///     be dispatched at once is shed).
    ///   - failfastTimeout: how long requests may wait with no ready endpoint; a negative value counts as 0.
    public init(capacity: Int, failfastTimeout: Duration) {
        self.capacity = max(capacity, 0)
        self.failfastTimeout = max(failfastTimeout, .zero)
        let (seconds, attoseconds) = self.failfastTimeout.components
        let (whole, overflow) = UInt64(seconds).multipliedReportingOverflow(by: 1_000_000_000)
        let (total, carry) = whole.addingReportingOverflow(UInt64(attoseconds / 1_000_000_000))
        failfastNanoseconds = overflow || carry ? .max : total
    }

    /// The queue a proxy configuration gives, such as `ProxyConfiguration.outbound.httpQueue`.
    public init(_ configuration: ProxyConfiguration.Queue) {
        self.init(capacity: configuration.capacity, failfastTimeout: configuration.failfastTimeout)
    }

    /// How many requests wait.
    public var queuedCount: Int { waiting.count }

    /// Whether the gate is shut: requests fail at once until an endpoint becomes ready.
    public var isFailingFast: Bool {
        if case .shut = gate { return true }
        return false
    }

    /// Decides the fate of a new request: see ``Arrival``. Only an enqueue changes the state.
    public mutating func requestArrived(now: UInt64) -> Arrival {
        switch gate {
        case .open:
            return .dispatch
        case .shut:
            return .failFast
        case .waiting(let deadline):
            guard waiting.count < capacity else { return .loadShed }
            let id = nextID
            nextID &+= 1
            arrivalOrder.append(id)
            waiting.insert(id)
            if deadline != nil { return .enqueued(id: id, armFailfastTimerAt: nil) }
            let (sum, overflow) = now.addingReportingOverflow(failfastNanoseconds)
            let newDeadline = overflow ? UInt64.max : sum
            gate = .waiting(deadline: newDeadline)
            return .enqueued(id: id, armFailfastTimerAt: newDeadline)
        }
    }

    /// The balancer has a ready endpoint: opens the gate (also after a failfast), stops the failfast clock, and
    /// returns every waiting id in arrival order, to dispatch now with one pick each. Returns [] when the gate was
    /// already open.
    public mutating func endpointsBecameReady() -> [UInt64] {
        gate = .open
        return drain()
    }

    /// The balancer has no ready endpoint: from now on requests wait (or keep failing fast if the gate is shut).
    public mutating func endpointsBecameUnready() {
        if case .open = gate {
            gate = .waiting(deadline: nil)
        }
    }

    /// The failfast timer went off. When the clock is running and its deadline has passed, shuts the gate and
    /// returns every waiting id in arrival order, to fail with 504. Otherwise, for a timer from an earlier clock
    /// (an endpoint became ready meanwhile, or the queue emptied and refilled), returns [] and changes nothing.
    public mutating func failfastTimerFired(now: UInt64) -> [UInt64] {
        guard case .waiting(let deadline?) = gate, now >= deadline else { return [] }
        gate = .shut
        return drain()
    }

    /// A waiting request's client went away; its id will not be returned. When it was the last one waiting, the
    /// failfast clock stops (its timer becomes stale) and the next enqueue starts a new one.
    ///
    /// - Returns: whether `id` was waiting.
    @discardableResult
    public mutating func requestCancelled(id: UInt64) -> Bool {
        guard waiting.remove(id) != nil else { return false }
        if waiting.isEmpty {
            arrivalOrder.removeAll()
            if case .waiting = gate {
                gate = .waiting(deadline: nil)
            }
        } else if arrivalOrder.count > 2 * waiting.count {
            arrivalOrder.removeAll { !waiting.contains($0) }
        }
        return true
    }

    /// Empties the queue, returning the live ids in arrival order.
    private mutating func drain() -> [UInt64] {
        let ids = arrivalOrder.filter(waiting.contains)
        arrivalOrder.removeAll()
        waiting.removeAll()
        return ids
    }
}
