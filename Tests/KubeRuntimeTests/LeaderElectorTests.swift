import Foundation
import KubeClient
import KubeModel
import KubeTestServer
import LinkerdTestSupport
import Synchronization
import Testing

@testable import KubeRuntime

@Suite("Leader election")
struct LeaderElectorTests {
    private func elector(_ identity: String, _ client: KubeClient, _ clock: ManualClock) -> LeaderElector {
        LeaderElector(
            api: client,
            configuration: .init(
                leaseName: "linkerd-controller", namespace: "kube-system", identity: identity,
                leaseDuration: .seconds(15), renewDeadline: .seconds(10), retryPeriod: .seconds(2)),
            clock: clock)
    }

    /// Runs an elector whose leadership work just waits, recording how often it started.
    private func campaign(_ elector: LeaderElector, terms: Locked<Int>) -> Task<Void, any Error> {
        Task {
            try await elector.run {
                terms.withLock { $0 += 1 }
                while !Task.isCancelled { try? await Task.sleep(for: .seconds(3600)) }
            }
        }
    }

    /// Moves the clock one second and waits until every campaigning elector is parked on it again.
    private func tick(_ clock: ManualClock, sleepers: Int) async throws {
        clock.advance(by: .seconds(1))
        try await clock.waitForSleepers(atLeast: sleepers)
    }

    @Test("two candidates: exactly one leads; the other takes over within the lease duration after it stops")
    func handOver() async throws {
        try await withCluster { server, client in
            let clock = ManualClock()
            let first = elector("candidate-a", client, clock)
            let second = elector("candidate-b", client, clock)
            let firstTerms = Locked(0)
            let secondTerms = Locked(0)
            let firstTask = campaign(first, terms: firstTerms)
            let secondTask = campaign(second, terms: secondTerms)
            try await clock.waitForSleepers(atLeast: 2)

            for _ in 0..<40 {
                #expect(!(first.isLeader && second.isLeader), "two leaders at once")
                #expect(first.isLeader || second.isLeader, "nobody leads")
                try await tick(clock, sleepers: 2)
            }
            let (leader, leaderTask, follower) =
                first.isLeader ? (first, firstTask, second) : (second, secondTask, first)
            #expect(firstTerms.withLock { $0 } + secondTerms.withLock { $0 } == 1, "leadership must not flap")
            let lease = try await client.get(Lease.self, namespace: "kube-system", name: "linkerd-controller")
            #expect(lease.spec?.holderIdentity == leader.configuration.identity)

            leaderTask.cancel()
            _ = await leaderTask.result
            #expect(!leader.isLeader)
            let released = try await client.get(Lease.self, namespace: "kube-system", name: "linkerd-controller")
            #expect(released.spec?.holderIdentity == nil, "a stopping leader releases the lease")

            var waited = 0
            while !follower.isLeader {
                try await tick(clock, sleepers: 1)
                waited += 1
                #expect(waited <= 15, "the follower must take over within the lease duration")
                if waited > 15 { break }
            }
            #expect(follower.isLeader)
            let taken = try await client.get(Lease.self, namespace: "kube-system", name: "linkerd-controller")
            #expect(taken.spec?.holderIdentity == follower.configuration.identity)
            #expect(taken.spec?.leaseTransitions == 1, "a change of holder counts as a transition, as in client-go")
            (first.isLeader ? firstTask : secondTask).cancel()
            _ = await firstTask.result
            _ = await secondTask.result
            _ = server
        }
    }

