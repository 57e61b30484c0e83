import LinkerdProxyCore
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

@Suite("Peak-EWMA RTT estimate")
struct PeakEWMATests {
    private static let start: UInt64 = 5_000_000_000
    private static let millisecond = 1e6
    private static let second: UInt64 = 1_000_000_000

    @Test("the estimate starts at the default RTT: 30 ms unless told otherwise")
    func startsAtDefault() {
        #expect(PeakEWMA(now: Self.start).estimate(now: Self.start) == 30 * Self.millisecond)
        #expect(PeakEWMA(defaultRTT: .milliseconds(250), now: Self.start).estimate(now: Self.start) == 250e6)
    }

    @Test(
        "a default RTT below 1 ms starts at 1 ms",
        arguments: [Duration.zero, .nanoseconds(-5), .microseconds(999), .nanoseconds(1)])
    func defaultFloor(defaultRTT: Duration) {
        let ewma = PeakEWMA(defaultRTT: defaultRTT, now: Self.start)
        #expect(ewma.estimate(now: Self.start) == Self.millisecond)
    }

    @Test(
        "a sample above the estimate replaces it at once, whatever the time elapsed",
        arguments: [UInt64(0), 1, 1_000_000_000, 30_000_000_000])
    func peakJump(elapsed: UInt64) {
        var ewma = PeakEWMA(defaultRTT: .milliseconds(30), now: Self.start)
        ewma.record(rtt: .milliseconds(400), now: Self.start + elapsed)
        #expect(ewma.estimate(now: Self.start + elapsed) == 400 * Self.millisecond)
    }

    @Test(
        "a lower sample pulls the estimate by 1 - exp(-elapsed/decay): est·w + rtt·(1−w)",
        arguments: [UInt64(0), 500_000_000, 2_000_000_000, 10_000_000_000, 60_000_000_000])
    func decayTowardsLowerSample(elapsed: UInt64) {
        var ewma = PeakEWMA(defaultRTT: .milliseconds(100), decay: .seconds(10), now: Self.start)
        ewma.record(rtt: .milliseconds(20), now: Self.start + elapsed)
        let weight = exp(-Double(elapsed) / 10e9)
        let expected = 100 * Self.millisecond * weight + 20 * Self.millisecond * (1 - weight)
        #expect(isClose(ewma.estimate(now: Self.start + elapsed), expected))
    }

    @Test("a lower sample at the same instant as the last update leaves the estimate unchanged")
    func noElapsedNoChange() {
        var ewma = PeakEWMA(defaultRTT: .milliseconds(100), now: Self.start)
        ewma.record(rtt: .milliseconds(1), now: Self.start)
        #expect(ewma.estimate(now: Self.start) == 100 * Self.millisecond)
    }

    @Test("the elapsed time of a sample counts from the last update, not from the start")
    func elapsedSinceLastUpdate() {
        var ewma = PeakEWMA(defaultRTT: .milliseconds(30), decay: .seconds(10), now: Self.start)
        ewma.record(rtt: .milliseconds(200), now: Self.start + 50 * Self.second)
        ewma.record(rtt: .milliseconds(50), now: Self.start + 53 * Self.second)
        let weight = exp(-0.3)
        let expected = 200 * Self.millisecond * weight + 50 * Self.millisecond * (1 - weight)
        #expect(isClose(ewma.estimate(now: Self.start + 53 * Self.second), expected))
    }

    @Test(
        "a read decays the estimate towards 0 by exp(-elapsed/decay), without storing the decay",
        arguments: [UInt64(1), 1_000_000_000, 10_000_000_000, 100_000_000_000])
    func readDecays(elapsed: UInt64) {
        let ewma = PeakEWMA(defaultRTT: .milliseconds(30), decay: .seconds(10), now: Self.start)
        let later = ewma.estimate(now: Self.start + elapsed)
        #expect(later < 30 * Self.millisecond)
        #expect(isClose(later, 30 * Self.millisecond * exp(-Double(elapsed) / 10e9)))
        #expect(ewma.estimate(now: Self.start) == 30 * Self.millisecond, "a read changes nothing")
    }

    @Test("a clock reading earlier than the last update counts as no time elapsed")
    func clockBehind() {
        var ewma = PeakEWMA(defaultRTT: .milliseconds(100), now: Self.start)
        #expect(ewma.estimate(now: Self.start - Self.second) == 100 * Self.millisecond)
        ewma.record(rtt: .milliseconds(10), now: Self.start - Self.second)
        #expect(ewma.estimate(now: Self.start) == 100 * Self.millisecond)
    }

    @Test("a negative sample counts as 0")
    func negativeSample() {
        var ewma = PeakEWMA(defaultRTT: .milliseconds(100), decay: .seconds(10), now: Self.start)
        ewma.record(rtt: .milliseconds(-50), now: Self.start + 10 * Self.second)
        #expect(isClose(ewma.estimate(now: Self.start + 10 * Self.second), 100 * Self.millisecond * exp(-1)))
    }

    @Test("the load is estimate × (pending + 1); negative pending counts as 0", arguments: [0, 1, 7, 100])
    func load(pending: Int) {
        let ewma = PeakEWMA(defaultRTT: .milliseconds(30), decay: .seconds(10), now: Self.start)
        let now = Self.start + 4 * Self.second
        #expect(ewma.load(pending: pending, now: now) == ewma.estimate(now: now) * Double(pending + 1))
        #expect(ewma.load(pending: -3, now: now) == ewma.estimate(now: now))
    }

    private func isClose(_ actual: Double, _ expected: Double) -> Bool {
        abs(actual - expected) <= 1e-9 * max(abs(expected), 1)
    }
}
