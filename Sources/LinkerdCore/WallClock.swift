#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The time of day and the passage of time, injected so that tests can control both.
public protocol WallClock: Sendable {
    /// The current time.
    func now() -> Date

    /// Suspends the calling task for `duration`.
    ///
    /// - Throws: `CancellationError` when the task is cancelled before the time has passed, and then returns
    ///   promptly.
    func sleep(for duration: Duration) async throws

    /// Suspends the calling task until `deadline` (at once if it has passed). Prefer it to `sleep(for:)` when the
    /// deadline is known: a duration computed from an earlier `now()` can overshoot.
    ///
    /// - Throws: `CancellationError` when the task is cancelled first.
    func sleep(until deadline: Date) async throws
}

extension WallClock {
    public func sleep(until deadline: Date) async throws {
        let remaining = deadline.timeIntervalSince(now())
        try await sleep(for: remaining > 0 ? .nanoseconds(Int64(remaining * 1e9)) : .zero)
    }
}

extension WallClock where Self == SystemWallClock {
    /// The real clock of the system.
    public static var system: SystemWallClock {
        SystemWallClock()
    }
}

extension Duration {
    /// The duration as a number of seconds, for date arithmetic and metrics.
    public var inSeconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
