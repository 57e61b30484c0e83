import LinkerdProxy
import LinkerdProxyCore
import LinkerdTestSupport
import Logging
import NIOCore
import NIOPosix
import Testing

/// A resolver that answers only asynchronously, from a table, and records what it was asked.
final class TableResolver: OutboundEndpointResolver {
    private let table: [SocketAddress: OutboundEndpoint]
    let asked = Locked<[SocketAddress]>([])

    init(_ table: [SocketAddress: OutboundEndpoint]) {
        self.table = table
    }

    func endpoint(for originalDestination: SocketAddress) async -> OutboundEndpoint {
        asked.withLock { $0.append(originalDestination) }
        return table[originalDestination] ?? OutboundEndpoint(address: originalDestination)
    }
}

/// Runs an outbound proxy on 127.0.0.1 for `body`, which gets its port and the proxy. Connections were going to
/// `originalDestination`.
func withOutboundProxy(
    originalDestination: SocketAddress, resolver: any OutboundEndpointResolver = OriginalDestinationResolver(),
    detectTimeout: TimeAmount = .seconds(10), http1IdleTimeout: TimeAmount = .seconds(3),
    metrics: ProxyMetricsRegistry? = nil, credentials: ProxyCredentials,
    _ body: (_ port: Int, _ proxy: OutboundProxy) async throws -> Void
) async throws {
    var settings = OutboundProxy.Settings(
        listenAddress: try SocketAddress(ipAddress: "127.0.0.1", port: 0),
        originalDestination: .fixed(originalDestination), detectTimeout: detectTimeout)
    settings.http1IdleTimeout = http1IdleTimeout
    let proxy = OutboundProxy(
        settings: settings, resolver: resolver, credentials: credentials, metrics: metrics,
        logger: Logger(label: "test.outbound"))
    try await whileServing({ try await proxy.run() }, bound: { try await proxy.waitUntilBound() }) { port in
        try await body(port, proxy)
    }
}

@Suite("OutboundProxy on loopback", .timeLimit(.minutes(1)))
struct OutboundProxyTests {
    let localName = meshIdentity("web", "emojivoto")

    @Test("Without discovery, connections reach their original destination in plaintext, both ways")
    func plaintextToOriginalDestination() async throws {
        let app = try await TestTCPServer.start { [GreetingHandler("hello from the app\n"), EchoHandler()] }
        // Server first on a port discovery does not call opaque: the application's greeting comes once HTTP
        // detection times out and the proxy continues with opaque TCP, as upstream does.
        try await withOutboundProxy(
            originalDestination: try app.address, detectTimeout: .milliseconds(200),
            credentials: try uncertifiedCredentials(localName)
        ) { port, proxy in
            let client = try await TestClient.connect(port: port)
            try await client.received.waitForText("hello from the app\n")
            try await client.send("ping")
            try await client.received.waitForText("hello from the app\nping")
            try await client.shutdownOutput()
            try await client.received.waitUntilClosed()
            #expect(client.received.text == "hello from the app\nping")
            try await eventually("the proxy counts the connection closed") { proxy.counters.closedTotal == 1 }
            #expect(proxy.counters.bytesRead == 4)
            #expect(proxy.counters.bytesWritten == 23)
        }
        await app.close()
    }

    @Test("An asynchronous resolver's endpoint is used, and what the client sent meanwhile arrives")
    func asynchronousResolver() async throws {
        let app = try await TestTCPServer.start { [EchoHandler()] }
        let service = try SocketAddress(ipAddress: "10.96.0.10", port: 8080)
        let resolver = TableResolver([service: OutboundEndpoint(address: try app.address)])
        try await withOutboundProxy(
            originalDestination: service, resolver: resolver, credentials: try uncertifiedCredentials(localName)
        ) { port, _ in
            let client = try await TestClient.connect(port: port)
            try await client.send("sent before the endpoint was known")
            try await client.received.waitForText("sent before the endpoint was known")
            #expect(resolver.asked.value == [service])
            await client.close()
        }
        await app.close()
    }

    #if os(Linux)
        @Test("Connections the proxy opens get TCP_NODELAY, the connect keepalive and user timeout, and half-closure")
        func connectOptions() async throws {
            let app = try await TestTCPServer.start { [EchoHandler()] }
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .proxySocketOptions(TCPSocketOptions(keepalive: .milliseconds(9500), userTimeout: .seconds(3)))
                .connect(to: try app.address).get()
            let options = try await channel.eventLoop.submit { try ObservedSocketOptions(of: channel) }.get()
            #expect(
                options
                    == ObservedSocketOptions(
                        noDelay: true, keepalive: true, keepaliveIdleSeconds: 9, userTimeoutMilliseconds: 3000,
                        allowsRemoteHalfClosure: true))

            let plain = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .proxySocketOptions(TCPSocketOptions())
                .connect(to: try app.address).get()
            let plainOptions = try await plain.eventLoop.submit { try ObservedSocketOptions(of: plain) }.get()
            #expect(plainOptions.noDelay)
            #expect(!plainOptions.keepalive)
            #expect(plainOptions.userTimeoutMilliseconds == 0)
            try await channel.close()
            try await plain.close()
            await app.close()
        }
    #endif

    @Test("A connection to an endpoint that refuses it is closed")
    func endpointUnreachable() async throws {
        let closed = try SocketAddress(ipAddress: "127.0.0.1", port: try await unusedLocalPort())
        try await withOutboundProxy(originalDestination: closed, credentials: try uncertifiedCredentials(localName)) {
            port, proxy in
            let client = try await TestClient.connect(port: port)
            // Not HTTP: detection ends at once and the proxy connects to forward it.
            try await client.send("hello")
            try await client.received.waitUntilInputEnded()
            try await eventually("the proxy counts the connection closed") { proxy.counters.closedTotal == 1 }
        }
    }

    @Test("A connection to a meshed endpoint is closed while the proxy has no certificate")
    func meshedEndpointWithoutCertificate() async throws {
        let app = try await TestTCPServer.start { [EchoHandler()] }
        let resolver = TableResolver([
            try app.address: OutboundEndpoint(address: try app.address, identity: meshIdentity("api", "emojivoto"))
        ])
        try await withOutboundProxy(
            originalDestination: try app.address, resolver: resolver, credentials: try uncertifiedCredentials(localName)
        ) { port, _ in
            let client = try await TestClient.connect(port: port)
            try await client.send("ping")
            try await client.received.waitUntilInputEnded()
            #expect(app.accepted.isEmpty)
        }
        await app.close()
    }
}
