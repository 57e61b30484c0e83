import Foundation
import KubeClient
import KubeModel
import KubeTestServer
import LinkerdController
import LinkerdCore
import LinkerdTestSupport
import Logging
import NIOPosix
import ServiceLifecycle

/// Serves the proxy injector for a load test: the whole `linkerd-controller` (as the executable assembles it)
/// against a loopback API server, its webhook on ONE event-loop thread, so a load generator on another core
/// measures reviews per second on one core. `webhook-load.sh` drives it with `hey` over HTTPS keep-alive.
///
/// Usage: `WebhookLoad <review.json to write> <seconds to run>`. It writes a typical pod's AdmissionReview to the
/// first path, prints `port <n>` once the webhook serves, and stops after the given time.
@main
struct WebhookLoad {
    static func main() async throws {
        let arguments = CommandLine.arguments
        guard arguments.count == 3, let seconds = Int(arguments[2]) else {
            FileHandle.standardError.write(Data("usage: WebhookLoad REVIEW_JSON_PATH SECONDS\n".utf8))
            exit(64)
        }
        var logger = Logger(label: "webhook-load")
        logger.logLevel = .warning
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("webhook-load-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try "namespace: linkerd\n".write(
            to: directory.appendingPathComponent("values"), atomically: true, encoding: .utf8)
        // A real trust anchor: without one the configuration is invalid and every review fails open (no patch).
        try TestCertificateAuthority(commonName: "root.linkerd.cluster.local").certificatePEM.write(
            to: directory.appendingPathComponent("ca-bundle.crt"), atomically: true, encoding: .utf8)
        try reviewJSON().write(to: URL(fileURLWithPath: arguments[1]))

        let server = try await KubeTestServer.start()
        try server.put(Namespace(metadata: ObjectMeta(name: "linkerd")))
        try server.put(
            Namespace(metadata: ObjectMeta(name: "emojivoto", annotations: ["linkerd.io/inject": "enabled"])))
        try server.put(
            MutatingWebhookConfiguration(
                metadata: ObjectMeta(name: "linkerd-proxy-injector-webhook-config"),
                webhooks: [
                    .init(
                        name: "linkerd-proxy-injector.linkerd.io",
                        clientConfig: .init(service: .init(namespace: "linkerd", name: "linkerd-proxy-injector")))
                ]))
        let client = try KubeClient(
            configuration: KubeClientConfiguration(
                server: server.baseURL, certificateAuthorityPEM: Array(server.caCertificatePEM.utf8)))

        let settings = ProxyInjectorController.Settings.loopback(directory: directory, identity: "webhook-load")
        let oneCore = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let controller = ProxyInjectorController(
            settings: settings, api: client, logger: logger, eventLoopGroup: oneCore)
        let group = ServiceGroup(services: controller.services, logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            let port = try await controller.webhook.waitUntilBound()
            while controller.credentials.sslContext == nil {
                try await Task.sleep(for: .milliseconds(50))
            }
            FileHandle.standardOutput.write(Data("port \(port)\n".utf8))
            try await Task.sleep(for: .seconds(seconds))
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        try await client.shutdown()
        try await server.shutdown()
        try? FileManager.default.removeItem(at: directory)
    }

    /// An `admission.k8s.io/v1` review of a typical Deployment pod (two containers, ports, probes, a service
    /// account mount) in a namespace with `linkerd.io/inject: enabled`.
    static func reviewJSON() throws -> Data {
        let pod = """
            {"apiVersion":"v1","kind":"Pod","metadata":{"generateName":"web-5d8f7-","namespace":"emojivoto",
            "labels":{"app":"web","pod-template-hash":"5d8f7"}},
            "spec":{"serviceAccountName":"web","containers":[{"name":"web","image":"buoyantio/emojivoto-web:v11",
            "env":[{"name":"WEB_PORT","value":"8080"},{"name":"EMOJISVC_HOST","value":"emoji-svc.emojivoto:8080"}],
            "ports":[{"name":"http","containerPort":8080}],"readinessProbe":{"httpGet":{"path":"/ready","port":8080}},
            "livenessProbe":{"httpGet":{"path":"/live","port":8080}},"volumeMounts":[{"name":"kube-api-access",
            "mountPath":"/var/run/secrets/kubernetes.io/serviceaccount","readOnly":true}]},
            {"name":"metrics","image":"prom/statsd-exporter:v0.26","ports":[{"containerPort":9102}]}],
            "volumes":[{"name":"kube-api-access","projected":{"sources":[{"serviceAccountToken":{"path":"token"}}]}}]}}
            """
        let object = try JSONDecoder().decode(JSONValue.self, from: Data(pod.utf8))
        let kind = AdmissionReview.GroupVersionKind(group: "", version: "v1", kind: "Pod")
        let resource = AdmissionReview.GroupVersionResource(group: "", version: "v1", resource: "pods")
        let request = AdmissionReview.Request(
            uid: "5b6c1f3e-0d7a-4e8b-9a2c-1f0e3d4c5b6a", kind: kind, resource: resource, namespace: "emojivoto",
            operation: "CREATE", object: object)
        return try JSONEncoder().encode(AdmissionReview(request: request))
    }
}