    @Test("a lease held by a holder that stopped renewing is taken over only after the lease duration")
    func expiredHolder() async throws {
        try await withCluster { server, client in
            let clock = ManualClock()
            try server.put(
                Lease(
                    metadata: ObjectMeta(name: "linkerd-controller", namespace: "kube-system"),
                    spec: .init(
                        holderIdentity: "crashed-pod", leaseDurationSeconds: 15,
                        acquireTime: KubeTime.formatMicro(clock.now()), renewTime: KubeTime.formatMicro(clock.now()),
                        leaseTransitions: 4)))
            let candidate = elector("candidate-a", client, clock)
            let terms = Locked(0)
            let task = campaign(candidate, terms: terms)
            try await clock.waitForSleepers(atLeast: 1)
            var waited = 0
            while !candidate.isLeader, waited < 30 {
                try await tick(clock, sleepers: 1)
                waited += 1
            }
            #expect(candidate.isLeader)
            #expect((15...17).contains(waited), "took over after \(waited)s; the lease lasts 15s")
            let lease = try await client.get(Lease.self, namespace: "kube-system", name: "linkerd-controller")
            #expect(lease.spec?.holderIdentity == "candidate-a")
            #expect(lease.spec?.leaseTransitions == 5)
            task.cancel()
            _ = await task.result
        }
    }

    @Test("a leader that cannot renew stops leading before the lease could expire for others")
    func losesLeadershipWhenRenewalFails() async throws {
        try await withCluster { server, client in
            let clock = ManualClock()
            let candidate = elector("candidate-a", client, clock)
            let terms = Locked(0)
            let task = campaign(candidate, terms: terms)
            try await clock.waitForSleepers(atLeast: 1)
            #expect(candidate.isLeader)
            server.injectFault(
                .status(code: 503, reason: "ServiceUnavailable", message: "down"),
                pathPrefix: "/apis/coordination.k8s.io",
                count: 1000)
            var waited = 0
            while candidate.isLeader, waited < 20 {
                try await tick(clock, sleepers: 1)
                waited += 1
            }
            #expect(!candidate.isLeader)
            #expect(waited >= 10 && waited < 15, "stepped down after \(waited)s: renewDeadline is 10s, lease 15s")
            task.cancel()
            _ = await task.result
        }
    }
}

@Suite("Leader-elected controllers")
struct LeaderElectedControllerTests {
    @Test("of two controllers contending for one Lease only the leader reconciles; the other takes over when it stops")
    func onlyTheLeaderReconciles() async throws {
        try await withCluster { server, client in
            try server.put(makeNamespace("app"))
            for name in ["a", "b", "c"] { try server.put(makePod("app", name)) }
            let clock = ManualClock()
            let reconciled = Locked<[String: Set<String>]>([:])

            func replica(_ identity: String) -> (LeaderElector, Reflector<Pod>, LeaderElectedServices) {
                let reflector = Reflector(watcher: Watcher<Pod>(api: client, clock: clock))
                let controller = Controller(name: "pods-\(identity)", reflector: reflector, clock: clock) { key in
                    reconciled.withLock { _ = $0[identity, default: []].insert(key.name) }
                    return .done
                }
                let elector = LeaderElector(
                    api: client,
                    configuration: .init(leaseName: "pods-controller", namespace: "kube-system", identity: identity),
                    clock: clock)
                return (elector, reflector, LeaderElectedServices(elector: elector, services: [controller]))
            }
            let (firstElector, firstReflector, firstServices) = replica("first")
            let (secondElector, secondReflector, secondServices) = replica("second")

            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await firstReflector.run() }
                group.addTask { try await secondReflector.run() }
                let firstTask = Task { try await firstServices.run() }
                try await eventually("the first replica to lead and reconcile every pod") {
                    firstElector.isLeader && reconciled.value["first"] == ["a", "b", "c"]
                }
                let secondTask = Task { try await secondServices.run() }
                for _ in 0..<10 {
                    clock.advance(by: .seconds(1))
                    try await Task.sleep(for: .milliseconds(10))
                    #expect(!secondElector.isLeader)
                }
                #expect(reconciled.value["second"] == nil, "a follower must not reconcile")

                firstTask.cancel()
                try await firstTask.value
                try await eventually("the second replica to take over and reconcile every pod") {
                    clock.advance(by: .seconds(1))
                    return secondElector.isLeader && reconciled.value["second"] == ["a", "b", "c"]
                }
                #expect(!firstElector.isLeader)
                secondTask.cancel()
                try await secondTask.value
                group.cancelAll()
            }
        }
    }
}
