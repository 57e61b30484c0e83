import LinkerdProxyCore
import LinkerdTestSupport
import Testing

@Suite("P2C balancer over Peak-EWMA")
struct P2CBalancerTests {
    private static let now: UInt64 = 7_000_000_000

    private func balancer(_ keys: [String]) -> P2CBalancer<String> {
        var balancer = P2CBalancer<String>()
        balancer.replaceEndpoints(with: keys, now: Self.now)
        return balancer
    }

    /// How often each key is picked in `rounds` picks; the picks are not counted as requests, so the loads stay
    /// as the test set them up.
    private func tally(
        _ balancer: P2CBalancer<String>, rounds: Int = 10_000, seed: UInt64 = 42
    ) -> [String: Int] {
        var random = SeededRandom(seed: seed)
        var counts: [String: Int] = [:]
        for _ in 0..<rounds {
            if let key = balancer.pick(now: Self.now, using: &random) {
                counts[key, default: 0] += 1
            }
        }
        return counts
    }

    @Test("no endpoint, or none ready: no pick")
    func nothingReady() {
        var random = SeededRandom(seed: 1)
        var balancer = P2CBalancer<String>()
        #expect(balancer.pick(now: Self.now, using: &random) == nil)
        balancer = self.balancer(["a", "b"])
        balancer.setReady("a", false)
        balancer.setReady("b", false)
        #expect(balancer.readyCount == 0)
        #expect(balancer.count == 2)
        #expect(balancer.pick(now: Self.now, using: &random) == nil)
    }

    @Test("the only ready endpoint is always picked, however loaded", arguments: ["a", "b", "c", "d"])
    func onlyReady(survivor: String) {
        var balancer = balancer(["a", "b", "c", "d"])
        for key in ["a", "b", "c", "d"] where key != survivor {
            balancer.setReady(key, false)
        }
        for _ in 0..<50 { balancer.requestStarted(survivor) }
        #expect(tally(balancer, rounds: 1_000) == [survivor: 1_000])
    }

    @Test("an unready endpoint is never picked, even when it is the least loaded")
    func neverUnready() {
        var balancer = balancer(["a", "b", "c", "d", "e"])
        for key in ["a", "b", "c"] {
            for _ in 0..<5 { balancer.requestStarted(key) }
        }
        balancer.setReady("d", false)
        balancer.setReady("e", false)
        let counts = tally(balancer)
        #expect(counts["d"] == nil)
        #expect(counts["e"] == nil)
        #expect(counts.values.reduce(0, +) == 10_000)
    }

    @Test(
        "with two ready endpoints the pair is always distinct, so the lower load always wins",
        arguments: [("a", "b"), ("b", "a")])
    func distinctPair(loaded: String, idle: String) {
        var balancer = balancer(["a", "b"])
        balancer.requestStarted(loaded)
        #expect(tally(balancer, rounds: 2_000, seed: 7) == [idle: 2_000])
    }

