import Foundation
import LinkerdCore
import LinkerdTestSupport
import Testing

@Suite struct GoDurationTests {
    @Test(arguments: [
        ("0", Int64(0), "0s"),
        ("-0", 0, "0s"),
        ("+0", 0, "0s"),
        ("0s", 0, "0s"),
        ("1ns", 1, "1ns"),
        ("1us", 1_000, "1µs"),
        ("1\u{B5}s", 1_000, "1µs"),
        ("1\u{3BC}s", 1_000, "1µs"),
        ("1.5us", 1_500, "1.5µs"),
        ("100ms", 100_000_000, "100ms"),
        ("1.25ms", 1_250_000, "1.25ms"),
        ("10s", 10_000_000_000, "10s"),
        ("+10s", 10_000_000_000, "10s"),
        ("1.000000001s", 1_000_000_001, "1.000000001s"),
        (".5s", 500_000_000, "500ms"),
        ("1.s", 1_000_000_000, "1s"),
        ("5m", 300_000_000_000, "5m0s"),
        ("90s", 90_000_000_000, "1m30s"),
        ("1h", 3_600_000_000_000, "1h0m0s"),
        ("1h30m", 5_400_000_000_000, "1h30m0s"),
        ("1.5h", 5_400_000_000_000, "1h30m0s"),
        ("2h45m30.5s", 9_930_500_000_000, "2h45m30.5s"),
        ("1h1m1s1ms1us1ns", 3_661_001_001_001, "1h1m1.001001001s"),
        ("1d", 86_400_000_000_000, "24h0m0s"),
        ("365d", 31_536_000_000_000_000, "8760h0m0s"),
        ("-1.5h", -5_400_000_000_000, "-1h30m0s"),
        ("-100ms", -100_000_000, "-100ms"),
        ("0.1ns", 0, "0s"),
        ("0.3333333333333333333333333h", 1_199_999_999_999, "19m59.999999999s"),
        ("9223372036854775807ns", .max, "2562047h47m16.854775807s"),
        ("-9223372036854775808ns", .min, "-2562047h47m16.854775808s"),
        ("2562047h47m16.854775807s", .max, "2562047h47m16.854775807s"),
    ])
    func parsesGoDurations(string: String, nanoseconds: Int64, description: String) throws {
        let duration = try GoDuration(parsing: string)
        #expect(duration.nanoseconds == nanoseconds)
        #expect(duration.description == description)
        #expect(try GoDuration(parsing: duration.description) == duration)
    }

    @Test(arguments: [
        ("", "it is empty"),
        ("-", "it has no number"),
        ("10", "the number 10 has no unit; expected one of ns, us, µs, ms, s, m, h, d"),
        ("1h30", "the number 30 has no unit"),
        ("1.5", "the number 1.5 has no unit"),
        ("10x", #"unknown unit "x"; expected one of ns, us, µs, ms, s, m, h, d"#),
        ("10 s", #"unknown unit " s""#),
        ("10S", #"unknown unit "S""#),
        ("1e3s", #"unknown unit "e""#),
        ("10sec", #"unknown unit "sec""#),
        ("s", #"expected a number at "s""#),
        (".s", #"expected a number at ".s""#),
        ("--1s", #"expected a number at "-1s""#),
        (" 1s", #"expected a number at " 1s""#),
        ("9223372036854775808ns", "it is outside the range of a 64-bit count of nanoseconds"),
        ("-9223372036854775809ns", "-2562047h47m16.854775808s to 2562047h47m16.854775807s"),
        ("106752d", "it is outside the range"),
        ("99999999999999999999s", "it is outside the range"),
        ("2562047h47m16.854775808s", "it is outside the range"),
        ("9223372036s1s", "it is outside the range"),
    ])
    func rejectsMalformedDurations(string: String, reason: String) {
        expectParseError(string, expected: "duration", reason: reason) {
            try GoDuration(parsing: string)
        }
    }

    @Test(arguments: [
        (Duration.seconds(1.5), Int64(1_500_000_000)),
        (.nanoseconds(-5), -5),
        (.milliseconds(-1500), -1_500_000_000),
        (.nanoseconds(1) / 2, 0),
        (.seconds(-1) - .nanoseconds(1) / 2, -1_000_000_000),
        (.seconds(Int64.max), .max),
        (.seconds(Int64.min), .min),
        (.zero, 0),
    ])
    func convertsFromSwiftDurations(duration: Duration, nanoseconds: Int64) {
        #expect(GoDuration(duration).nanoseconds == nanoseconds)
    }

    @Test func convertsToSwiftDurations() throws {
        #expect(try GoDuration(parsing: "1h30m").duration == .seconds(5400))
        #expect(try GoDuration(parsing: "-1ns").duration == .nanoseconds(-1))
        #expect(GoDuration(nanoseconds: .max).duration == .nanoseconds(Int64.max))
        #expect(GoDuration(GoDuration(nanoseconds: 123_456_789).duration).nanoseconds == 123_456_789)
    }

    @Test func sampledDurationsRoundTripThroughTheirDescription() throws {
        var generator = SeededRandom(seed: 42)
        for _ in 0..<2_000 {
            let shift = Int.random(in: 0...62, using: &generator)
            let magnitude = Int64.random(in: 0...Int64.max, using: &generator) >> shift
            let duration = GoDuration(nanoseconds: Bool.random(using: &generator) ? magnitude : -magnitude)
            #expect(try GoDuration(parsing: duration.description) == duration, "\(duration)")
        }
    }

    @Test func ordersByLength() throws {
        let durations = try ["1h", "-1s", "0", "100ms"].map { try GoDuration(parsing: $0) }
        #expect(durations.sorted().map(\.description) == ["-1s", "0s", "100ms", "1h0m0s"])
        #expect(GoDuration.zero == GoDuration(nanoseconds: 0))
    }

    @Test func codesAsItsString() throws {
        let duration = try GoDuration(parsing: "90s")
        let data = try JSONEncoder().encode([duration])
        #expect(String(decoding: data, as: UTF8.self) == #"["1m30s"]"#)
        #expect(try JSONDecoder().decode([GoDuration].self, from: data) == [duration])
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode([GoDuration].self, from: Data(#"["10"]"#.utf8))
        }
    }
}
