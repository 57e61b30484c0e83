import KubeClient
import KubeModel
import KubeTestServer
import LinkerdTestSupport
import Synchronization
import Testing

@testable import KubeRuntime

@Suite("Reflector against the API test server")
struct ReflectorTests {
    /// The store holds exactly the server's pods, at the server's resourceVersions.
    private func converged(_ store: Store<Pod>, _ server: KubeTestServer) -> Bool {
        let expected = Dictionary(
            uniqueKeysWithValues: server.objects(.pods).map { object in
                (
                    ObjectKey(
                        namespace: object.value(atPath: "metadata.namespace")?.stringValue,
                        name: object.value(atPath: "metadata.name")?.stringValue ?? ""),
                    object.value(atPath: "metadata.resourceVersion")?.stringValue
                )
            })
        let actual = Dictionary(
            uniqueKeysWithValues: store.keys.map { ($0, store.get($0)?.metadata.resourceVersion) })
        return expected == actual
    }

    @Test("the store converges through dropped connections, a forced 410 and a stalled watch")
    func convergesThroughFailures() async throws {
        try await withCluster(watchIdleTimeout: .milliseconds(400)) { server, client in
            try server.put(makeNamespace("app"))
            for index in 0..<3 { try server.put(makePod("app", "pod-\(index)")) }
            let clock = ManualClock()
            let watcher = Watcher<Pod>(
                api: client, clock: clock,
                configuration: .init(pageSize: 2, backoff: Backoff(initial: .milliseconds(100), jitter: 0)))
            let reflector = Reflector(watcher: watcher)
            let deleted = Locked<[String]>([])
            reflector.onChange { change in
                if change.new == nil { deleted.withLock { $0.append(change.key.description) } }
            }
            /// Polls for convergence, moving the manual clock so backoff waits pass.
            func expectConvergence(_ what: String) async throws {
                try await eventually(what) {
                    clock.advance(by: .milliseconds(50))
                    return converged(reflector.store, server)
                }
            }

            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await reflector.run() }
                try await expectConvergence("initial list of 3 pods (2 pages)")
                #expect(reflector.store.count == 3)

                server.dropWatchConnections()
                try server.put(makePod("app", "pod-3"))
                server.remove(.pods, namespace: "app", name: "pod-0")
                try await expectConvergence("convergence after a dropped watch connection")

                server.expireWatches()
                try server.put(makePod("app", "pod-4"))
                server.remove(.pods, namespace: "app", name: "pod-1")
                try await expectConvergence("convergence after a forced 410 Gone and re-list")
                #expect(deleted.withLock { $0 }.sorted() == ["app/pod-0", "app/pod-1"])

                let watchesBefore = server.requestLog.filter { $0.query["watch"] == "true" }.count
                server.stallWatches()
                try server.put(makePod("app", "pod-5"))
                try await eventually("the stalled watch to be abandoned and re-opened") {
                    clock.advance(by: .milliseconds(50))
                    return server.requestLog.filter { $0.query["watch"] == "true" }.count > watchesBefore
                }
                server.resumeWatches()
                try await expectConvergence("convergence after a stalled watch")
                #expect(reflector.store.get(ObjectKey(namespace: "app", name: "pod-5")) != nil)
                group.cancelAll()
            }
        }
    }

    @Test("a server answering garbage or errors is retried with backoff, never a silent stop")
    func garbageAndErrors() async throws {
        try await withCluster { server, client in
            try server.put(makeNamespace("app"))
            try server.put(makePod("app", "a"))
            server.injectFault(.garbageBody, method: "GET", pathPrefix: "/api/v1/pods", count: 1)
            server.injectFault(
                .status(code: 500, reason: "InternalError", message: "etcd is sad"), method: "GET",
                pathPrefix: "/api/v1/pods", count: 1)
            let clock = ManualClock()
            let reflector = Reflector(
                watcher: Watcher<Pod>(
                    api: client, clock: clock, configuration: .init(backoff: Backoff(initial: .seconds(1), jitter: 0))))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await reflector.run() }
                try await clock.waitForSleepers(atLeast: 1)
                #expect(reflector.store.hasSynced == false)
                clock.advance(by: .seconds(1))
                try await clock.waitForSleepers(atLeast: 1)
                #expect(reflector.store.hasSynced == false, "the 500 must be retried, after 2s this time")
                clock.advance(by: .seconds(2))
                try await eventually("the third list attempt to succeed") { reflector.store.hasSynced }
                #expect(reflector.store.count == 1)
                group.cancelAll()
            }
        }
    }
}
