import Foundation
import LinkerdProxyCore
import Testing

@Suite("The identity refresh schedule")
struct IdentityRefreshScheduleTests {
    static let now = Date(timeIntervalSince1970: 1_700_000_000)

    @Test(
        "After a certificate: 70% of the time left, clamped to [10s, 24h]",
        arguments: [
            // (seconds until expiry, expected delay in seconds)
            (100.0, 70.0),
            (24 * 3600.0, 0.7 * 24 * 3600),
            (1000.0, 700.0),
            (14.0, 10.0),  // 9.8 s is under the minimum
            (100.0 / 7.0, 10.0),  // exactly the minimum
            (5.0, 10.0),
            (0.0, 10.0),  // expiring now
            (-60.0, 10.0),  // expired
            (40 * 3600.0, 24 * 3600.0),  // 28 h is over the maximum
            (1e12, 24 * 3600.0),  // far future: no overflow
        ] as [(Double, Double)])
    func delayAfterCertificate(secondsLeft: Double, expected: Double) {
        let delay = IdentityRefreshSchedule.standard.refreshDelay(
            expiry: Self.now.addingTimeInterval(secondsLeft), now: Self.now)
        #expect(abs(seconds(delay) - expected) < 1e-6, "\(secondsLeft) s left gave \(delay)")
    }

    @Test("Without a certificate the next try is after the minimum refresh")
    func delayWithoutCertificate() throws {
        #expect(IdentityRefreshSchedule.standard.refreshDelay(expiry: nil, now: Self.now) == .seconds(10))
        let custom = try IdentityRefreshSchedule(minimumRefresh: .seconds(3), maximumRefresh: .seconds(60))
        #expect(custom.refreshDelay(expiry: nil, now: Self.now) == .seconds(3))
        #expect(custom.refreshDelay(expiry: Self.now + 1000, now: Self.now) == .seconds(60))
        #expect(custom.refreshDelay(expiry: Self.now + 2, now: Self.now) == .seconds(3))
        #expect(abs(seconds(custom.refreshDelay(expiry: Self.now + 50, now: Self.now)) - 35) < 1e-6)
    }

    @Test("Failures keep the previous expiry: 70% of what remains, then the minimum once it has passed")
    func failuresKeepExpiry() {
        var state = IdentityRefreshState()
        // Never certified: retry after 10 s, however often it fails.
        #expect(state.failed(now: Self.now) == .seconds(10))
        #expect(state.failed(now: Self.now + 10) == .seconds(10))
        #expect(state.expiry == nil)

        let expiry = Self.now + 24 * 3600
        #expect(abs(seconds(state.certified(validUntil: expiry, now: Self.now)) - 0.7 * 24 * 3600) < 1e-6)
        #expect(state.expiry == expiry)
        // A failure 16.8 h later: 7.2 h remain, retry in 70% of that.
        let later = Self.now + 0.7 * 24 * 3600
        #expect(abs(seconds(state.failed(now: later)) - 0.7 * 0.3 * 24 * 3600) < 1e-6)
        #expect(state.expiry == expiry)
        // After the certificate expired: the minimum.
        #expect(state.failed(now: expiry + 1) == .seconds(10))

        // A new certificate replaces the expiry.
        #expect(abs(seconds(state.certified(validUntil: expiry + 3600, now: expiry)) - 0.7 * 3600) < 1e-6)
        #expect(state.expiry == expiry + 3600)
    }

    @Test(
        "Bounds must be positive and ordered",
        arguments: [
            (Duration.zero, Duration.seconds(10), "the minimum refresh 0.0 seconds is not positive"),
            (.seconds(-1), .seconds(10), "the minimum refresh -1.0 seconds is not positive"),
            (
                .seconds(30), .seconds(10),
                "the minimum refresh 30.0 seconds is greater than the maximum refresh 10.0 seconds"
            ),
        ] as [(Duration, Duration, String)])
    func invalidBounds(minimum: Duration, maximum: Duration, reason: String) {
        #expect {
            try IdentityRefreshSchedule(minimumRefresh: minimum, maximumRefresh: maximum)
        } throws: { error in
            (error as? IdentityRefreshSchedule.InvalidBounds)?.description
                == "invalid identity refresh bounds: \(reason)"
        }
    }

    @Test("Equal bounds make a fixed period")
    func equalBounds() throws {
        let fixed = try IdentityRefreshSchedule(minimumRefresh: .seconds(30), maximumRefresh: .seconds(30))
        for secondsLeft in [-5.0, 1, 100, 1e6] {
            #expect(fixed.refreshDelay(expiry: Self.now + secondsLeft, now: Self.now) == .seconds(30))
        }
    }

    private func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
