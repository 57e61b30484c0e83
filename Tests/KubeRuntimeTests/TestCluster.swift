import KubeClient
import KubeModel
import KubeTestServer

/// A loopback API server and a real HTTPS client to it, shut down when `body` ends.
func withCluster(
    _ configuration: KubeTestServer.Configuration = .init(), watchIdleTimeout: Duration = .seconds(300),
    _ body: (KubeTestServer, KubeClient) async throws -> Void
) async throws {
    let server = try await KubeTestServer.start(configuration)
    let client: KubeClient
    do {
        client = try KubeClient(
            configuration: KubeClientConfiguration(
                server: server.baseURL, certificateAuthorityPEM: Array(server.caCertificatePEM.utf8),
                requestTimeout: .seconds(10), watchIdleTimeout: watchIdleTimeout))
    } catch {
        try await server.shutdown()
        throw error
    }
    do {
        try await body(server, client)
    } catch {
        try? await client.shutdown()
        try? await server.shutdown()
        throw error
    }
    try await client.shutdown()
    try await server.shutdown()
}

func makePod(_ namespace: String, _ name: String, labels: [String: String] = [:]) -> Pod {
    Pod(
        metadata: ObjectMeta(name: name, namespace: namespace, labels: labels),
        spec: PodSpec(containers: [Container(name: "app", image: "app:1")]))
}

func makeNamespace(_ name: String) -> Namespace {
    Namespace(metadata: ObjectMeta(name: name))
}
