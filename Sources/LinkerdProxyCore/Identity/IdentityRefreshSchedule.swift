#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// When the proxy asks the identity service for a new certificate (reference proxy §4.3).
///
/// After a certificate is obtained, the next Certify call comes after 70% of the time remaining until it expires,
/// clamped to [``minimumRefresh``, ``maximumRefresh``] (`LINKERD2_PROXY_IDENTITY_MIN_REFRESH`, default 10 s, and
/// `LINKERD2_PROXY_IDENTITY_MAX_REFRESH`, default 24 h). Counting from the time remaining rather than from the
/// certificate's start makes a late refresh still leave margin before expiry.
///
/// After a failed call the schedule is computed from the expiry of the certificate in use, as upstream does: a
/// certificate that is still valid is refreshed at 70% of what remains of it (so repeated failures close in on its
/// expiry), and when it has expired, or there never was one, the next try comes after ``minimumRefresh``.
public struct IdentityRefreshSchedule: Hashable, Sendable {
    /// The shortest wait between two Certify calls.
    public let minimumRefresh: Duration
    /// The longest wait between two Certify calls.
    public let maximumRefresh: Duration

    /// Upstream's defaults: at least 10 seconds, at most 24 hours.
    public static let standard = IdentityRefreshSchedule(
        checkedMinimum: .seconds(10), maximum: .seconds(24 * 3600))

    /// - Throws: ``InvalidBounds`` when a bound is not positive or the minimum exceeds the maximum.
    public init(minimumRefresh: Duration, maximumRefresh: Duration) throws(InvalidBounds) {
        guard minimumRefresh > .zero else {
            throw InvalidBounds(
                minimumRefresh: minimumRefresh, maximumRefresh: maximumRefresh,
                reason: "the minimum refresh \(minimumRefresh) is not positive")
        }
        guard minimumRefresh <= maximumRefresh else {
            throw InvalidBounds(
                minimumRefresh: minimumRefresh, maximumRefresh: maximumRefresh,
                reason: "the minimum refresh \(minimumRefresh) is greater than the maximum refresh \(maximumRefresh)")
        }
        self.init(checkedMinimum: minimumRefresh, maximum: maximumRefresh)
    }

    private init(checkedMinimum minimum: Duration, maximum: Duration) {
        minimumRefresh = minimum
        maximumRefresh = maximum
    }

    /// How long to wait before the next Certify call when the certificate in use expires at `expiry` (nil: there is
    /// none): 70% of the time from `now` to `expiry`, clamped to [``minimumRefresh``, ``maximumRefresh``];
    /// ``minimumRefresh`` when `expiry` is nil, now or past.
    public func refreshDelay(expiry: Date?, now: Date) -> Duration {
        guard let expiry else { return minimumRefresh }
        let delay = expiry.timeIntervalSince(now) * 0.7
        if delay <= Self.seconds(minimumRefresh) { return minimumRefresh }
        if delay >= Self.seconds(maximumRefresh) { return maximumRefresh }
        // Between the bounds, so small enough for nanoseconds in an Int64.
        return .nanoseconds(Int64(delay * 1e9))
    }

    private static func seconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }

    /// A minimum and maximum refresh that cannot make a schedule.
    public struct InvalidBounds: Error, Hashable, Sendable, CustomStringConvertible {
        public let minimumRefresh: Duration
        public let maximumRefresh: Duration
        /// Which bound is wrong and why.
        public let reason: String

        public var description: String {
            "invalid identity refresh bounds: \(reason)"
        }
    }
}

/// The identity task's memory between Certify calls: the expiry of the certificate in use, which a failed call
/// keeps (the certificate stays installed), and the schedule that turns it into the next wait.
public struct IdentityRefreshState: Hashable, Sendable {
    public let schedule: IdentityRefreshSchedule
    /// When the certificate in use expires; nil before the first successful call.
    public private(set) var expiry: Date?

    public init(schedule: IdentityRefreshSchedule = .standard, expiry: Date? = nil) {
        self.schedule = schedule
        self.expiry = expiry
    }

    /// Records a certificate valid until `validUntil` and returns the wait before the next call.
    public mutating func certified(validUntil: Date, now: Date) -> Duration {
        expiry = validUntil
        return schedule.refreshDelay(expiry: validUntil, now: now)
    }

    /// Records a failed call (the expiry is kept) and returns the wait before the next call.
    public func failed(now: Date) -> Duration {
        schedule.refreshDelay(expiry: expiry, now: now)
    }
}
