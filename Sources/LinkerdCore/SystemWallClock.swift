#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The real clock: `Date()` for the time and `Task.sleep(for:)` (on the continuous clock) for sleeping.
public struct SystemWallClock: WallClock {
    /// The system clock.
    public init() {}

    /// The current time, `Date()`.
    public func now() -> Date {
        Date()
    }

    /// Sleeps with `Task.sleep(for:)`, which throws `CancellationError` when the task is cancelled.
    public func sleep(for duration: Duration) async throws {
        try await Task.sleep(for: duration)
    }
}
