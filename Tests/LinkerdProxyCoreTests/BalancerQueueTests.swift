import LinkerdProxyCore
import Testing

@Suite("Balancer queue and fail-fast gate")
struct BalancerQueueTests {
    private static let start: UInt64 = 1_000_000_000
    private static let timeout: UInt64 = 3_000_000_000

    private func queue(capacity: Int = 10_000) -> BalancerQueue {
        BalancerQueue(capacity: capacity, failfastTimeout: .seconds(3))
    }

    /// Enqueues `count` requests at `now`, returning their ids; fails the test on any other decision.
    private func enqueue(_ count: Int, into queue: inout BalancerQueue, now: UInt64) -> [UInt64] {
        (0..<count).compactMap { _ in
            guard case .enqueued(let id, _) = queue.requestArrived(now: now) else {
                Issue.record("expected an enqueue")
                return nil
            }
            return id
        }
    }

    @Test("with a ready endpoint and nothing queued, requests are dispatched at once")
    func dispatchWhenReady() {
        var queue = queue()
        #expect(queue.endpointsBecameReady() == [])
        for _ in 0..<3 {
            #expect(queue.requestArrived(now: Self.start) == .dispatch)
        }
        #expect(queue.queuedCount == 0)
    }

    @Test("without a ready endpoint requests wait; the first starts the failfast clock at now + timeout")
    func enqueueWhenUnready() {
        var queue = queue()
        let first = queue.requestArrived(now: Self.start)
        #expect(first == .enqueued(id: 0, armFailfastTimerAt: Self.start + Self.timeout))
        #expect(queue.requestArrived(now: Self.start + 5) == .enqueued(id: 1, armFailfastTimerAt: nil))
        #expect(queue.requestArrived(now: Self.start + 9) == .enqueued(id: 2, armFailfastTimerAt: nil))
        #expect(queue.queuedCount == 3)
        #expect(!queue.isFailingFast)
    }

    @Test("becoming unready after being ready queues later requests and starts the clock at the first one")
    func unreadyAfterReady() {
        var queue = queue()
        _ = queue.endpointsBecameReady()
        queue.endpointsBecameUnready()
        let arrival = Self.start + 700
        #expect(queue.requestArrived(now: arrival) == .enqueued(id: 0, armFailfastTimerAt: arrival + Self.timeout))
    }

    @Test("a full queue sheds new requests; the queued ones are unaffected", arguments: [0, 1, 3, 50])
    func loadShed(capacity: Int) {
        var queue = queue(capacity: capacity)
        let ids = enqueue(capacity, into: &queue, now: Self.start)
        #expect(queue.requestArrived(now: Self.start) == .loadShed)
        #expect(queue.requestArrived(now: Self.start) == .loadShed)
        #expect(queue.queuedCount == capacity)
        #expect(queue.endpointsBecameReady() == ids)
    }

    @Test("a cancellation frees a slot for a shed request")
    func cancellationFreesCapacity() {
        var queue = queue(capacity: 2)
        let ids = enqueue(2, into: &queue, now: Self.start)
        #expect(queue.requestArrived(now: Self.start) == .loadShed)
        #expect(queue.requestCancelled(id: ids[0]) == true)
        #expect(queue.requestArrived(now: Self.start) == .enqueued(id: 2, armFailfastTimerAt: nil))
    }

    @Test("at the deadline the gate shuts, the queued ids fail in arrival order, and new requests fail fast")
    func failfast() {
        var queue = queue()
        let ids = enqueue(5, into: &queue, now: Self.start)
        let moreIDs = enqueue(2, into: &queue, now: Self.start + 2_000_000_000)
        #expect(queue.failfastTimerFired(now: Self.start + Self.timeout) == ids + moreIDs)
        #expect(queue.isFailingFast)
        #expect(queue.queuedCount == 0)
        #expect(queue.requestArrived(now: Self.start + Self.timeout) == .failFast)
        queue.endpointsBecameUnready()
        #expect(queue.requestArrived(now: Self.start + 10 * Self.timeout) == .failFast, "still shut")
        #expect(queue.failfastTimerFired(now: Self.start + 10 * Self.timeout) == [])
    }

    @Test("a timer fired late still fails everything queued")
    func lateTimer() {
        var queue = queue()
        let ids = enqueue(2, into: &queue, now: Self.start)
        #expect(queue.failfastTimerFired(now: Self.start + 5 * Self.timeout) == ids)
        #expect(queue.isFailingFast)
    }

