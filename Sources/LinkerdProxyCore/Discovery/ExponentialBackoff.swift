import LinkerdCore

/// The delays between reconnection attempts (reference proxy §3.5: `min(min·2ⁿ, max)` plus a uniform random jitter
/// from 0 to `jitter` times that), as the `…_CONNECT_EXP_BACKOFF_{MIN,MAX,JITTER}` variables configure them.
///
/// The jitter spreads the reconnections of many proxies after a control-plane restart; it is added after the cap,
/// so a delay may exceed ``maximum`` by up to ``jitter`` times it.
public struct ExponentialBackoff: Hashable, Sendable, CustomStringConvertible {
    /// The first delay.
    public let minimum: Duration
    /// The longest delay before jitter.
    public let maximum: Duration
    /// The largest share of the delay added at random: from 0 to 100.
    public let jitter: Double

    /// Why backoff parameters were refused.
    public struct InvalidParameters: Error, Hashable, Sendable, CustomStringConvertible {
        public let minimum: Duration
        public let maximum: Duration
        public let jitter: Double
        public let reason: String

        public var description: String {
            "the backoff from \(minimum) to \(maximum) with jitter \(jitter) is not valid: \(reason)"
        }
    }

    /// The proxy's default for outbound connections and control-plane streams: 100 ms to 60 s, jitter 0.1.
    public static let outboundDefault = ExponentialBackoff(
        checkedMinimum: .milliseconds(100), maximum: .seconds(60), jitter: 0.1)

    /// - Throws: ``InvalidParameters`` when the minimum is negative, the maximum is not above zero or is shorter
    ///   than the minimum, or the jitter is not a number from 0 to 100 (the bounds the configuration reader
    ///   enforces).
    public init(minimum: Duration, maximum: Duration, jitter: Double) throws(InvalidParameters) {
        func invalid(_ reason: String) -> InvalidParameters {
            InvalidParameters(minimum: minimum, maximum: maximum, jitter: jitter, reason: reason)
        }
        guard minimum >= .zero else { throw invalid("the minimum \(minimum) is negative") }
        guard maximum > .zero else { throw invalid("the maximum \(maximum) is not above zero") }
        guard minimum <= maximum else {
            throw invalid("the minimum \(minimum) is longer than the maximum \(maximum)")
        }
        guard jitter.isFinite, (0...100).contains(jitter) else {
            throw invalid("the jitter \(jitter) is not a number from 0 to 100")
        }
        self.init(checkedMinimum: minimum, maximum: maximum, jitter: jitter)
    }

    /// The backoff a validated proxy configuration gives, such as
    /// `ProxyConfiguration.outbound.connect.backoff`.
    public init(_ configuration: ProxyConfiguration.Backoff) {
        // The configuration reader refuses what `init(minimum:maximum:jitter:)` refuses; clamp all the same, so a
        // hand-built configuration cannot produce a backoff that breaks the arithmetic below.
        let maximum = Swift.max(configuration.max, .nanoseconds(1))
        let minimum = Swift.min(Swift.max(configuration.min, .zero), maximum)
        let jitter = configuration.jitter.isFinite ? Swift.min(Swift.max(configuration.jitter, 0), 100) : 0
        self.init(checkedMinimum: minimum, maximum: maximum, jitter: jitter)
    }

    private init(checkedMinimum minimum: Duration, maximum: Duration, jitter: Double) {
        self.minimum = minimum
        self.maximum = maximum
        self.jitter = jitter
    }

    /// The delay before attempt `failures + 1`, without jitter: `min(minimum · 2^failures, maximum)`; ``minimum``
    /// for a negative count.
    public func baseDelay(afterFailures failures: Int) -> Duration {
        guard minimum > .zero else { return .zero }
        var delay = minimum
        for _ in 0..<Swift.max(failures, 0) {
            // Doubling stops at the maximum, so it never overflows and the loop ends within 64 rounds.
            guard delay < maximum else { break }
            delay = delay * 2
        }
        return Swift.min(delay, maximum)
    }

    /// The delay before attempt `failures + 1`: ``baseDelay(afterFailures:)`` plus `randomFraction · jitter` times
    /// it.
    ///
    /// - Parameter randomFraction: a value from 0 to 1 (clamped), uniformly random in use; tests pass fixed ones.
    public func delay(afterFailures failures: Int, randomFraction: Double) -> Duration {
        let base = baseDelay(afterFailures: failures)
        let fraction = randomFraction.isFinite ? Swift.min(Swift.max(randomFraction, 0), 1) : 0
        return base + base * (jitter * fraction)
    }

    /// The delay before attempt `failures + 1`, with a jitter drawn from `generator`.
    public func delay(
        afterFailures failures: Int, using generator: inout some RandomNumberGenerator
    ) -> Duration {
        delay(afterFailures: failures, randomFraction: Double.random(in: 0...1, using: &generator))
    }

    /// `100ms…60s (jitter 0.1)`.
    public var description: String {
        "\(minimum)…\(maximum) (jitter \(jitter))"
    }
}
