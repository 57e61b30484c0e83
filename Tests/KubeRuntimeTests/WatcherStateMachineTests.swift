import KubeModel
import Testing

@testable import KubeRuntime

@Suite("Watcher state machine")
struct WatcherStateMachineTests {
    private func machine() -> WatcherStateMachine {
        WatcherStateMachine(backoff: Backoff(initial: .seconds(1), maximum: .seconds(8), jitter: 0))
    }

    @Test("lists page by page, then watches from the list's resourceVersion")
    func listThenWatch() {
        var machine = machine()
        #expect(machine.nextAction() == .list(continueToken: nil))
        #expect(machine.listPageReceived(resourceVersion: "10", continueToken: "page-2") == false)
        #expect(machine.nextAction() == .list(continueToken: "page-2"))
        #expect(machine.listPageReceived(resourceVersion: "10", continueToken: "") == true)
        #expect(machine.nextAction() == .watch(resourceVersion: "10"))
        machine.watchEventReceived(resourceVersion: "12")
        #expect(machine.nextAction() == .watch(resourceVersion: "12"))
    }

    @Test("a cleanly ended watch resumes from the last resourceVersion without waiting")
    func resumeAfterCleanEnd() {
        var machine = machine()
        _ = machine.listPageReceived(resourceVersion: "5", continueToken: nil)
        machine.watchEventReceived(resourceVersion: "7")
        machine.watchEnded(receivedEvents: true)
        #expect(machine.nextAction() == .watch(resourceVersion: "7"))
    }

    @Test("a watch that ends without any event backs off before resuming")
    func emptyWatchBacksOff() {
        var machine = machine()
        _ = machine.listPageReceived(resourceVersion: "5", continueToken: nil)
        machine.watchEnded(receivedEvents: false)
        #expect(machine.nextAction() == .wait(.seconds(1)))
        #expect(machine.nextAction() == .watch(resourceVersion: "5"))
    }

    @Test("410 Gone re-lists at once; a second Gone in a row backs off")
    func goneRelists() {
        var machine = machine()
        _ = machine.listPageReceived(resourceVersion: "5", continueToken: nil)
        let gone = KubeError(code: .gone, message: "too old resource version")
        #expect(machine.failed(gone) == .zero)
        #expect(machine.nextAction() == .list(continueToken: nil))
        #expect(machine.failed(gone) == .seconds(1))
        #expect(machine.nextAction() == .wait(.seconds(1)))
        #expect(machine.nextAction() == .list(continueToken: nil))
        #expect(machine.resourceVersion == nil)
    }

    @Test("other errors back off exponentially and keep the resourceVersion")
    func errorsBackOff() {
        var machine = machine()
        _ = machine.listPageReceived(resourceVersion: "5", continueToken: nil)
        let dropped = KubeError(code: .transport, message: "connection reset")
        #expect(machine.failed(dropped) == .seconds(1))
        #expect(machine.nextAction() == .wait(.seconds(1)))
        #expect(machine.nextAction() == .watch(resourceVersion: "5"))
        #expect(machine.failed(dropped) == .seconds(2))
        #expect(machine.failed(dropped) == .seconds(4))
        #expect(machine.failed(dropped) == .seconds(8))
        #expect(machine.failed(dropped) == .seconds(8))
        #expect(machine.consecutiveFailures == 5)
        machine.watchEventReceived(resourceVersion: "6")
        #expect(machine.consecutiveFailures == 0)
    }

    @Test("an error in the middle of a paginated list restarts the list")
    func listErrorRestarts() {
        var machine = machine()
        _ = machine.listPageReceived(resourceVersion: "5", continueToken: "next")
        machine.failed(KubeError(code: .server(statusCode: 500), message: "boom"))
        #expect(machine.nextAction() == .wait(.seconds(1)))
        #expect(machine.nextAction() == .list(continueToken: nil))
    }

    @Test("Retry-After from the server stretches the backoff")
    func retryAfter() {
        var machine = machine()
        let throttled = KubeError(code: .tooManyRequests, message: "slow down", retryAfter: .seconds(5))
        #expect(machine.failed(throttled) == .seconds(5))
    }
}

@Suite("Backoff")
struct BackoffTests {
    @Test("doubles up to the maximum and resets")
    func doubling() {
        var backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(1), jitter: 0)
        let delays = (0..<6).map { _ in backoff.next() }
        #expect(
            delays == [
                .milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800), .seconds(1),
                .seconds(1),
            ])
        backoff.reset()
        #expect(backoff.next() == .milliseconds(100))
    }

    @Test("jitter keeps each delay between (1 - jitter) and 1 times the computed delay")
    func jitterBounds() {
        var backoff = Backoff(initial: .seconds(1), maximum: .seconds(1), jitter: 0.5, seed: 42)
        let delays = (0..<200).map { _ in backoff.next() }
        #expect(delays.allSatisfy { $0 >= .milliseconds(500) && $0 <= .seconds(1) })
        #expect(Set(delays).count > 100, "jitter should spread the delays")
    }
}