    @Test("an endpoint becoming ready reopens a shut gate and dispatches requests again")
    func reopen() {
        var queue = queue()
        _ = enqueue(1, into: &queue, now: Self.start)
        _ = queue.failfastTimerFired(now: Self.start + Self.timeout)
        #expect(queue.endpointsBecameReady() == [])
        #expect(!queue.isFailingFast)
        #expect(queue.requestArrived(now: Self.start + Self.timeout) == .dispatch)
        queue.endpointsBecameUnready()
        let later = Self.start + 2 * Self.timeout
        #expect(queue.requestArrived(now: later) == .enqueued(id: 1, armFailfastTimerAt: later + Self.timeout))
    }

    @Test("an endpoint becoming ready dispatches the queued ids in arrival order and stops the clock")
    func readyDrains() {
        var queue = queue()
        let ids = enqueue(4, into: &queue, now: Self.start)
        #expect(queue.endpointsBecameReady() == ids)
        #expect(queue.queuedCount == 0)
        #expect(queue.endpointsBecameReady() == [], "a repeated call dispatches nothing more")
        #expect(queue.failfastTimerFired(now: Self.start + Self.timeout) == [], "the old timer is stale")
        #expect(!queue.isFailingFast)
        #expect(queue.requestArrived(now: Self.start + Self.timeout) == .dispatch)
    }

    @Test(
        "a timer before its deadline, or from an earlier clock, changes nothing",
        arguments: [UInt64(0), 1, 2_999_999_999])
    func staleTimer(early: UInt64) {
        var queue = queue()
        _ = enqueue(1, into: &queue, now: Self.start)
        #expect(queue.failfastTimerFired(now: Self.start + early) == [])
        #expect(queue.queuedCount == 1)

        // The first clock stops when an endpoint becomes ready; a new one starts later with a later deadline.
        _ = queue.endpointsBecameReady()
        queue.endpointsBecameUnready()
        let restart = Self.start + 2_000_000_000
        let ids = enqueue(2, into: &queue, now: restart)
        #expect(queue.failfastTimerFired(now: Self.start + Self.timeout) == [], "the first clock's timer")
        #expect(!queue.isFailingFast)
        #expect(queue.failfastTimerFired(now: restart + Self.timeout) == ids)
    }

    @Test("a cancelled request leaves the queue; the rest keep their order")
    func cancellation() {
        var queue = queue()
        let ids = enqueue(5, into: &queue, now: Self.start)
        #expect(queue.requestCancelled(id: ids[1]) == true)
        #expect(queue.requestCancelled(id: ids[3]) == true)
        #expect(queue.requestCancelled(id: ids[3]) == false, "already gone")
        #expect(queue.requestCancelled(id: 999) == false)
        #expect(queue.queuedCount == 3)
        #expect(queue.failfastTimerFired(now: Self.start + Self.timeout) == [ids[0], ids[2], ids[4]])
    }

    @Test("when the last waiting request is cancelled the clock stops; the next enqueue starts a new one")
    func cancellingAllStopsClock() {
        var queue = queue()
        let ids = enqueue(2, into: &queue, now: Self.start)
        ids.forEach { queue.requestCancelled(id: $0) }
        #expect(queue.failfastTimerFired(now: Self.start + Self.timeout) == [])
        #expect(!queue.isFailingFast)
        let later = Self.start + Self.timeout + 1
        #expect(queue.requestArrived(now: later) == .enqueued(id: 2, armFailfastTimerAt: later + Self.timeout))
    }

    @Test("many cancellations keep the order of the survivors")
    func manyCancellations() {
        var queue = queue()
        let ids = enqueue(1_000, into: &queue, now: Self.start)
        for id in ids where id % 3 != 0 {
            queue.requestCancelled(id: id)
        }
        let more = enqueue(10, into: &queue, now: Self.start + 1)
        #expect(queue.queuedCount == 334 + 10)
        #expect(queue.endpointsBecameReady() == ids.filter { $0 % 3 == 0 } + more)
    }

    @Test("the configuration's capacity and timeout are used; negative ones count as 0")
    func parameters() {
        let queue = BalancerQueue(capacity: 10_000, failfastTimeout: .seconds(1))
        #expect(queue.capacity == 10_000)
        #expect(queue.failfastTimeout == .seconds(1))
        var clamped = BalancerQueue(capacity: -1, failfastTimeout: .seconds(-1))
        #expect(clamped.capacity == 0)
        #expect(clamped.failfastTimeout == .zero)
        #expect(clamped.requestArrived(now: Self.start) == .loadShed)
    }

    @Test("a deadline past the end of the clock saturates instead of wrapping")
    func saturatingDeadline() {
        var queue = BalancerQueue(capacity: 1, failfastTimeout: .seconds(Int64.max))
        #expect(queue.requestArrived(now: Self.start) == .enqueued(id: 0, armFailfastTimerAt: .max))
        #expect(queue.failfastTimerFired(now: .max - 1) == [])
    }
}
