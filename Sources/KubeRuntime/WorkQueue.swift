import DequeModule
import Foundation
import LinkerdCore
import Metrics
import ServiceLifecycle
import Synchronization

/// A queue of keys to reconcile, with the guarantees controllers rely on (those of client-go's work queue):
///
/// - a key waiting in the queue is held once, however often it is added;
/// - a key is handed to at most one worker at a time: added while being processed, it is queued again only
///   after `done(_:)`;
/// - `addRateLimited(_:)` delays a failing key exponentially (per key) until `forget(_:)` clears its history;
/// - `add(_:after:)` delays a key on the injected clock, served by `run()`.
///
/// `run()` must be running for delayed keys to come due. `shutDown()` makes `next()` return nil.
public final class WorkQueue<Key: Hashable & Sendable>: ServiceLifecycle.Service, Sendable {
    public struct Configuration: Sendable {
        /// The delay of a key's first rate-limited retry; it doubles per consecutive failure.
        public var baseRetryDelay: Duration
        public var maximumRetryDelay: Duration

        public init(baseRetryDelay: Duration = .milliseconds(5), maximumRetryDelay: Duration = .seconds(300)) {
            self.baseRetryDelay = baseRetryDelay
            self.maximumRetryDelay = maximumRetryDelay
        }
    }

    private struct State {
        var queue: Deque<Key> = []
        /// Keys that need processing: queued, or re-added while processing.
        var dirty: Set<Key> = []
        var processing: Set<Key> = []
        var delayed: [Key: Date] = [:]
        var failures: [Key: Int] = [:]
        var waiters: Deque<(id: UInt64, continuation: CheckedContinuation<Key?, Never>)> = []
        var nextWaiterID: UInt64 = 0
        var shuttingDown = false
    }

    public let name: String
    private let configuration: Configuration
    private let clock: any WallClock
    private let state = Mutex(State())
    private let timerWakeUp = AsyncSignal()
    private let depthGauge: Gauge
    private let addsCounter: Counter
    private let retriesCounter: Counter

    public init(
        name: String, configuration: Configuration = Configuration(), clock: any WallClock = SystemWallClock(),
        metricsFactory: any MetricsFactory = MetricsSystem.factory
    ) {
        self.name = name
        self.configuration = configuration
        self.clock = clock
        let dimensions = [("name", name)]
        depthGauge = Gauge(label: "workqueue_depth", dimensions: dimensions, factory: metricsFactory)
        addsCounter = Counter(label: "workqueue_adds_total", dimensions: dimensions, factory: metricsFactory)
        retriesCounter = Counter(label: "workqueue_retries_total", dimensions: dimensions, factory: metricsFactory)
    }

    /// Keys waiting to be handed out (not counting delayed or in-progress ones).
    public var depth: Int {
        state.withLock { $0.queue.count }
    }

    /// Keys waiting for their delay to pass.
    public var delayedCount: Int {
        state.withLock { $0.delayed.count }
    }

    /// When a delayed `key` comes due; nil when it is not waiting for a delay.
    public func deadline(of key: Key) -> Date? {
        state.withLock { $0.delayed[key] }
    }

    /// Consecutive rate-limited retries of `key` since it was last forgotten.
    public func failures(of key: Key) -> Int {
        state.withLock { $0.failures[key] ?? 0 }
    }

    public func add(_ key: Key) {
        let handOff: (CheckedContinuation<Key?, Never>, Key)? = state.withLock { state in
            guard !state.shuttingDown, !state.dirty.contains(key) else { return nil }
            state.dirty.insert(key)
            addsCounter.increment()
            if state.processing.contains(key) { return nil }
            if let waiter = state.waiters.popFirst() {
                state.dirty.remove(key)
                state.processing.insert(key)
                return (waiter.continuation, key)
            }
            state.queue.append(key)
            depthGauge.record(state.queue.count)
            return nil
        }
        if let (continuation, key) = handOff { continuation.resume(returning: key) }
    }

    /// Adds `key` once `delay` has passed on the clock; an earlier pending deadline for the key wins.
    public func add(_ key: Key, after delay: Duration) {
        guard delay > .zero else { return add(key) }
        state.withLock { state in
            guard !state.shuttingDown else { return }
            let deadline = clock.now().addingTimeInterval(delay.inSeconds)
            if let existing = state.delayed[key], existing <= deadline { return }
            state.delayed[key] = deadline
        }
        timerWakeUp.signal()
    }

