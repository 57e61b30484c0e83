import Foundation
import KubeClient
import KubeModel
import KubeTestServer
import LinkerdInject
import LinkerdTestSupport
import Prometheus
import Testing

@testable import LinkerdController

/// The mesh auditor against the loopback API server, through the real HTTPS client. The server runs no workload
/// controllers, so the tests create the Deployment → ReplicaSet → Pod chain themselves.
@Suite("MeshAuditor")
struct MeshAuditorTests {
    private static let enabled = [MeshKeys.inject: MeshKeys.injectEnabled]
    private static let autoRestart = [MeshKeys.autoRestart: "enabled"]

    private static func meshConfiguration(proxyVersion: String = "edge-2") -> MeshConfiguration {
        var configuration = MeshConfiguration.defaults
        configuration.proxyVersion = proxyVersion
        configuration.trustAnchorsPEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
        return configuration
    }

    /// A running auditor and what a test needs to drive and observe it.
    private struct Harness {
        let server: KubeTestServer
        let clock: ManualClock
        let registry: PrometheusCollectorRegistry
        let configuration: Locked<MeshConfiguration>
        let auditor: MeshAuditor

        /// Whether the auditor keeps gauges for `kind/owner` in `app`.
        func hasGauges(_ kind: String, _ owner: String) -> Bool {
            auditor.reconciler.gaugedGroups.contains(.init(namespace: "app", ownerKind: kind, owner: owner))
        }

        func namespace(
            _ name: String, annotations: [String: String] = [:], labels: [String: String] = [:]
        ) throws {
            try server.put(Namespace(metadata: ObjectMeta(name: name, labels: labels, annotations: annotations)))
        }

        /// A Deployment and its ReplicaSet `<name>-abc`; returns the ReplicaSet's owner reference for pods.
        ///
        /// - Parameters:
        ///   - restartedAt: the template's `kubectl.kubernetes.io/restartedAt`.
        ///   - manualProxy: whether the template holds the proxy, as `linkerd inject --manual` leaves it.
        func deployment(
            _ name: String, namespace: String = "app", annotations: [String: String] = [:],
            restartedAt: String? = nil, manualProxy: Bool = false
        ) throws -> OwnerReference {
            var containers = [Container(name: "app", image: "app:1")]
            if manualProxy { containers.append(Container(name: "linkerd-proxy", image: "cr.l5d.io/linkerd/proxy:1")) }
            let template = PodTemplateSpec(
                metadata: ObjectMeta(annotations: restartedAt.map { [RestartPolicy.restartedAtAnnotation: $0] }),
                spec: PodSpec(containers: containers))
            let deployment = try server.put(
                Deployment(
                    metadata: ObjectMeta(name: name, namespace: namespace, annotations: annotations),
                    spec: .init(replicas: 1, template: template)))
            let replicaSet = try server.put(
                ReplicaSet(
                    metadata: ObjectMeta(
                        name: "\(name)-abc", namespace: namespace,
                        ownerReferences: [reference(to: deployment.metadata, kind: "Deployment", apiVersion: "apps/v1")]
                    ),
                    spec: .init(replicas: 1, template: template)))
            return reference(to: replicaSet.metadata, kind: "ReplicaSet", apiVersion: "apps/v1")
        }

        func reference(to metadata: ObjectMeta, kind: String, apiVersion: String) -> OwnerReference {
            OwnerReference(
                apiVersion: apiVersion, kind: kind, name: metadata.name ?? "", uid: metadata.uid ?? "", controller: true
            )
        }

        /// A pod without the proxy, or with one injected with `proxyVersion` by `injectedBy` (the webhook unless
        /// told).
        @discardableResult
        func pod(
            _ name: String, namespace: String = "app", owner: OwnerReference? = nil, proxyVersion: String? = nil,
            injectedBy: String = "linkerd/proxy-injector", labels: [String: String] = [:]
        ) throws -> Pod {
            var containers = [Container(name: "app", image: "app:1")]
            var annotations: [String: String] = [:]
            if let proxyVersion {
                containers.append(Container(name: "linkerd-proxy", image: "cr.l5d.io/linkerd/proxy:\(proxyVersion)"))
                annotations[MeshKeys.proxyVersion] = proxyVersion
                annotations[MeshKeys.trustRootSHA256] = configuration.value.trustRootSHA256
                annotations[MeshKeys.createdBy] = "\(injectedBy) \(proxyVersion)"
            }
            return try server.put(
                Pod(
                    metadata: ObjectMeta(
                        name: name, namespace: namespace, labels: labels, annotations: annotations,
                        ownerReferences: owner.map { [$0] }),
                    spec: PodSpec(containers: containers), status: PodStatus(phase: "Running")))
        }

