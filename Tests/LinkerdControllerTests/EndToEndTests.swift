import Foundation
import KubeClient
import KubeModel
import KubeTestServer
import LinkerdController
import LinkerdInject
import LinkerdTestSupport
import Logging
import Prometheus
import ServiceLifecycle
import Testing
import Yams

/// The whole `linkerd-controller` (as the executable assembles it) against the API test server: the webhook
/// configuration comes from `manifests/`, the server calls the webhook through its Service over HTTPS and verifies
/// it with the `caBundle` the controller published itself.
///
/// The test server runs no workload controllers, so this test plays the Deployment and ReplicaSet controllers: it
/// creates the ReplicaSet and the pods (through the API, so through admission) that they would create.
@Suite("linkerd-controller end to end", .serialized)
struct EndToEndTests {
    static let manifests = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("manifests")

    /// The manifests' MutatingWebhookConfiguration, as `kubectl apply` would create it.
    static func webhookConfiguration() throws -> JSONValue {
        let text = try String(
            contentsOf: manifests.appendingPathComponent("40-proxy-injector-webhook.yaml"), encoding: .utf8)
        for document in try Yams.load_all(yaml: text) {
            let json = try JSONSerialization.data(withJSONObject: document as Any)
            let value = try JSONDecoder().decode(JSONValue.self, from: json)
            if value["kind"] == "MutatingWebhookConfiguration" { return value }
        }
        throw TestFailure("no MutatingWebhookConfiguration in 40-proxy-injector-webhook.yaml")
    }

    struct TestFailure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    let directory: URL
    let trustAnchor: TestCertificateAuthority

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("e2e-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        trustAnchor = try TestCertificateAuthority(commonName: "root.linkerd.cluster.local")
        try "namespace: linkerd\nclusterDomain: cluster.local\n".write(
            to: directory.appendingPathComponent("values"), atomically: true, encoding: .utf8)
        try trustAnchor.certificatePEM.write(
            to: directory.appendingPathComponent("ca-bundle.crt"), atomically: true, encoding: .utf8)
    }