    @Test("a loaded endpoint is chosen far less often than idle ones; pairs are uniform")
    func loadAware() throws {
        // Pairs of {a: idle, b: 1 pending, c: 10 pending} drawn uniformly: (a,b)→a, (a,c)→a, (b,c)→b.
        var balancer = balancer(["a", "b", "c"])
        balancer.requestStarted("b")
        for _ in 0..<10 { balancer.requestStarted("c") }
        let counts = tally(balancer)
        #expect(counts["c"] == nil)
        let a = Double(try #require(counts["a"])) / 10_000
        let b = Double(try #require(counts["b"])) / 10_000
        #expect(abs(a - 2.0 / 3) < 0.03)
        #expect(abs(b - 1.0 / 3) < 0.03)
    }

    @Test("a slow endpoint loses traffic to fast ones of the same pending count")
    func latencyAware() {
        var balancer = balancer(["fast1", "fast2", "slow"])
        balancer.requestStarted("slow")
        balancer.requestFinished("slow", rtt: .milliseconds(900), now: Self.now)
        let counts = tally(balancer)
        #expect(counts["slow"] == nil)
        #expect((counts["fast1"] ?? 0) + (counts["fast2"] ?? 0) == 10_000)
    }

    @Test("equally loaded endpoints share picks evenly (ties go to the first drawn, which is uniform)")
    func evenSpread() {
        let keys = ["a", "b", "c", "d"]
        let counts = tally(balancer(keys), rounds: 20_000)
        for key in keys {
            #expect(abs(Double(counts[key] ?? 0) / 20_000 - 0.25) < 0.02, "\(key): \(counts[key] ?? 0)")
        }
    }

    @Test("the load is the Peak-EWMA load of the endpoint's pending count")
    func loadOfKey() {
        var balancer = balancer(["a"])
        let fresh = PeakEWMA(now: Self.now)
        #expect(balancer.load(of: "a", now: Self.now) == fresh.load(pending: 0, now: Self.now))
        balancer.requestStarted("a")
        balancer.requestStarted("a")
        #expect(balancer.load(of: "a", now: Self.now + 1_000) == fresh.load(pending: 2, now: Self.now + 1_000))
        #expect(balancer.load(of: "zz", now: Self.now) == nil)
    }

    @Test("a finished request lowers pending (not below 0) and records its RTT sample")
    func requestFinished() {
        var balancer = balancer(["a"])
        balancer.requestStarted("a")
        balancer.requestFinished("a", rtt: .milliseconds(500), now: Self.now)
        #expect(balancer.load(of: "a", now: Self.now) == 500e6)
        balancer.requestFinished("a", rtt: nil, now: Self.now)
        #expect(balancer.load(of: "a", now: Self.now) == 500e6, "pending stays at 0")
        balancer.requestStarted("a")
        #expect(balancer.load(of: "a", now: Self.now) == 1_000e6)
        balancer.requestFinished("gone", rtt: .seconds(1), now: Self.now)
        balancer.requestStarted("gone")
        #expect(balancer.count == 1)
    }

    @Test("the balancer's default RTT and decay apply to new endpoints")
    func configuredEWMA() {
        var balancer = P2CBalancer<Int>(defaultRTT: .milliseconds(5), decay: .seconds(1))
        balancer.insert(1, now: Self.now)
        let expected = PeakEWMA(defaultRTT: .milliseconds(5), decay: .seconds(1), now: Self.now)
        #expect(balancer.load(of: 1, now: Self.now + 300_000_000) == expected.estimate(now: Self.now + 300_000_000))
    }

    @Test("replacing the set keeps the statistics and readiness of endpoints that stay")
    func replaceKeepsStats() {
        var balancer = balancer(["a", "b", "c"])
        balancer.requestStarted("a")
        balancer.requestStarted("a")
        balancer.requestFinished("a", rtt: .milliseconds(200), now: Self.now)
        balancer.setReady("c", false)
        let later = Self.now + 3_000_000_000
        let loadOfA = balancer.load(of: "a", now: later)

        balancer.replaceEndpoints(with: ["c", "a", "d", "a"], now: later)

        #expect(balancer.count == 3)
        #expect(!balancer.contains("b"))
        #expect(balancer.load(of: "b", now: later) == nil)
        #expect(balancer.load(of: "a", now: later) == loadOfA)
        #expect(balancer.isReady("c") == false)
        #expect(balancer.isReady("d") == true)
        #expect(balancer.load(of: "d", now: later) == PeakEWMA(now: later).load(pending: 0, now: later))
        #expect(balancer.readyCount == 2)
    }

    @Test("insert adds a ready endpoint once; remove drops it; readiness toggles idempotently")
    func insertRemoveReady() {
        var balancer = P2CBalancer<String>()
        #expect(balancer.insert("a", now: Self.now) == true)
        balancer.requestStarted("a")
        #expect(balancer.insert("a", now: Self.now) == false, "a second insert keeps the entry")
        #expect(balancer.load(of: "a", now: Self.now) == PeakEWMA(now: Self.now).load(pending: 1, now: Self.now))
        #expect(balancer.insert("b", now: Self.now) == true)
        #expect(balancer.readyCount == 2)
        balancer.setReady("a", false)
        balancer.setReady("a", false)
        #expect(balancer.readyCount == 1)
        #expect(balancer.isReady("a") == false)
        balancer.setReady("a", true)
        balancer.setReady("a", true)
        #expect(balancer.readyCount == 2)
        balancer.setReady("zz", true)
        #expect(balancer.readyCount == 2)
        #expect(balancer.isReady("zz") == nil)
        #expect(balancer.remove("a") == true)
        #expect(balancer.remove("a") == false)
        #expect(balancer.count == 1)
        #expect(balancer.readyCount == 1)
        #expect(!balancer.contains("a"))
    }

    @Test("random inserts, removals, resets and readiness changes agree with a plain model", arguments: [1, 2, 3])
    func modelCheck(seed: UInt64) {
        var random = SeededRandom(seed: seed)
        var balancer = P2CBalancer<Int>()
        var model: [Int: (ready: Bool, pending: Int)] = [:]
        for step in 0..<3_000 {
            let key = Int.random(in: 0..<12, using: &random)
            switch Int.random(in: 0..<6, using: &random) {
            case 0:
                #expect(balancer.insert(key, now: Self.now) == (model[key] == nil))
                if model[key] == nil { model[key] = (true, 0) }
            case 1:
                #expect(balancer.remove(key) == (model[key] != nil))
                model[key] = nil
            case 2:
                let ready = Bool.random(using: &random)
                balancer.setReady(key, ready)
                model[key]?.ready = ready
            case 3:
                balancer.requestStarted(key)
                model[key]?.pending += 1
            case 4:
                let size = Int.random(in: 0..<8, using: &random)
                let keys = (0..<size).map { _ in Int.random(in: 0..<12, using: &random) }
                balancer.replaceEndpoints(with: keys, now: Self.now)
                model = model.filter { keys.contains($0.key) }
                for newKey in keys where model[newKey] == nil { model[newKey] = (true, 0) }
            default:
                if let picked = balancer.pick(now: Self.now, using: &random) {
                    #expect(model[picked]?.ready == true, "step \(step): picked \(picked), not ready")
                } else {
                    #expect(!model.values.contains { $0.ready }, "step \(step): nothing picked")
                }
            }
            #expect(balancer.count == model.count)
            #expect(balancer.readyCount == model.values.filter(\.ready).count)
            for candidate in 0..<12 {
                #expect(balancer.isReady(candidate) == model[candidate]?.ready)
                let expectedLoad = model[candidate].map { Double($0.pending + 1) * 30e6 }
                #expect(balancer.load(of: candidate, now: Self.now) == expectedLoad)
            }
        }
    }
}
