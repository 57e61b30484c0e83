import ArgumentParser
import Foundation
import KubeClient
import KubeModel
import KubeRuntime
import KubeTestServer
import Logging
import ServiceLifecycle
import UnixSignals

/// Starts a loopback Kubernetes API server with a small workload, and runs the mesh's controller runtime against
/// it through the real HTTPS client: a leader-elected controller that audits which pods are meshed. This is the
/// runnable foundation the operator (proxy injector, reconcile loop) builds on.
@main
struct DevCluster: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "linkerd-dev-cluster",
        abstract: "Run a loopback API server and a leader-elected controller that audits meshed pods.")

    @Option(help: "Stop after this many seconds (0 runs until SIGINT/SIGTERM).")
    var runFor: Int = 0

    @Option(help: "Where to write a kubeconfig for the server, so other tools can use it.")
    var kubeconfig: String = ".build/dev-cluster/kubeconfig"

    @Option(help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel: Logger.Level = .notice

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = logLevel
            return handler
        }
        let logger = Logger(label: "linkerd.dev-cluster")
        let server = try await KubeTestServer.start()
        let token = "dev-cluster-token"
        try writeKubeconfig(server.kubeconfig(token: token))
        print("API server listening at \(server.baseURL); kubeconfig written to \(kubeconfig)")

        let client = try KubeClient(configuration: KubeClientConfiguration.fromKubeconfig(path: kubeconfig))
        do {
            try seed(server)
            let reflector = Reflector(watcher: Watcher<Pod>(api: client, logger: logger))
            let namespaces = Reflector(watcher: Watcher<Namespace>(api: client, logger: logger))
            let audit = MeshAudit(pods: reflector.store, namespaces: namespaces.store)
            let controller = Controller(name: "mesh-audit", reflector: reflector, logger: logger) { key in
                await namespaces.store.waitUntilSynced()
                print(audit.describe(key))
                return .done
            }
            let elector = LeaderElector(
                api: client,
                configuration: .init(
                    leaseName: "linkerd-dev-cluster", namespace: "kube-system", identity: "dev-\(getpid())"),
                logger: logger)
            let demo = Demo(server: server, runFor: runFor)
            let group = ServiceGroup(
                configuration: .init(
                    services: [
                        .init(service: reflector), .init(service: namespaces),
                        .init(service: LeaderElectedServices(elector: elector, services: [controller])),
                        .init(service: demo, successTerminationBehavior: .gracefullyShutdownGroup),
                    ],
                    gracefulShutdownSignals: [.sigterm, .sigint],
                    logger: logger))
            try await group.run()
        } catch {
            try? await client.shutdown()
            try? await server.shutdown()
            throw error
        }
        try await client.shutdown()
        try await server.shutdown()
        print("stopped")
    }

    private func writeKubeconfig(_ text: String) throws {
        let url = URL(fileURLWithPath: kubeconfig)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: url, atomically: true, encoding: .utf8)
    }

    private func seed(_ server: KubeTestServer) throws {
        server.acceptClientToken("dev-cluster-token", as: "dev-cluster")
        try server.put(
            Namespace(metadata: ObjectMeta(name: "emojivoto", annotations: ["linkerd.io/inject": "enabled"])))
        try server.put(Namespace(metadata: ObjectMeta(name: "legacy")))
        for (namespace, name, meshed) in [
            ("emojivoto", "web-7d9c5", true), ("emojivoto", "voting-5f4b8", false), ("legacy", "batch-0", false),
        ] {
            var containers = [Container(name: "app", image: "\(name):1")]
            if meshed { containers.append(Container(name: "linkerd-proxy", image: "linkerd-swift/proxy")) }
            try server.put(
                Pod(metadata: ObjectMeta(name: name, namespace: namespace), spec: PodSpec(containers: containers)))
        }
    }
}

/// Describes whether a pod is meshed and whether its namespace asks for it.
struct MeshAudit: Sendable {
    let pods: Store<Pod>
    let namespaces: Store<Namespace>

    func describe(_ key: ObjectKey) -> String {
        guard let pod = pods.get(key) else { return "\(key): deleted" }
        let meshed =
            (pod.spec?.containers ?? []).contains { $0.name == "linkerd-proxy" }
            || (pod.spec?.initContainers ?? []).contains { $0.name == "linkerd-proxy" }
        let namespace = namespaces.get(ObjectKey(namespace: nil, name: key.namespace ?? ""))
        let wanted =
            (pod.metadata.annotations?["linkerd.io/inject"]
                ?? namespace?.metadata.annotations?["linkerd.io/inject"]) == "enabled"
        switch (meshed, wanted) {
        case (true, _): return "\(key): meshed"
        case (false, true): return "\(key): NOT meshed, but linkerd.io/inject=enabled applies (proxy missing)"
        case (false, false): return "\(key): not meshed (injection not requested)"
        }
    }
}

/// Changes the workload while the controller runs, then ends the demo after `runFor` seconds.
struct Demo: ServiceLifecycle.Service {
    let server: KubeTestServer
    let runFor: Int

    func run() async throws {
        try await Task.sleep(for: .seconds(2))
        try server.put(
            Pod(
                metadata: ObjectMeta(name: "web-8e1f2", namespace: "emojivoto"),
                spec: PodSpec(containers: [Container(name: "app", image: "web:2")])))
        server.remove(.pods, namespace: "legacy", name: "batch-0")
        guard runFor > 0 else {
            try await gracefulShutdown()
            return
        }
        try await Task.sleep(for: .seconds(max(runFor - 2, 1)))
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
