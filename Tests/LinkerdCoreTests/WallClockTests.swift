import Foundation
import LinkerdCore
import Testing

@Suite struct WallClockTests {
    @Test func nowIsTheSystemTime() {
        let before = Date()
        let now = SystemWallClock().now()
        let after = Date()
        #expect(before <= now && now <= after)
    }

    @Test func sleepsForAtLeastTheDuration() async throws {
        let clock: some WallClock = .system
        let elapsed = try await ContinuousClock().measure {
            try await clock.sleep(for: .milliseconds(20))
        }
        #expect(elapsed >= .milliseconds(20))
    }

    @Test func sleepThrowsCancellationErrorWhenCancelled() async {
        let started = ContinuousClock.now
        let sleeper = Task {
            try await SystemWallClock().sleep(for: .seconds(60))
        }
        sleeper.cancel()
        await #expect(throws: CancellationError.self) {
            try await sleeper.value
        }
        #expect(ContinuousClock.now - started < .seconds(30))
    }
}
