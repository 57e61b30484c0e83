import ArgumentParser
import Foundation
import KubeClient
import KubeModel
import KubeTestServer
import LinkerdCLI
import LinkerdController
import LinkerdTestSupport
import Logging
import Prometheus
import ServiceLifecycle
import UnixSignals

/// The main job, on one machine: a loopback Kubernetes API server with this repository's `manifests/` applied,
/// and the real `linkerd-controller` (as its executable assembles it) running against it through the HTTPS
/// client. It then walks through what the controller is for:
///
/// 1. a namespace opts in with `linkerd.io/inject: enabled`, and a Deployment's pod is created through the API:
///    the API server calls the webhook over HTTPS (verified with the `caBundle` the controller published itself)
///    and the pod comes back with `linkerd-init` and `linkerd-proxy`;
/// 2. the webhook becomes unreachable and, under `failurePolicy: Ignore`, a pod gets in without a proxy;
/// 3. the reconcile loop reports it (`ProxyMissing`, a gauge) and, as the Deployment opted in with
///    `config.linkerd.io/auto-restart: enabled`, restarts it as `kubectl rollout restart` does;
/// 4. the webhook is back, and the restarted pod is meshed.
///
/// The API server runs no workload controllers, so this program plays the Deployment and ReplicaSet controllers
/// (it creates their pods through the API, so through admission).
@main
struct DevCluster: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "linkerd-dev-cluster",
        abstract: "Run linkerd-controller against a loopback API server and show it meshing, auditing and restarting.")

    @Option(help: "The directory of manifests to apply (the injector's webhook configuration and config).")
    var manifests: String = "manifests"

    @Option(help: "Where to write a kubeconfig for the server, so other tools can use it.")
    var kubeconfig: String = ".build/dev-cluster/kubeconfig"

    @Flag(help: "Keep the cluster and controller running after the walkthrough, until SIGINT/SIGTERM.")
    var keepRunning = false

    @Option(help: "Log level of the controller: trace, debug, info, notice, warning, error.")
    var logLevel: Logger.Level = .warning

    func run() async throws {
        let level = logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "linkerd.dev-cluster")
        let server = try await KubeTestServer.start()
        let token = "dev-cluster-token"
        server.acceptClientToken(token, as: "dev-cluster")
        try writeKubeconfig(server.kubeconfig(token: token))
        say("API server listening at \(server.baseURL); kubeconfig written to \(kubeconfig)")
        let client = try KubeClient(configuration: KubeClientConfiguration.fromKubeconfig(path: kubeconfig))
        do {
            let files = try applyManifests(to: server)
            let controller = ProxyInjectorController(settings: files.settings, api: client, logger: logger)
            let walkthrough = Walkthrough(
                server: server, client: client, controller: controller, keepRunning: keepRunning)
            let group = ServiceGroup(
                configuration: .init(
                    services: controller.services.map { .init(service: $0) } + [
                        .init(service: walkthrough, successTerminationBehavior: .gracefullyShutdownGroup)
                    ],
                    gracefulShutdownSignals: [.sigterm, .sigint],
                    logger: logger))
            try await group.run()
            try? FileManager.default.removeItem(at: files.directory)
        } catch {
            try? await client.shutdown()
            try? await server.shutdown()
            throw error
        }
        try await client.shutdown()
        try await server.shutdown()
        say("stopped")
    }

    private func writeKubeconfig(_ text: String) throws {
        let url = URL(fileURLWithPath: kubeconfig)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: url, atomically: true, encoding: .utf8)
    }

    /// Puts every manifest object of a kind the API server serves into it (RBAC kinds are not modelled), and
    /// writes what the controller's Deployment would mount: `linkerd-config`'s values and a trust-anchor bundle
    /// (a fresh throw-away CA, as `linkerd install` would generate).
    private func applyManifests(to server: KubeTestServer) throws -> (
        settings: ProxyInjectorController.Settings, directory: URL
    ) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("dev-cluster-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var values = "namespace: linkerd\n"
        let files = try FileManager.default.contentsOfDirectory(atPath: manifests).filter { $0.hasSuffix(".yaml") }
            .sorted()
        guard !files.isEmpty else {
            throw ValidationError("no manifests in \(manifests): run from the repository's root or pass --manifests")
        }
        for file in files {
            let source = ManifestSource(
                name: "\(manifests)/\(file)",
                text: try String(contentsOfFile: "\(manifests)/\(file)", encoding: .utf8))
            for object in try ManifestCodec.objects(in: source) {
                let kind = object["kind"]?.stringValue ?? ""
                if kind == "ConfigMap", object["metadata"]?["name"] == "linkerd-config",
                    let text = object["data"]?["values"]?.stringValue
                {
                    values = text
                }
                guard let type = ResourceType.builtIn.first(where: { $0.kind == kind }) else { continue }
                try server.put(type, object)
            }
            say("applied \(manifests)/\(file)")
        }
        let anchor = try TestCertificateAuthority(commonName: "root.linkerd.cluster.local")
        try values.write(to: directory.appendingPathComponent("values"), atomically: true, encoding: .utf8)
        try anchor.certificatePEM.write(
            to: directory.appendingPathComponent("ca-bundle.crt"), atomically: true, encoding: .utf8)
        let settings = ProxyInjectorController.Settings.loopback(directory: directory, identity: "dev-cluster")
        return (settings, directory)
    }
}

