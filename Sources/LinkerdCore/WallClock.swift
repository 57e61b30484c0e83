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
}

extension WallClock where Self == SystemWallClock {
    /// The real clock of the system.
    public static var system: SystemWallClock {
        SystemWallClock()
    }
}