    /// Runs the controller against `server` until `body` returns.
    func withController(
        _ server: KubeTestServer, _ client: KubeClient,
        _ body: (ProxyInjectorController) async throws -> Void
    ) async throws {
        let settings = ProxyInjectorController.Settings.loopback(directory: directory, identity: "e2e")
        let controller = ProxyInjectorController(settings: settings, api: client, logger: Logger(label: "e2e"))
        let group = ServiceGroup(
            configuration: .init(services: controller.services.map { .init(service: $0) }, logger: Logger(label: "e2e"))
        )
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            do {
                try await body(controller)
            } catch {
                await group.triggerGracefulShutdown()
                throw error
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }

    func pod(_ name: String, replicaSet: String, uid: String) -> Pod {
        var metadata = ObjectMeta(name: name, namespace: "emojivoto", labels: ["app": "web"])
        metadata.ownerReferences = [
            OwnerReference(apiVersion: "apps/v1", kind: "ReplicaSet", name: replicaSet, uid: uid, controller: true)
        ]
        return Pod(
            metadata: metadata,
            spec: PodSpec(containers: [Container(name: "web", image: "buoyantio/emojivoto-web:v11")]))
    }

    func replicaSet(_ name: String, deployment: Deployment) -> ReplicaSet {
        var metadata = ObjectMeta(name: name, namespace: "emojivoto")
        metadata.ownerReferences = [
            OwnerReference(
                apiVersion: "apps/v1", kind: "Deployment", name: deployment.metadata.name ?? "",
                uid: deployment.metadata.uid ?? "", controller: true)
        ]
        return ReplicaSet(metadata: metadata, spec: .init(selector: LabelSelector(matchLabels: ["app": "web"])))
    }

    static func containerNames(_ pod: Pod) -> [String] {
        ((pod.spec?.initContainers ?? []) + (pod.spec?.containers ?? [])).map(\.name)
    }

    func events(_ client: KubeClient, reason: String, about name: String) async throws -> [Event] {
        try await client.list(Event.self, namespace: "emojivoto").items.filter {
            $0.reason == reason && $0.involvedObject.name == name
        }
    }

    static func metric(_ registry: PrometheusCollectorRegistry, _ name: String, containing labels: [String]) -> Double?
    {
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        let text = String(decoding: buffer, as: UTF8.self)
        for line in text.split(separator: "\n") where line.hasPrefix(name + "{") || line.hasPrefix(name + " ") {
            if labels.allSatisfy({ line.contains($0) }), let value = line.split(separator: " ").last {
                return Double(value)
            }
        }
        return nil
    }

    @Test func meshesPodsReportsThoseLeftOutAndRestartsTheirDeployment() async throws {
        try await withServerAndClient { server, client in
            try server.put(.mutatingWebhookConfigurations, Self.webhookConfiguration())
            try server.put(
                Namespace(
                    metadata: ObjectMeta(
                        name: "linkerd", labels: ["config.linkerd.io/admission-webhooks": "disabled"],
                        annotations: ["linkerd.io/inject": "disabled"])))
            try server.put(
                Namespace(metadata: ObjectMeta(name: "emojivoto", annotations: ["linkerd.io/inject": "enabled"])))
            var deployment = Deployment(
                metadata: ObjectMeta(
                    name: "web", namespace: "emojivoto", annotations: ["config.linkerd.io/auto-restart": "enabled"]),
                spec: .init(
                    selector: LabelSelector(matchLabels: ["app": "web"]),
                    template: PodTemplateSpec(
                        metadata: ObjectMeta(labels: ["app": "web"]),
                        spec: PodSpec(containers: [Container(name: "web", image: "buoyantio/emojivoto-web:v11")]))))
            deployment = try await client.create(deployment)
            let firstSet = try await client.create(replicaSet("web-5d8f7", deployment: deployment))

            try await withController(server, client) { controller in
                let port = try await controller.webhook.waitUntilBound()
                server.routeService(
                    namespace: "linkerd", name: "linkerd-proxy-injector", to: .init(host: "127.0.0.1", port: port))
                try await eventually("the controller publishes its CA in the webhook configuration") {
                    let published = try await client.get(
                        MutatingWebhookConfiguration.self, name: "linkerd-proxy-injector-webhook-config")
                    return published.webhooks?.first?.clientConfig.caBundle?.isEmpty == false
                }

                // The webhook is up: a pod of the Deployment comes back meshed, over a verified HTTPS call.
                let meshed = try await client.create(
                    pod("web-5d8f7-aaaaa", replicaSet: "web-5d8f7", uid: firstSet.metadata.uid ?? ""))
                #expect(Self.containerNames(meshed) == ["linkerd-init", "linkerd-proxy", "web"])
                #expect(meshed.metadata.annotations?["linkerd.io/proxy-version"] != nil)
                #expect(meshed.metadata.labels?["linkerd.io/proxy-deployment"] == "web")
                guard case .patched? = server.admissionLog.last?.outcome else {
                    Issue.record("expected a patched admission, got \(String(describing: server.admissionLog.last))")
                    return
                }
                try await eventually("an Injected event on the Deployment") {
                    try await !events(client, reason: "Injected", about: "web").isEmpty
                }

                // The webhook's Service loses its endpoint: failurePolicy Ignore lets a pod in without a proxy.
                server.routeService(namespace: "linkerd", name: "linkerd-proxy-injector", to: nil)
                let bare = try await client.create(
                    pod("web-5d8f7-bbbbb", replicaSet: "web-5d8f7", uid: firstSet.metadata.uid ?? ""))
                #expect(Self.containerNames(bare) == ["web"])
                guard case .failed(_, ignored: true)? = server.admissionLog.last?.outcome else {
                    Issue.record("expected an ignored webhook failure")
                    return
                }

                // The reconcile loop reports it, on the pod and the Deployment, and counts it.
                try await eventually("ProxyMissing events on the pod and its Deployment") {
                    let onPod = try await events(client, reason: "ProxyMissing", about: "web-5d8f7-bbbbb")
                    let onDeployment = try await events(client, reason: "ProxyMissing", about: "web")
                    return onPod.first?.type == "Warning" && !onDeployment.isEmpty
                }
                try await eventually("the proxy-missing gauge counts the pod") {
                    Self.metric(
                        controller.registry, "linkerd_controller_pods_proxy_missing",
                        containing: ["namespace=\"emojivoto\"", "owner=\"web\""]) == 1
                }
                // ... and, as the Deployment opted in, restarts it the way `kubectl rollout restart` does.
                try await eventually("the Deployment's template gets kubectl.kubernetes.io/restartedAt") {
                    let current = try await client.get(Deployment.self, namespace: "emojivoto", name: "web")
                    return current.spec?.template.metadata?.annotations?["kubectl.kubernetes.io/restartedAt"] != nil
                }

                // The webhook is back; the rollout (played here) replaces the pods, and the new one is meshed.
                server.routeService(
                    namespace: "linkerd", name: "linkerd-proxy-injector", to: .init(host: "127.0.0.1", port: port))
                let secondSet = try await client.create(replicaSet("web-7c9b4", deployment: deployment))
                let restarted = try await client.create(
                    pod("web-7c9b4-ccccc", replicaSet: "web-7c9b4", uid: secondSet.metadata.uid ?? ""))
                #expect(Self.containerNames(restarted) == ["linkerd-init", "linkerd-proxy", "web"])
                try await client.delete(Pod.self, namespace: "emojivoto", name: "web-5d8f7-bbbbb")
                try await eventually("the proxy-missing gauge of the Deployment is gone") {
                    Self.metric(
                        controller.registry, "linkerd_controller_pods_proxy_missing",
                        containing: ["namespace=\"emojivoto\"", "owner=\"web\""]) == nil
                }
            }
        }
    }
}
