import LinkerdCore

/// Exponential backoff with jitter, as a value: `next()` returns the delay before the next attempt.
///
/// The n-th delay is `initial * multiplier^(n-1)`, capped at `maximum`, then scaled by a random factor in
/// `1 - jitter ... 1` so that many clients restarting together spread out. `reset()` after a success.
public struct Backoff: Sendable {
    public var initial: Duration
    public var maximum: Duration
    public var multiplier: Double
    /// 0 disables jitter; 0.5 picks a delay between half and all of the computed one.
    public var jitter: Double
    public private(set) var attempts = 0
    private var random: SeededRandom

    public init(
        initial: Duration = .milliseconds(500), maximum: Duration = .seconds(30), multiplier: Double = 2,
        jitter: Double = 0.5, seed: UInt64 = 0x5DEE_CE66
    ) {
        precondition(initial > .zero && maximum >= initial && multiplier >= 1 && (0...1).contains(jitter))
        self.initial = initial
        self.maximum = maximum
        self.multiplier = multiplier
        self.jitter = jitter
        self.random = SeededRandom(seed: seed)
    }

    /// The delay before the next attempt; each call counts one more failure.
    public mutating func next() -> Duration {
        attempts += 1
        let exponent = Double(min(attempts - 1, 62))
        let base = min(initial.inSeconds * pow2(multiplier, exponent), maximum.inSeconds)
        let factor = 1 - jitter * random.nextUnit()
        return .nanoseconds(Int64((base * factor * 1e9).rounded()))
    }

    public mutating func reset() {
        attempts = 0
    }

    private func pow2(_ base: Double, _ exponent: Double) -> Double {
        var result = 1.0
        var remaining = Int(exponent)
        while remaining > 0 {
            result *= base
            remaining -= 1
            if result > 1e12 { break }
        }
        return result
    }
}

/// SplitMix64: tiny, fast and reproducible, which is all jitter needs; a seed makes tests deterministic.
struct SeededRandom: Sendable {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    mutating func nextUnit() -> Double {
        Double(next() >> 11) / Double(1 << 53)
    }
}

extension Duration {
    var secondsValue: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
