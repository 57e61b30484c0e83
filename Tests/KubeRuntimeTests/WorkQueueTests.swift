import LinkerdTestSupport
import Synchronization
import Testing

@testable import KubeRuntime

@Suite("Work queue")
struct WorkQueueTests {
    @Test("a key added many times while waiting is handed out once")
    func deduplicates() async {
        let queue = WorkQueue<String>(name: "test", clock: ManualClock())
        for _ in 0..<5 { queue.add("a") }
        queue.add("b")
        #expect(queue.depth == 2)
        #expect(await queue.next() == "a")
        #expect(await queue.next() == "b")
        #expect(queue.depth == 0)
    }

    @Test("a key re-added while being processed waits for done, then comes back once")
    func notTwiceAtOnce() async {
        let queue = WorkQueue<String>(name: "test", clock: ManualClock())
        queue.add("a")
        let first = await queue.next()
        queue.add("a")
        queue.add("a")
        #expect(queue.depth == 0, "the key is in progress: it must not be handed to a second worker")
        queue.done("a")
        #expect(first == "a")
        #expect(queue.depth == 1)
        #expect(await queue.next() == "a")
        queue.done("a")
        #expect(queue.depth == 0)
    }

    @Test("many workers never hold the same key at once")
    func concurrentWorkers() async throws {
        let queue = WorkQueue<Int>(name: "test", clock: ManualClock())
        let inFlight = Locked<Set<Int>>([])
        let violations = Locked(0)
        let processed = Locked(0)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    while let key = await queue.next() {
                        let fresh = inFlight.withLock { $0.insert(key).inserted }
                        if !fresh { violations.withLock { $0 += 1 } }
                        await Task.yield()
                        inFlight.withLock { _ = $0.remove(key) }
                        processed.withLock { $0 += 1 }
                        queue.done(key)
                    }
                }
            }
            for round in 0..<200 {
                queue.add(round % 5)
                if round % 10 == 0 { await Task.yield() }
            }
            try await eventually("the queue to drain") { queue.depth == 0 && inFlight.withLock { $0.isEmpty } }
            queue.shutDown()
            try await group.waitForAll()
        }
        #expect(violations.withLock { $0 } == 0)
        #expect(processed.withLock { $0 } >= 5)
    }

    @Test("a failing key is retried after exponentially growing delays until forgotten")
    func rateLimited() async throws {
        let clock = ManualClock()
        let queue = WorkQueue<String>(
            name: "test", configuration: .init(baseRetryDelay: .seconds(1), maximumRetryDelay: .seconds(4)),
            clock: clock)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await queue.run() }
            for expectedDelay in [1, 2, 4, 4] {
                queue.addRateLimited("flaky")
                try await clock.waitForSleepers(atLeast: 1)
                #expect(queue.depth == 0)
                clock.advance(by: .seconds(expectedDelay) - .milliseconds(1))
                try await Task.sleep(for: .milliseconds(20))
                #expect(queue.depth == 0, "not due before \(expectedDelay)s")
                clock.advance(by: .milliseconds(2))  // a margin: two steps need not add up exactly
                try await eventually("flaky due after \(expectedDelay)s") { queue.depth == 1 }
                #expect(await queue.next() == "flaky")
                queue.done("flaky")
            }
            #expect(queue.failures(of: "flaky") == 4)
            queue.forget("flaky")
            #expect(queue.failures(of: "flaky") == 0)
            group.cancelAll()
        }
    }

    @Test("a delayed add keeps the earliest deadline for the key")
    func earliestDeadlineWins() async throws {
        let clock = ManualClock()
        let queue = WorkQueue<String>(name: "test", clock: clock)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await queue.run() }
            queue.add("k", after: .seconds(10))
            queue.add("k", after: .seconds(3))
            queue.add("k", after: .seconds(20))
            #expect(queue.delayedCount == 1)
            try await clock.waitForSleepers(atLeast: 1)
            clock.advance(by: .seconds(3))
            try await eventually("k due at 3s") { queue.depth == 1 }
            #expect(queue.delayedCount == 0)
            group.cancelAll()
        }
    }

    @Test("shutDown wakes waiting workers with nil")
    func shutDownWakesWorkers() async {
        let queue = WorkQueue<String>(name: "test", clock: ManualClock())
        async let key = queue.next()
        try? await Task.sleep(for: .milliseconds(10))
        queue.shutDown()
        #expect(await key == nil)
        queue.add("late")
        #expect(await queue.next() == nil)
    }

    @Test("a cancelled worker stops waiting")
    func cancellation() async {
        let queue = WorkQueue<String>(name: "test", clock: ManualClock())
        let worker = Task { await queue.next() }
        try? await Task.sleep(for: .milliseconds(10))
        worker.cancel()
        #expect(await worker.value == nil)
        queue.add("a")
        #expect(await queue.next() == "a", "the cancelled waiter must not swallow the key")
    }
}
