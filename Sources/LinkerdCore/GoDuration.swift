/// A span of time in Go's `time.Duration` syntax, as Linkerd and Kubernetes write durations: `100ms`, `10s`, `1h30m`,
/// `1.5h`, `-5m`.
///
/// The value is a signed count of nanoseconds that fits in 64 bits, as in Go: about ±292 years. Parsing follows Go's
/// `time.ParseDuration`, with one extension: the unit `d` (24 hours), so `365d` is accepted.
public struct GoDuration: Hashable, Comparable, Sendable, CustomStringConvertible, Codable {
    /// The duration in nanoseconds.
    public let nanoseconds: Int64

    /// The duration of zero length.
    public static let zero = GoDuration(nanoseconds: 0)

    /// A duration of `nanoseconds`.
    public init(nanoseconds: Int64) {
        self.nanoseconds = nanoseconds
    }

    /// The whole nanoseconds of `duration`: any fraction of a nanosecond is dropped (rounding toward zero), and a
    /// duration beyond the 64-bit range is clamped to its nearest end.
    public init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: Self.nanosecondsPerSecond)
        let (total, carry) = whole.addingReportingOverflow(attoseconds / 1_000_000_000)
        if overflow || carry {
            nanoseconds = seconds < 0 ? .min : .max
        } else {
            nanoseconds = total
        }
    }

    /// Parses a sequence of decimal numbers, each with an optional fraction and a required unit, with an optional
    /// leading sign: `300ms`, `-1.5h`, `2h45m`. `0` needs no unit.
    ///
    /// The units are `ns`, `us` (or `µs`, `μs`), `ms`, `s`, `m`, `h` and `d`. Fractions finer than a nanosecond are
    /// dropped.
    ///
    /// - Throws: ``ParseError`` when the string is empty, a number is missing or has no unit, a unit is unknown, or
    ///   the total does not fit in 64 bits of nanoseconds.
    public init(parsing string: String) throws(ParseError) {
        func failure(_ reason: String) -> ParseError {
            ParseError(value: string, expected: "duration", reason: reason)
        }
        func outOfRange() -> ParseError {
            failure(
                "it is outside the range of a 64-bit count of nanoseconds, "
                    + "\(GoDuration(nanoseconds: .min)) to \(GoDuration(nanoseconds: .max))"
            )
        }

        let scalars = Array(string.unicodeScalars)
        var index = 0
        var negative = false
        if let sign = scalars.first, sign == "-" || sign == "+" {
            negative = sign == "-"
            index += 1
        }
        if scalars[index...] == ["0"] {
            self.init(nanoseconds: 0)
            return
        }
        guard index < scalars.endIndex else {
            throw failure(string.isEmpty ? "it is empty" : "it has no number")
        }

        func take(while predicate: (Unicode.Scalar) -> Bool) -> ArraySlice<Unicode.Scalar> {
            let start = index
            while index < scalars.endIndex, predicate(scalars[index]) {
                index += 1
            }
            return scalars[start..<index]
        }

        let limit = UInt64(Int64.max) + 1
        var total: UInt64 = 0
        while index < scalars.endIndex {
            let numberStart = index
            let integerDigits = take(while: Self.isDigit)
            var fractionDigits: ArraySlice<Unicode.Scalar> = []
            if index < scalars.endIndex, scalars[index] == "." {
                index += 1
                fractionDigits = take(while: Self.isDigit)
            }
            guard !integerDigits.isEmpty || !fractionDigits.isEmpty else {
                throw failure("expected a number at \(Self.text(scalars[numberStart...]).quoted)")
            }
            let number = Self.text(scalars[numberStart..<index])

            let unitText = Self.text(take { !Self.isDigit($0) && $0 != "." })
            guard !unitText.isEmpty else {
                throw failure("the number \(number) has no unit; expected one of \(Self.unitNames)")
            }
            guard let unit = Self.units[unitText] else {
                throw failure("unknown unit \(unitText.quoted); expected one of \(Self.unitNames)")
            }

            guard let integer = Self.value(ofDigits: integerDigits) else {
                throw outOfRange()
            }
            let (scaled, overflow) = integer.multipliedReportingOverflow(by: unit)
            guard !overflow, scaled <= limit else {
                throw outOfRange()
            }
            let (sum, carry) = total.addingReportingOverflow(scaled + Self.fraction(of: unit, digits: fractionDigits))
            guard !carry, sum <= limit else {
                throw outOfRange()
            }
            total = sum
        }
        if negative {
            self.init(nanoseconds: total == limit ? .min : -Int64(total))
        } else {
            guard total < limit else {
                throw outOfRange()
            }
            self.init(nanoseconds: Int64(total))
        }
    }

    /// The duration as a Swift `Duration`.
    public var duration: Duration {
        .nanoseconds(nanoseconds)
    }

    /// The form Go's `time.Duration.String` prints: `0s`, `1.5µs`, `100ms`, `10s`, `1h30m0s`, `-2m3.5s`.
    ///
    /// Durations under a second use the largest of `ns`, `µs` and `ms` that keeps the number at least 1; longer
    /// ones are written in hours, minutes and seconds (never days). ``init(parsing:)`` parses it back exactly.
    public var description: String {
        let sign = nanoseconds < 0 ? "-" : ""
        let magnitude = nanoseconds.magnitude
        switch magnitude {
        case 0:
            return "0s"
        case ..<1_000:
            return "\(sign)\(magnitude)ns"
        case ..<1_000_000:
            return "\(sign)\(Self.decimal(magnitude, fractionDigits: 3))\u{B5}s"
        case ..<1_000_000_000:
            return "\(sign)\(Self.decimal(magnitude, fractionDigits: 6))ms"
        default:
            let nanosecondsPerMinute = 60 * UInt64(Self.nanosecondsPerSecond)
            let seconds = Self.decimal(magnitude % nanosecondsPerMinute, fractionDigits: 9) + "s"
            let minutes = magnitude / nanosecondsPerMinute
            let hours = minutes / 60
            if hours > 0 {
                return "\(sign)\(hours)h\(minutes % 60)m\(seconds)"
            }
            if minutes > 0 {
                return "\(sign)\(minutes)m\(seconds)"
            }
            return "\(sign)\(seconds)"
        }
    }

    /// Whether `lhs` is shorter than `rhs`, negative durations being shorter than zero.
    public static func < (lhs: GoDuration, rhs: GoDuration) -> Bool {
        lhs.nanoseconds < rhs.nanoseconds
    }

    /// Decodes the string form, as ``init(parsing:)`` parses it.
    public init(from decoder: any Decoder) throws {
        self = try StringCoding.decode(from: decoder, Self.init(parsing:))
    }

    /// Encodes the string form.
    public func encode(to encoder: any Encoder) throws {
        try StringCoding.encode(self, to: encoder)
    }

    private static let nanosecondsPerSecond: Int64 = 1_000_000_000

    private static let units: [String: UInt64] = [
        "ns": 1,
        "us": 1_000,
        "\u{B5}s": 1_000,
        "\u{3BC}s": 1_000,
        "ms": 1_000_000,
        "s": 1_000_000_000,
        "m": 60_000_000_000,
        "h": 3_600_000_000_000,
        "d": 86_400_000_000_000,
    ]

    private static let unitNames = "ns, us, µs, ms, s, m, h, d"

    /// Fraction digits beyond this many are ignored: they are worth less than a nanosecond of any unit.
    private static let maxFractionDigits = 19

    private static func text(_ scalars: ArraySlice<Unicode.Scalar>) -> String {
        var text = ""
        text.unicodeScalars.append(contentsOf: scalars)
        return text
    }

    private static func isDigit(_ scalar: Unicode.Scalar) -> Bool {
        ("0"..."9").contains(scalar)
    }

    /// The value of a run of decimal digits, or nil when it does not fit in 64 bits.
    private static func value(ofDigits digits: ArraySlice<Unicode.Scalar>) -> UInt64? {
        var value: UInt64 = 0
        for digit in digits {
            let (shifted, overflow) = value.multipliedReportingOverflow(by: 10)
            let (sum, carry) = shifted.addingReportingOverflow(UInt64(digit.value - 48))
            guard !overflow, !carry else { return nil }
            value = sum
        }
        return value
    }

    /// The whole nanoseconds in `0.<digits>` of `unit`.
    private static func fraction(of unit: UInt64, digits: ArraySlice<Unicode.Scalar>) -> UInt64 {
        var numerator: UInt128 = 0
        var denominator: UInt128 = 1
        for digit in digits.prefix(maxFractionDigits) {
            numerator = numerator * 10 + UInt128(digit.value - 48)
            denominator *= 10
        }
        return UInt64(numerator * UInt128(unit) / denominator)
    }

    /// `value / 10^fractionDigits` in decimal, without trailing zeros in the fraction or a point if there is none.
    private static func decimal(_ value: UInt64, fractionDigits: Int) -> String {
        var scale: UInt64 = 1
        for _ in 0..<fractionDigits {
            scale *= 10
        }
        let integer = String(value / scale)
        var fraction = String(value % scale)
        guard fraction != "0" else { return integer }
        fraction = String(repeating: "0", count: fractionDigits - fraction.count) + fraction
        while fraction.hasSuffix("0") {
            fraction.removeLast()
        }
        return "\(integer).\(fraction)"
    }
}