struct WalkthroughError: Error, CustomStringConvertible {
    var description: String
}

/// Prints a line of the walkthrough at once (stdout may be a pipe).
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

/// The walkthrough of the type's documentation, run as a service beside the controller's.
struct Walkthrough: ServiceLifecycle.Service {
    let server: KubeTestServer
    let client: KubeClient
    let controller: ProxyInjectorController
    let keepRunning: Bool

    func run() async throws {
        let port = try await controller.webhook.waitUntilBound()
        let admin = try await controller.admin.waitUntilBound()
        say("linkerd-controller: webhook on https://127.0.0.1:\(port), admin on http://127.0.0.1:\(admin)/metrics")
        server.routeService(
            namespace: "linkerd", name: "linkerd-proxy-injector", to: .init(host: "127.0.0.1", port: port))
        try await wait("the controller to publish its CA in the webhook's caBundle") {
            let hook = try await client.get(
                MutatingWebhookConfiguration.self, name: "linkerd-proxy-injector-webhook-config")
            return hook.webhooks?.first?.clientConfig.caBundle?.isEmpty == false
        }

        try server.put(
            Namespace(metadata: ObjectMeta(name: "emojivoto", annotations: ["linkerd.io/inject": "enabled"])))
        say(
            "\n1. namespace emojivoto has linkerd.io/inject=enabled; Deployment web has config.linkerd.io/auto-restart=enabled"
        )
        let deployment = try await client.create(
            Deployment(
                metadata: ObjectMeta(
                    name: "web", namespace: "emojivoto", annotations: ["config.linkerd.io/auto-restart": "enabled"]),
                spec: .init(
                    selector: LabelSelector(matchLabels: ["app": "web"]),
                    template: PodTemplateSpec(
                        metadata: ObjectMeta(labels: ["app": "web"]),
                        spec: PodSpec(containers: [Container(name: "web", image: "buoyantio/emojivoto-web:v11")])))))
        let first = try await createReplicaSet("web-5d8f7", of: deployment)
        try await createPod("web-5d8f7-x2k9q", of: first)

        say("\n2. the injector's Service loses its endpoint (failurePolicy: Ignore)")
        server.routeService(namespace: "linkerd", name: "linkerd-proxy-injector", to: nil)
        try await createPod("web-5d8f7-m4n7p", of: first)

        say("\n3. the reconcile loop notices")
        var reported: [Event] = []
        try await wait("a ProxyMissing event") {
            reported = try await client.list(Event.self, namespace: "emojivoto").items.filter {
                $0.reason == "ProxyMissing"
            }
            return reported.contains { $0.involvedObject.kind == "Deployment" }
        }
        for event in reported {
            say(
                "   event \(event.type ?? "") \(event.reason ?? "") on \(event.involvedObject.kind ?? "")/\(event.involvedObject.name ?? ""): \(event.message ?? "")"
            )
        }
        say("   metrics: " + metricLines("linkerd_controller_pods_proxy_missing").joined(separator: "; "))
        var restartedAt = ""
        try await wait("the Deployment to be restarted") {
            let current = try await client.get(Deployment.self, namespace: "emojivoto", name: "web")
            restartedAt = current.spec?.template.metadata?.annotations?["kubectl.kubernetes.io/restartedAt"] ?? ""
            return !restartedAt.isEmpty
        }
        say("   Deployment web restarted: kubectl.kubernetes.io/restartedAt=\(restartedAt)")

        say("\n4. the webhook is back; the rollout replaces the pods")
        server.routeService(
            namespace: "linkerd", name: "linkerd-proxy-injector", to: .init(host: "127.0.0.1", port: port))
        let second = try await createReplicaSet("web-7c9b4", of: deployment)
        try await createPod("web-7c9b4-q8w3e", of: second)
        for name in ["web-5d8f7-x2k9q", "web-5d8f7-m4n7p"] {
            try await client.delete(Pod.self, namespace: "emojivoto", name: name)
        }
        try await wait("the proxy-missing gauge to be withdrawn") {
            metricLines("linkerd_controller_pods_proxy_missing").isEmpty
        }
        say("   metrics: no linkerd_controller_pods_proxy_missing series left (every pod of web is meshed)")
        let injected = metricLines("proxy_inject_admission_responses_total").filter { $0.contains("skip=\"false\"") }
            .compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }.reduce(0, +)
        say(
            "   proxy_inject_admission_responses_total{skip=\"false\"}: \(Int(injected)) (http://127.0.0.1:\(admin)/metrics)"
        )
        if keepRunning {
            say("\nstill running (Ctrl-C to stop); kubeconfig at the path above")
            try await gracefulShutdown()
        }
    }

    private func createReplicaSet(_ name: String, of deployment: Deployment) async throws -> ReplicaSet {
        var metadata = ObjectMeta(name: name, namespace: "emojivoto")
        metadata.ownerReferences = [
            OwnerReference(
                apiVersion: "apps/v1", kind: "Deployment", name: "web", uid: deployment.metadata.uid ?? "",
                controller: true)
        ]
        return try await client.create(
            ReplicaSet(metadata: metadata, spec: .init(selector: LabelSelector(matchLabels: ["app": "web"]))))
    }

    private func createPod(_ name: String, of replicaSet: ReplicaSet) async throws {
        var metadata = ObjectMeta(name: name, namespace: "emojivoto", labels: ["app": "web"])
        metadata.ownerReferences = [
            OwnerReference(
                apiVersion: "apps/v1", kind: "ReplicaSet", name: replicaSet.metadata.name ?? "",
                uid: replicaSet.metadata.uid ?? "", controller: true)
        ]
        let pod = try await client.create(
            Pod(
                metadata: metadata,
                spec: PodSpec(containers: [Container(name: "web", image: "buoyantio/emojivoto-web:v11")])))
        let containers = ((pod.spec?.initContainers ?? []) + (pod.spec?.containers ?? [])).map(\.name)
        let version = pod.metadata.annotations?["linkerd.io/proxy-version"].map { ", proxy-version \($0)" } ?? ""
        say("   created pod \(name): containers [\(containers.joined(separator: ", "))]\(version)")
    }

    /// The `/metrics` lines of one metric family, from the controller's registry.
    private func metricLines(_ name: String) -> [String] {
        var buffer: [UInt8] = []
        controller.registry.emit(into: &buffer)
        return String(decoding: buffer, as: UTF8.self).split(separator: "\n").map(String.init).filter {
            $0.hasPrefix(name + "{") || $0.hasPrefix(name + " ")
        }
    }

    private func wait(_ what: String, _ check: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now.advanced(by: .seconds(20))
        while ContinuousClock.now < deadline {
            if try await check() { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw WalkthroughError(description: "timed out waiting for \(what)")
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