        /// The Events about `kind/name` with `reason`.
        func events(_ reason: String, about kind: String, _ name: String, namespace: String = "app") throws -> [Event] {
            try server.objects(.events, namespace: namespace).map { try $0.decode(as: Event.self) }.filter {
                $0.reason == reason && $0.involvedObject.kind == kind && $0.involvedObject.name == name
            }
        }

        func restartedAt(_ deployment: String, namespace: String = "app") -> String? {
            server.object(.deployments, namespace: namespace, name: deployment)?["spec"]?["template"]?["metadata"]?[
                "annotations"]?[RestartPolicy.restartedAtAnnotation]?.stringValue
        }

        var workloadPatches: Int {
            server.requestLog.filter { $0.method == "PATCH" && $0.path.contains("/apis/apps/v1/") }.count
        }

        /// The value of the sample of `metric` whose labels include all of `labels`; nil when there is none.
        func metric(_ metric: String, _ labels: [String: String] = [:]) -> Double? {
            var buffer: [UInt8] = []
            registry.emit(into: &buffer)
            for line in String(decoding: buffer, as: UTF8.self).split(separator: "\n")
            where line.hasPrefix(metric + "{") || line.hasPrefix(metric + " ") {
                guard labels.allSatisfy({ line.contains("\($0.key)=\"\($0.value)\"") }),
                    let value = line.split(separator: " ").last
                else { continue }
                return Double(value)
            }
            return nil
        }

        func missingGauge(_ kind: String, _ owner: String) -> Double? {
            metric("linkerd_controller_pods_proxy_missing", ["namespace": "app", "owner_kind": kind, "owner": owner])
        }

        var requeuedReconciles: Double {
            metric("controller_runtime_reconcile_total", ["controller": "mesh-audit", "result": "requeue_after"]) ?? 0
        }

        /// Reconciles that ended in `.done` (nothing to act on, or nothing restartable).
        var completedReconciles: Double {
            metric("controller_runtime_reconcile_total", ["controller": "mesh-audit", "result": "success"]) ?? 0
        }
    }

    /// Runs `body` with a cluster and an auditor that is not started.
    private func withStoppedAuditor(
        restartInterval: Duration = .seconds(600), _ body: (Harness, MeshAuditor) async throws -> Void
    ) async throws {
        try await withServerAndClient { server, client in
            let clock = ManualClock()
            let registry = PrometheusCollectorRegistry()
            let configuration = Locked(Self.meshConfiguration())
            let auditor = MeshAuditor(
                api: client, meshConfiguration: { configuration.value },
                configuration: .init(configurationPollInterval: .seconds(5), restartInterval: restartInterval),
                clock: clock, metricsFactory: PrometheusMetricsFactory(registry: registry))
            let harness = Harness(
                server: server, clock: clock, registry: registry, configuration: configuration, auditor: auditor)
            try await body(harness, auditor)
        }
    }

