import Foundation
import KubeClient
import KubeModel
import KubeTestServer
import LinkerdTestSupport
import Prometheus
import Synchronization
import Testing

@testable import KubeRuntime

@Suite("Controller")
struct ControllerTests {
    private struct Record {
        var calls: [ObjectKey: Int] = [:]
        var inFlight: Set<ObjectKey> = []
        var overlaps = 0
    }

    @Test("reconciles every object, one call per key at a time, backs off failures and obeys requeue")
    func reconcileLoop() async throws {
        try await withCluster { server, client in
            try server.put(makeNamespace("app"))
            for name in ["ok-1", "ok-2", "flaky", "poll"] { try server.put(makePod("app", name)) }
            let clock = ManualClock()
            let registry = PrometheusCollectorRegistry()
            let metrics = PrometheusMetricsFactory(registry: registry)
            let reflector = Reflector(watcher: Watcher<Pod>(api: client, clock: clock))
            let record = Locked(Record())
            let controller = Controller(
                name: "pods", reflector: reflector, workers: 3, clock: clock,
                queueConfiguration: .init(baseRetryDelay: .seconds(1), maximumRetryDelay: .seconds(60)),
                metricsFactory: metrics
            ) { key in
                let call = record.withLock { record in
                    if !record.inFlight.insert(key).inserted { record.overlaps += 1 }
                    record.calls[key, default: 0] += 1
                    return record.calls[key]!
                }
                try await Task.sleep(for: .milliseconds(2))
                record.withLock { _ = $0.inFlight.remove(key) }
                switch key.name {
                case "flaky" where call <= 3:
                    throw KubeError(code: .conflict, message: "try again")
                case "poll" where call == 1:
                    return .requeue(after: .seconds(30))
                default:
                    return .done
                }
            }
            func calls(_ name: String) -> Int {
                record.withLock { $0.calls[ObjectKey(namespace: "app", name: name)] ?? 0 }
            }

            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await reflector.run() }
                group.addTask { try await controller.run() }
                try await eventually("every pod reconciled once") {
                    ["ok-1", "ok-2", "flaky", "poll"].allSatisfy { calls($0) >= 1 }
                }
                // flaky fails three times, each retry 1s, 2s, then 4s after the failure (2^(failures-1) s). The
                // delays are read from the queue rather than counted from the test's start: a watch event may
                // reconcile the key once more at the start (level-based), which shifts the sequence by one.
                let flaky = ObjectKey(namespace: "app", name: "flaky")
                while calls("flaky") < 4 {
                    var deadline: Date?
                    try await eventually("flaky waiting for its retry") {
                        deadline = controller.queue.deadline(of: flaky)
                        return deadline != nil || calls("flaky") >= 4
                    }
                    guard let deadline else { break }
                    let failures = controller.queue.failures(of: flaky)
                    let delay = deadline.timeIntervalSince(clock.now())
                    #expect(abs(delay - Double(1 << (failures - 1))) < 0.05, "backoff after \(failures) failures")
                    let before = calls("flaky")
                    clock.advance(by: .milliseconds(Int64(delay * 1000) - 10))
                    try await Task.sleep(for: .milliseconds(30))
                    #expect(calls("flaky") == before, "no retry before \(delay)s")
                    // Past the deadline by a margin: two clock steps need not add up exactly in floating point.
                    clock.advance(by: .milliseconds(20))
                    try await eventually("flaky retried after \(delay)s") { calls("flaky") == before + 1 }
                }
                #expect(calls("flaky") == 4)
                try await eventually("flaky's failures forgotten after it succeeded") {
                    controller.queue.failures(of: ObjectKey(namespace: "app", name: "flaky")) == 0
                }

                clock.advance(by: .seconds(30))
                try await eventually("poll requeued after 30s") { calls("poll") == 2 }

                // A change seen by the watch enqueues the key again.
                var changed = makePod("app", "ok-1", labels: ["touched": "yes"])
                changed.metadata.resourceVersion = nil
                try server.put(changed)
                try await eventually("ok-1 reconciled after its change") { calls("ok-1") == 2 }
                group.cancelAll()
            }
            #expect(record.withLock { $0.overlaps } == 0, "a key was reconciled twice at once")

            var buffer: [UInt8] = []
            registry.emit(into: &buffer)
            let exposition = String(decoding: buffer, as: UTF8.self)
            #expect(
                exposition.contains(#"controller_runtime_reconcile_errors_total{controller="pods"} 3"#), "\(exposition)"
            )
            #expect(
                exposition.contains(#"controller_runtime_reconcile_total{controller="pods",result="requeue_after"} 1"#))
            #expect(exposition.contains(#"workqueue_retries_total{name="pods"} 3"#))
            #expect(exposition.contains("controller_runtime_reconcile_time_seconds"))
            #expect(exposition.contains(#"workqueue_depth{name="pods"}"#))
        }
    }
}
