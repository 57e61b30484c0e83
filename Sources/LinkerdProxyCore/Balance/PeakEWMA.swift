#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// An endpoint's round-trip-time estimate, as tower's `load::PeakEwma` keeps it for the P2C balancer (reference
/// proxy §3.4): pessimistic about latency spikes, forgiving over time.
///
/// - A sample above the estimate replaces it at once (the *peak*), so a slowing endpoint loses traffic quickly.
/// - A sample at or below it moves the estimate towards the sample by an exponentially weighted average whose
///   weight depends on the time since the last update: `w = exp(-elapsed/decay)`, `est = est·w + rtt·(1−w)`.
///   The longer an endpoint went unmeasured, the more the new sample counts.
/// - A read decays the estimate towards 0 by `exp(-elapsed/decay)`, so an endpoint that has not answered for a
///   while looks cheap and gets probed again rather than being starved by one old spike.
///
/// Reads do not store the decay (tower's `load` does). The estimate therefore does not depend on how often the
/// balancer looks at it; between two updates with no read in between, the two agree exactly.
///
/// Times are nanoseconds of a monotonic clock (`NIODeadline.now().uptimeNanoseconds` in the I/O layer). A `now`
/// earlier than the last update counts as no time elapsed.
public struct PeakEWMA: Sendable {
    /// The smallest starting estimate: tower refuses an estimate of 0, which would make an endpoint's load 0
    /// whatever its pending requests.
    public static let minimumDefaultRTT: Duration = .milliseconds(1)

    /// The estimate as of `updatedAt`, in nanoseconds.
    private var storedEstimate: Double
    /// When `storedEstimate` was last set.
    private var updatedAt: UInt64
    /// The decay constant in nanoseconds: after this long the old estimate weighs `1/e`.
    private let decayNanoseconds: Double

    /// - Parameters:
    ///   - defaultRTT: the estimate before any sample (30 ms in the proxy), raised to ``minimumDefaultRTT``.
    ///   - decay: the time constant of the decay (10 s in the proxy); below 1 ns counts as 1 ns, as a decay of
    ///     0 has no meaning.
    ///   - now: the current time, from which the default estimate decays.
    public init(defaultRTT: Duration = .milliseconds(30), decay: Duration = .seconds(10), now: UInt64) {
        storedEstimate = Self.nanoseconds(max(defaultRTT, Self.minimumDefaultRTT))
        updatedAt = now
        decayNanoseconds = max(Self.nanoseconds(decay), 1)
    }

    /// Takes a completed request's round-trip time (a negative one counts as 0): a peak above the stored estimate
    /// replaces it; a lower sample is averaged in with the weight `1 − exp(-elapsed/decay)`, where `elapsed` is
    /// the time since the last update.
    public mutating func record(rtt: Duration, now: UInt64) {
        let sample = Self.nanoseconds(max(rtt, .zero))
        if sample > storedEstimate {
            storedEstimate = sample
        } else {
            let weight = decayWeight(now: now)
            storedEstimate = storedEstimate * weight + sample * (1 - weight)
        }
        updatedAt = max(updatedAt, now)
    }

    /// The estimate at `now` in nanoseconds: the stored one decayed towards 0 by `exp(-elapsed/decay)`.
    public func estimate(now: UInt64) -> Double {
        storedEstimate * decayWeight(now: now)
    }

    /// The balancer's cost of sending one more request: `estimate × (pending + 1)`, so an idle endpoint still
    /// costs its latency and each request already in flight adds a full round trip. A negative `pending` counts
    /// as 0.
    public func load(pending: Int, now: UInt64) -> Double {
        estimate(now: now) * Double(max(pending, 0) + 1)
    }

    /// `exp(-elapsed/decay)`: 1 when no time has passed, towards 0 as time goes on.
    private func decayWeight(now: UInt64) -> Double {
        let elapsed = now > updatedAt ? Double(now - updatedAt) : 0
        return exp(-elapsed / decayNanoseconds)
    }

    private static func nanoseconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) * 1e9 + Double(attoseconds) / 1e9
    }
}
