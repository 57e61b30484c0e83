import LinkerdCore
import LinkerdProxy
import LinkerdProxyCore
import LinkerdTestSupport
import NIOCore
import Testing

/// Sends every connection to one endpoint, answering at once.
struct FixedEndpointResolver: OutboundEndpointResolver {
    let endpoint: OutboundEndpoint

    func endpoint(for originalDestination: SocketAddress) async -> OutboundEndpoint {
        endpoint
    }

    func immediateEndpoint(for originalDestination: SocketAddress) -> OutboundEndpoint? {
        endpoint
    }
}

/// Certifies `web` and `api` (namespace `emojivoto`) with the real identity server, then runs `body` with their
/// credentials.
func withCertifiedMeshPair(
    _ body: (_ web: ProxyCredentials, _ api: ProxyCredentials) async throws -> Void
) async throws {
    try await withCertifiedMeshFixtures { web, api in try await body(web.credentials, api.credentials) }
}

/// Certifies `web` and `api` (namespace `emojivoto`) with the real identity server, then runs `body` with their
/// identity fixtures, which can certify again while it runs.
func withCertifiedMeshFixtures(
    _ body: (_ web: ProxyIdentityFixture, _ api: ProxyIdentityFixture) async throws -> Void
) async throws {
    let pki = try IdentityTestPKI()
    try await withIdentityServer(pki) { server in
        server.registerToken("web-token", serviceAccount: "web", namespace: "emojivoto")
        server.registerToken("api-token", serviceAccount: "api", namespace: "emojivoto")
        let web = try server.proxy(meshIdentity("web", "emojivoto"), token: "web-token")
        let api = try server.proxy(meshIdentity("api", "emojivoto"), token: "api-token")
        try await web.certify()
        try await api.certify()
        try await body(web, api)
    }
}

/// Proxy A (`web`) sends a client's connection through its outbound proxy to proxy B (`api`), whose inbound proxy
/// hands it to B's application, as in a meshed pod pair:
/// client → A's OutboundProxy (original destination: B's application; endpoint: B's inbound proxy) → B's
/// InboundProxy (original destination: B's application) → application.
@Suite(
    "Two proxies on loopback, certified by the real identity server", .tags(.realIdentityServer),
    .timeLimit(.minutes(1)))
struct TwoProxiesTests {
    let webName = meshIdentity("web", "emojivoto")
    let apiName = meshIdentity("api", "emojivoto")

    @Test("Bytes cross both proxies over mTLS both ways, server first and around a half-close; B sees A's identity")
    func meshed() async throws {
        let greeting = "220 api ready\r\n"
        let app = try await TestTCPServer.start { [GreetingHandler(greeting), EchoHandler()] }
        try await withCertifiedMeshPair { web, api in
            // The application's port is opaque to B, which then connects to it as soon as A's TLS is terminated.
            try await withInboundProxy(
                app: app, opaquePorts: PortList([PortRange(UInt16(app.port))]), credentials: api
            ) { inboundPort, inbound, forwarded in
                // Server first: only an opaque endpoint is connected before the client speaks.
                let endpoint = OutboundEndpoint(
                    address: try SocketAddress(ipAddress: "127.0.0.1", port: inboundPort), identity: apiName,
                    protocolHint: .opaque)
                try await withOutboundProxy(
                    originalDestination: try app.address, resolver: FixedEndpointResolver(endpoint: endpoint),
                    credentials: web
                ) { outboundPort, outbound in
                    let client = try await TestClient.connect(port: outboundPort)
                    try await client.received.waitForText(greeting)
                    let connection = try #require(forwarded.value.first)
                    #expect(connection.tls == .terminated(clientIdentity: webName))
                    #expect(connection.originalDestination == (try app.address))

                    try await client.send("ping")
                    try await client.received.waitForText(greeting + "ping")

                    let data = randomBytes(1024 * 1024)
                    try await client.channel.writeAndFlush(data).get()
                    try await client.shutdownOutput()
                    try await client.received.waitUntilClosed()
                    #expect(client.received.bytes == Array((greeting + "ping").utf8) + Array(data.readableBytesView))

                    try await eventually("both proxies count the connection closed") {
                        outbound.counters.closedTotal == 1 && inbound.counters.closedTotal == 1
                    }
                    // A's client side is plaintext; B's accepted side carries TLS records, so more bytes.
                    #expect(outbound.counters.bytesRead == 4 + data.readableBytes)
                    #expect(inbound.counters.bytesRead > outbound.counters.bytesRead)
                    #expect(forwarded.value.count == 1)
                }
            }
        }
        await app.close()
    }

