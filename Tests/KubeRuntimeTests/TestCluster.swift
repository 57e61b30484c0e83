import KubeClient
import KubeModel
import KubeTestServer

/// A loopback API server and a real HTTPS client to it, shut down when `body` ends.
func withCluster(
    watchIdleTimeout: Duration = .seconds(300), _ body: (KubeTestServer, KubeClient) async throws -> Void
) async throws {
    try await withServerAndClient(configure: { $0.watchIdleTimeout = watchIdleTimeout }, body)
}

func makePod(_ namespace: String, _ name: String, labels: [String: String] = [:]) -> Pod {
    Pod(
        metadata: ObjectMeta(name: name, namespace: namespace, labels: labels),
        spec: PodSpec(containers: [Container(name: "app", image: "app:1")]))
}

func makeNamespace(_ name: String) -> Namespace {
    Namespace(metadata: ObjectMeta(name: name))
}