    /// Adds `key` after its per-key backoff, base × 2^(failures) capped, or after `atLeast` if that is longer (a
    /// server's Retry-After).
    public func addRateLimited(_ key: Key, atLeast minimum: Duration = .zero) {
        let delay: Duration = state.withLock { state in
            let failures = state.failures[key, default: 0]
            state.failures[key] = failures + 1
            let factor = Double(1 << UInt64(min(failures, 40)))
            let seconds = min(
                configuration.baseRetryDelay.inSeconds * factor, configuration.maximumRetryDelay.inSeconds)
            return .nanoseconds(Int64((seconds * 1e9).rounded()))
        }
        retriesCounter.increment()
        add(key, after: max(delay, minimum))
    }

    /// Clears the failure history of `key`.
    public func forget(_ key: Key) {
        _ = state.withLock { $0.failures.removeValue(forKey: key) }
    }

    /// The next key to process, waiting if none is ready; nil once shut down or when the task is cancelled.
    /// Call `done(_:)` when finished with it.
    public func next() async -> Key? {
        let id = state.withLock { state in
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Key?, Never>) in
                let immediate: Key?? = state.withLock { state in
                    if state.shuttingDown || Task.isCancelled { return .some(nil) }
                    if let key = state.queue.popFirst() {
                        state.dirty.remove(key)
                        state.processing.insert(key)
                        depthGauge.record(state.queue.count)
                        return .some(key)
                    }
                    state.waiters.append((id, continuation))
                    return .none
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Key?, Never>? in
                guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiters.remove(at: index).continuation
            }
            waiter?.resume(returning: nil)
        }
    }

    /// Marks `key` as processed; if it was added meanwhile, it is queued again.
    public func done(_ key: Key) {
        let handOff: CheckedContinuation<Key?, Never>? = state.withLock { state in
            state.processing.remove(key)
            guard state.dirty.contains(key), !state.shuttingDown else { return nil }
            if let waiter = state.waiters.popFirst() {
                state.dirty.remove(key)
                state.processing.insert(key)
                return waiter.continuation
            }
            state.queue.append(key)
            depthGauge.record(state.queue.count)
            return nil
        }
        handOff?.resume(returning: key)
    }

    /// Stops handing out keys: waiting and future `next()` calls return nil.
    public func shutDown() {
        let waiters = state.withLock { state in
            state.shuttingDown = true
            let waiters = state.waiters
            state.waiters = []
            return waiters
        }
        for waiter in waiters { waiter.continuation.resume(returning: nil) }
        timerWakeUp.signal()
    }

    /// Moves delayed keys into the queue as they come due; returns when cancelled or shut down.
    public func run() async throws {
        while true {
            let nextDeadline: Date? = moveDueKeys()
            if state.withLock({ $0.shuttingDown }) || Task.isCancelled { return }
            await withTaskGroup(of: Void.self) { group in
                if let nextDeadline {
                    group.addTask { try? await self.clock.sleep(until: nextDeadline) }
                }
                group.addTask { await self.timerWakeUp.wait() }
                await group.next()
                group.cancelAll()
            }
        }
    }

    /// Adds every delayed key whose deadline has passed; returns the earliest remaining deadline.
    private func moveDueKeys() -> Date? {
        let now = clock.now()
        let due: [Key] = state.withLock { state in
            let due = state.delayed.filter { $0.value <= now }.map(\.key)
            for key in due { state.delayed[key] = nil }
            return due
        }
        for key in due { add(key) }
        return state.withLock { $0.delayed.values.min() }
    }
}

/// A wake-up call for waiting tasks: `signal()` wakes every current waiter, and a signal sent while nobody waits is
/// remembered for the next `wait()`, so no wake-up is lost.
final class AsyncSignal: Sendable {
    private struct State {
        var pending = false
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        var nextID: UInt64 = 0
    }

    private let state = Mutex(State())

    func signal() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            guard !state.waiters.isEmpty else {
                state.pending = true
                return []
            }
            let waiters = Array(state.waiters.values)
            state.waiters = [:]
            return waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns after the next (or a pending) signal, or when the task is cancelled.
    func wait() async {
        let id = state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state in
                    if state.pending {
                        state.pending = false
                        return true
                    }
                    // Cancelled before waiting: leave any later signal pending for the next waiter.
                    if Task.isCancelled { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
        }
    }
}