    private func withAuditor(
        restartInterval: Duration = .seconds(600), _ body: (Harness) async throws -> Void
    ) async throws {
        try await withStoppedAuditor(restartInterval: restartInterval) { harness, auditor in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await auditor.run() }
                try await body(harness)
                group.cancelAll()
            }
        }
    }

    @Test("a pod created without the proxy is reported and its opted-in Deployment restarted once per interval")
    func proxyMissingRestart() async throws {
        try await withAuditor { cluster in
            try cluster.namespace("app", annotations: Self.enabled)
            let replicaSet = try cluster.deployment("web", annotations: Self.autoRestart)
            try cluster.pod("web-abc-1", owner: replicaSet)

            try await eventually("ProxyMissing on the pod and the Deployment") {
                try cluster.events("ProxyMissing", about: "Pod", "web-abc-1").count == 1
                    && cluster.events("ProxyMissing", about: "Deployment", "web").count == 1
            }
            let podEvent = try #require(try cluster.events("ProxyMissing", about: "Pod", "web-abc-1").first)
            #expect(podEvent.type == "Warning")
            #expect(podEvent.message?.contains("without the linkerd-proxy sidecar") == true, "\(podEvent)")
            #expect(podEvent.message?.contains("Restarting deployment/web") == true, "\(podEvent)")
            #expect(cluster.missingGauge("deployment", "web") == 1)

            let firstRestart = KubeTime.format(cluster.clock.now())
            #expect(cluster.restartedAt("web") == firstRestart)
            #expect(try cluster.events("RestartedForMesh", about: "Deployment", "web").count == 1)
            #expect(
                cluster.metric(
                    "linkerd_controller_workload_restarts_total",
                    ["namespace": "app", "kind": "deployment", "reason": "proxy_missing"]) == 1)
            #expect(cluster.workloadPatches == 1)

            // A second pod of the same Deployment, within the interval: reported, not restarted again.
            try cluster.pod("web-abc-2", owner: replicaSet)
            try await eventually("ProxyMissing on the second pod") {
                try cluster.events("ProxyMissing", about: "Pod", "web-abc-2").count == 1
            }
            #expect(cluster.missingGauge("deployment", "web") == 2)
            #expect(cluster.workloadPatches == 1)
            #expect(cluster.restartedAt("web") == firstRestart)

            // After the interval the requeued pods are looked at again: one more restart, no repeated Events.
            let reconciled = cluster.requeuedReconciles
            cluster.clock.advance(by: .seconds(601))
            try await eventually("both pods audited again") { cluster.requeuedReconciles >= reconciled + 2 }
            #expect(cluster.workloadPatches == 2)
            #expect(cluster.restartedAt("web") == KubeTime.format(cluster.clock.now()))
            #expect(try cluster.events("RestartedForMesh", about: "Deployment", "web").count == 2)
            #expect(try cluster.events("ProxyMissing", about: "Pod", "web-abc-1").count == 1)
            #expect(try cluster.events("ProxyMissing", about: "Pod", "web-abc-2").count == 1)
        }
    }

    @Test(
        "bare pods and Job pods are reported, never restarted; a deleted pod's owner gauges go to 0 and are forgotten")
    func neverRestarted() async throws {
        try await withAuditor { cluster in
            try cluster.namespace("app", annotations: Self.enabled.merging(Self.autoRestart) { $1 })
            try cluster.pod("solo")
            let job = try cluster.server.put(
                Job(
                    metadata: ObjectMeta(name: "migrate", namespace: "app"),
                    spec: .init(template: PodTemplateSpec(spec: PodSpec(containers: [Container(name: "app")])))))
            try cluster.pod(
                "migrate-x", owner: cluster.reference(to: job.metadata, kind: "Job", apiVersion: "batch/v1"))
            // An opted-out Deployment in the opted-in namespace.
            let replicaSet = try cluster.deployment("web", annotations: [MeshKeys.autoRestart: "disabled"])
            try cluster.pod("web-abc-1", owner: replicaSet)

            try await eventually("ProxyMissing on every pod and owner") {
                try cluster.events("ProxyMissing", about: "Pod", "solo").count == 1
                    && cluster.events("ProxyMissing", about: "Pod", "migrate-x").count == 1
                    && cluster.events("ProxyMissing", about: "Job", "migrate").count == 1
                    && cluster.events("ProxyMissing", about: "Deployment", "web").count == 1
            }
            let soloEvent = try #require(try cluster.events("ProxyMissing", about: "Pod", "solo").first)
            #expect(soloEvent.message?.contains("bare pods are never restarted") == true, "\(soloEvent)")
            let webEvent = try #require(try cluster.events("ProxyMissing", about: "Deployment", "web").first)
            #expect(webEvent.message?.contains("kubectl rollout restart deployment/web -n app") == true)
            #expect(cluster.missingGauge("pod", "solo") == 1)
            #expect(cluster.missingGauge("job", "migrate") == 1)
            #expect(cluster.missingGauge("deployment", "web") == 1)
            #expect(cluster.workloadPatches == 0)
            #expect(cluster.restartedAt("web") == nil)
            #expect(cluster.metric("linkerd_controller_workload_restarts_total") == nil)

            cluster.server.remove(.pods, namespace: "app", name: "solo")
            #expect(cluster.hasGauges("pod", "solo"))
            try await eventually("the bare pod's gauge withdrawn") { cluster.missingGauge("pod", "solo") == nil }
            #expect(!cluster.hasGauges("pod", "solo"), "its group forgotten")
            #expect(cluster.hasGauges("job", "migrate"))
            #expect(cluster.missingGauge("job", "migrate") == 1)
        }
    }

    @Test("the control-plane namespace is not audited")
    func controlPlaneIgnored() async throws {
        try await withAuditor { cluster in
            try cluster.namespace("linkerd", annotations: Self.enabled.merging(Self.autoRestart) { $1 })
            let controlPlane = try cluster.deployment("linkerd-destination", namespace: "linkerd")
            try cluster.pod("linkerd-destination-abc-1", namespace: "linkerd", owner: controlPlane)
            try cluster.namespace("app", annotations: Self.enabled)
            try cluster.pod("marker")

            // Both pods end in `.done`: exempt, and a bare pod (never restarted).
            try await eventually("both pods audited") { cluster.completedReconciles >= 2 }
            #expect(try cluster.events("ProxyMissing", about: "Pod", "marker").count == 1)
            #expect(cluster.server.objects(.events, namespace: "linkerd").isEmpty)
            #expect(
                cluster.metric(
                    "linkerd_controller_pods_proxy_missing", ["namespace": "linkerd"]) == nil)
            #expect(cluster.workloadPatches == 0)
        }
    }

    @Test("an outdated proxy is reported; deleting the pod withdraws its gauges and forgets them")
    func proxyOutdated() async throws {
        try await withAuditor { cluster in
            try cluster.namespace("app", annotations: Self.enabled)
            let replicaSet = try cluster.deployment("web")
            try cluster.pod("web-abc-1", owner: replicaSet, proxyVersion: "edge-1")
            try cluster.pod("web-abc-2", owner: replicaSet, proxyVersion: "edge-2")

            try await eventually("ProxyOutdated on the pod and the Deployment") {
                try cluster.events("ProxyOutdated", about: "Pod", "web-abc-1").count == 1
                    && cluster.events("ProxyOutdated", about: "Deployment", "web").count == 1
            }
            let event = try #require(try cluster.events("ProxyOutdated", about: "Pod", "web-abc-1").first)
            #expect(event.type == "Normal")
            #expect(event.message?.contains(#"proxy version "edge-1" (expected "edge-2")"#) == true, "\(event)")
            let outdated = ["namespace": "app", "owner_kind": "deployment", "owner": "web"]
            #expect(cluster.metric("linkerd_controller_pods_proxy_outdated", outdated) == 1)
            #expect(cluster.missingGauge("deployment", "web") == 0)
            #expect(try cluster.events("ProxyOutdated", about: "Pod", "web-abc-2").isEmpty)
            #expect(cluster.workloadPatches == 0, "not opted in")

            cluster.server.remove(.pods, namespace: "app", name: "web-abc-1")
            try await eventually("the outdated gauge withdrawn") {
                cluster.metric("linkerd_controller_pods_proxy_outdated", outdated) == nil
            }
            #expect(!cluster.hasGauges("deployment", "web"), "its group forgotten")
        }
    }

    @Test("namespace annotations and configuration changes re-audit pods")
    func reaudit() async throws {
        try await withAuditor { cluster in
            try cluster.namespace("app")
            try cluster.pod("plain")
            let replicaSet = try cluster.deployment("web")
            try cluster.pod("web-abc-1", owner: replicaSet, proxyVersion: "edge-2")

            try await eventually("both pods audited: nothing to report") { cluster.completedReconciles >= 2 }
            #expect(try cluster.events("ProxyMissing", about: "Pod", "plain").isEmpty)

            // Turning injection on for the namespace makes its proxy-less pod a finding.
            try cluster.namespace("app", annotations: Self.enabled)
            try await eventually("ProxyMissing after the namespace was enabled") {
                try cluster.events("ProxyMissing", about: "Pod", "plain").count == 1
            }
            #expect(try cluster.events("ProxyOutdated", about: "Pod", "web-abc-1").isEmpty)

            // A new proxy version, picked up at the next poll, makes the meshed pod outdated.
            cluster.configuration.withLock { $0 = Self.meshConfiguration(proxyVersion: "edge-3") }
            try await cluster.clock.waitForSleepers(atLeast: 1)
            cluster.clock.advance(by: .seconds(5))
            try await eventually("ProxyOutdated after the configuration changed") {
                try cluster.events("ProxyOutdated", about: "Pod", "web-abc-1").count == 1
                    && cluster.events("ProxyOutdated", about: "Deployment", "web").count == 1
            }
            let event = try #require(try cluster.events("ProxyOutdated", about: "Pod", "web-abc-1").first)
            #expect(event.message?.contains(#"(expected "edge-3")"#) == true, "\(event)")
            #expect(try cluster.events("ProxyMissing", about: "Pod", "plain").count == 1, "reported once")
        }
    }

    @Test("a restartedAt in year 9999 on the template delays restarts one interval and does not trap")
    func farFutureRestartedAt() async throws {
        try await withAuditor { cluster in
            try cluster.namespace("app", annotations: Self.enabled)
            let replicaSet = try cluster.deployment(
                "web", annotations: Self.autoRestart, restartedAt: "9999-01-01T00:00:00Z")
            try cluster.pod("web-abc-1", owner: replicaSet)
            try await eventually("ProxyMissing reported") {
                try cluster.events("ProxyMissing", about: "Pod", "web-abc-1").count == 1
            }
            #expect(cluster.workloadPatches == 0)

            // Looked at again after one interval, the year-9999 value counts as that moment: one more interval.
            try await eventually("requeued") { cluster.requeuedReconciles == 1 }
            cluster.clock.advance(by: .seconds(601))
            try await eventually("audited again") { cluster.requeuedReconciles == 2 }
            #expect(cluster.workloadPatches == 0)
            cluster.clock.advance(by: .seconds(601))
            try await eventually("audited again") { cluster.requeuedReconciles == 3 }
            #expect(cluster.workloadPatches == 0)
        }
    }

    @Test("a huge restart interval does not trap")
    func hugeRestartInterval() async throws {
        try await withAuditor(restartInterval: .seconds(Int64.max / 2)) { cluster in
            try cluster.namespace("app", annotations: Self.enabled)
            let replicaSet = try cluster.deployment("web", annotations: Self.autoRestart)
            try cluster.pod("web-abc-1", owner: replicaSet)
            try await eventually("restarted once") { cluster.workloadPatches == 1 }
            // Remembered as restarted: the quiet period is computed, not read from the workload.
            try cluster.pod("web-abc-2", owner: replicaSet)
            try await eventually("the second pod reported") {
                try cluster.events("ProxyMissing", about: "Pod", "web-abc-2").count == 1
            }
            #expect(cluster.workloadPatches == 1)
        }
    }

    @Test("a proxy added by linkerd inject --manual is reported once and never restarted")
    func manualInjection() async throws {
        try await withAuditor { cluster in
            try cluster.namespace("app", annotations: Self.enabled.merging(Self.autoRestart) { $1 })
            // Injected by the CLI: `linkerd.io/created-by: linkerd/cli …`.
            let cli = try cluster.deployment("cli")
            try cluster.pod("cli-abc-1", owner: cli, proxyVersion: "edge-1", injectedBy: "linkerd/cli")
            // The pod says webhook, but the template holds the proxy.
            let manual = try cluster.deployment("manual", manualProxy: true)
            try cluster.pod("manual-abc-1", owner: manual, proxyVersion: "edge-1")
            // The control: injected by the webhook, restarted.
            let webhook = try cluster.deployment("webhook")
            try cluster.pod("webhook-abc-1", owner: webhook, proxyVersion: "edge-1")

            try await eventually("ProxyOutdated on every pod, the webhook's Deployment restarted") {
                try cluster.events("ProxyOutdated", about: "Pod", "cli-abc-1").count == 1
                    && cluster.events("ProxyOutdated", about: "Pod", "manual-abc-1").count == 1
                    && cluster.events("ProxyOutdated", about: "Pod", "webhook-abc-1").count == 1
            }
            #expect(cluster.restartedAt("webhook") != nil)
            #expect(cluster.restartedAt("cli") == nil)
            #expect(cluster.restartedAt("manual") == nil)
            #expect(cluster.workloadPatches == 1)
            for pod in ["cli-abc-1", "manual-abc-1"] {
                let event = try #require(try cluster.events("ProxyOutdated", about: "Pod", pod).first)
                #expect(event.message?.contains("linkerd inject --manual") == true, "\(event)")
            }

            // Intervals later: the webhook's Deployment again (its pod is still outdated), the others never (only
            // the webhook's pod is requeued).
            try await eventually("requeued") { cluster.requeuedReconciles == 1 }
            cluster.clock.advance(by: .seconds(601))
            try await eventually("the webhook's Deployment restarted again") { cluster.workloadPatches == 2 }
            try await eventually("requeued") { cluster.requeuedReconciles == 2 }
            cluster.clock.advance(by: .seconds(601))
            try await eventually("and again") { cluster.workloadPatches == 3 }
            #expect(cluster.restartedAt("cli") == nil)
            #expect(cluster.restartedAt("manual") == nil)
            #expect(try cluster.events("ProxyOutdated", about: "Pod", "cli-abc-1").count == 1)
            #expect(try cluster.events("ProxyOutdated", about: "Pod", "manual-abc-1").count == 1)
        }
    }

    @Test("pods the webhook is never called for are not findings")
    func outsideWebhookScope() async throws {
        try await withAuditor { cluster in
            let injectAndRestart = Self.enabled.merging(Self.autoRestart) { $1 }
            try cluster.namespace(
                "quiet", annotations: injectAndRestart, labels: ["config.linkerd.io/admission-webhooks": "disabled"])
            try cluster.pod("q", namespace: "quiet")
            try cluster.namespace("kube-system", annotations: injectAndRestart)
            try cluster.pod("dns", namespace: "kube-system")
            try cluster.namespace("cert-manager", annotations: injectAndRestart)
            try cluster.pod("cm", namespace: "cert-manager")
            try cluster.namespace("app", annotations: injectAndRestart)
            try cluster.pod("cni", labels: ["linkerd.io/cni-resource": "true"])
            try cluster.pod("component", labels: ["linkerd.io/control-plane-component": "identity"])
            try cluster.pod("marker")

            // The marker comes last in the queue: once it is reported, the others have been audited too.
            try await eventually("every pod audited") {
                try cluster.events("ProxyMissing", about: "Pod", "marker").count == 1
                    && cluster.completedReconciles >= 6
            }
            for namespace in ["quiet", "kube-system", "cert-manager"] {
                #expect(cluster.server.objects(.events, namespace: namespace).isEmpty, "\(namespace)")
            }
            #expect(try cluster.events("ProxyMissing", about: "Pod", "cni").isEmpty)
            #expect(try cluster.events("ProxyMissing", about: "Pod", "component").isEmpty)
            #expect(cluster.metric("linkerd_controller_pods_proxy_missing", ["owner": "marker"]) == 1)
            #expect(cluster.metric("linkerd_controller_pods_proxy_missing", ["owner": "q"]) == nil)

            // Removing the label brings the namespace into the webhook's scope: its labels are watched.
            try cluster.namespace("quiet", annotations: injectAndRestart)
            try await eventually("ProxyMissing once the namespace label is gone") {
                try cluster.events("ProxyMissing", about: "Pod", "q", namespace: "quiet").count == 1
            }
        }
    }

    @Test("a stopped auditor (lost leadership) withdraws its gauges, and publishes them again when run again")
    func gaugesOnStop() async throws {
        try await withStoppedAuditor { cluster, auditor in
            try cluster.namespace("app", annotations: Self.enabled)
            try cluster.pod("solo")

            let first = Task { try await auditor.run() }
            try await eventually("the gauge set") { cluster.missingGauge("pod", "solo") == 1 }
            first.cancel()
            try await first.value
            #expect(cluster.missingGauge("pod", "solo") == nil)
            #expect(!cluster.hasGauges("pod", "solo"))

            let second = Task { try await auditor.run() }
            try await eventually("the gauge set again") { cluster.missingGauge("pod", "solo") == 1 }
            second.cancel()
            try await second.value
            #expect(cluster.missingGauge("pod", "solo") == nil)
        }
    }
}
