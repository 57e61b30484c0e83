import KubeClient

/// Starts a `KubeTestServer`, connects a `KubeClient` trusting its CA, runs `body`, and shuts both down whatever
/// `body` does.
///
/// - Parameter configure: adjusts the client configuration (timeouts, authentication) before the client is created.
public func withServerAndClient(
    _ serverConfiguration: KubeTestServer.Configuration = .init(),
    configure: (inout KubeClientConfiguration) throws -> Void = { _ in },
    _ body: (KubeTestServer, KubeClient) async throws -> Void
) async throws {
    let server = try await KubeTestServer.start(serverConfiguration)
    let client: KubeClient
    do {
        var configuration = KubeClientConfiguration(
            server: server.baseURL, certificateAuthorityPEM: Array(server.caCertificatePEM.utf8))
        try configure(&configuration)
        client = try KubeClient(configuration: configuration)
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