    @Test("A server without the expected identity fails the connection before the application is reached")
    func identityMismatch() async throws {
        let app = try await TestTCPServer.start { [EchoHandler()] }
        let inboundMetrics = ProxyMetricsRegistry()
        let outboundMetrics = ProxyMetricsRegistry()
        try await withCertifiedMeshPair { web, api in
            try await withInboundProxy(app: app, metrics: inboundMetrics, credentials: api) {
                inboundPort, _, forwarded in
                // The SNI names B, so B terminates TLS; but A expects another identity, and rejects B's certificate.
                let wrong = OutboundEndpoint(
                    address: try SocketAddress(ipAddress: "127.0.0.1", port: inboundPort),
                    identity: meshIdentity("db", "emojivoto"), serverName: apiName)
                try await withOutboundProxy(
                    originalDestination: try app.address, resolver: FixedEndpointResolver(endpoint: wrong),
                    metrics: outboundMetrics, credentials: web
                ) { outboundPort, outbound in
                    let client = try await TestClient.connect(port: outboundPort)
                    try await client.send("must not arrive")
                    try await client.received.waitUntilInputEnded()
                    #expect(client.received.bytes.isEmpty)
                    try await eventually("A counts the connection closed") { outbound.counters.closedTotal == 1 }
                    #expect(app.accepted.isEmpty)
                    #expect(forwarded.value.isEmpty)
                    // Both sides count the failed handshake.
                    #expect(outboundMetrics.errors.count(.io, direction: .outbound, layer: .tcp) == 1)
                    try await eventually("B counts the aborted handshake") {
                        inboundMetrics.errors.count(.io, direction: .inbound, layer: .tcp) == 1
                    }
                }
            }
        }
        await app.close()
    }

    @Test("An SNI for another identity is passed through by B, so the application gets A's ClientHello; A fails")
    func identityOfAnotherProxy() async throws {
        let appReceived = ReceivedBytes()
        let app = try await TestTCPServer.start { [CollectingHandler(appReceived)] }
        let dbName = meshIdentity("db", "emojivoto")
        try await withCertifiedMeshPair { web, api in
            try await withInboundProxy(app: app, credentials: api) { inboundPort, _, forwarded in
                let endpoint = OutboundEndpoint(
                    address: try SocketAddress(ipAddress: "127.0.0.1", port: inboundPort), identity: dbName)
                try await withOutboundProxy(
                    originalDestination: try app.address, resolver: FixedEndpointResolver(endpoint: endpoint),
                    credentials: web
                ) { outboundPort, _ in
                    let client = try await TestClient.connect(port: outboundPort)
                    try await client.send("must not arrive in the clear")
                    try await eventually("the application receives A's ClientHello") {
                        appReceived.bytes.starts(with: [0x16, 0x03])
                    }
                    #expect(forwarded.value.map(\.tls) == [.passthrough(serverName: dbName)])
                    // The application does not answer the ClientHello: A's connect timeout (1 s) ends the connection.
                    try await client.received.waitUntilInputEnded()
                    #expect(client.received.bytes.isEmpty)
                    #expect(!appReceived.text.contains("must not arrive in the clear"))
                }
            }
        }
        await app.close()
    }

    @Test("An endpoint without identity gets plaintext, which B forwards as plaintext")
    func plaintextWithoutIdentity() async throws {
        let app = try await TestTCPServer.start { [EchoHandler()] }
        try await withCertifiedMeshPair { web, api in
            try await withInboundProxy(app: app, credentials: api) { inboundPort, _, forwarded in
                let plaintext = OutboundEndpoint(address: try SocketAddress(ipAddress: "127.0.0.1", port: inboundPort))
                try await withOutboundProxy(
                    originalDestination: try app.address, resolver: FixedEndpointResolver(endpoint: plaintext),
                    credentials: web
                ) { outboundPort, _ in
                    let client = try await TestClient.connect(port: outboundPort)
                    try await client.send("in the clear")
                    try await client.received.waitForText("in the clear")
                    #expect(forwarded.value.map(\.tls) == [.plaintext])
                    await client.close()
                }
            }
        }
        await app.close()
    }
}
