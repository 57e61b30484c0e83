import Crypto
import LinkerdCore
import LinkerdProxy
import LinkerdProxyCore
import LinkerdTestSupport
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import Testing
import X509

#if canImport(Glibc)
    import Glibc
#endif

/// The TCP options that ``TCPSocketOptions`` sets, as a channel reports them: `TCP_NODELAY`, `SO_KEEPALIVE`,
/// `TCP_KEEPIDLE` (seconds) and `TCP_USER_TIMEOUT` (milliseconds), and whether remote half-closure is allowed.
struct ObservedSocketOptions: Equatable, Sendable {
    var noDelay: Bool
    var keepalive: Bool
    var keepaliveIdleSeconds: Int
    var userTimeoutMilliseconds: Int
    var allowsRemoteHalfClosure: Bool

    /// Reads the options of `channel`, on its event loop.
    init(of channel: any Channel) throws {
        let options = try #require(channel.syncOptions)
        func tcp(_ name: CInt) throws -> Int {
            try options.getOption(
                ChannelOptions.Types.SocketOption(level: .tcp, name: NIOBSDSocket.Option(rawValue: name)))
        }
        noDelay = try tcp(CInt(TCP_NODELAY)) != 0
        keepalive = try options.getOption(ChannelOptions.Types.SocketOption(level: .socket, name: .so_keepalive)) != 0
        keepaliveIdleSeconds = try tcp(CInt(TCP_KEEPIDLE))
        userTimeoutMilliseconds = try tcp(CInt(TCP_USER_TIMEOUT))
        allowsRemoteHalfClosure = try options.getOption(ChannelOptions.allowRemoteHalfClosure)
    }

    init(
        noDelay: Bool, keepalive: Bool, keepaliveIdleSeconds: Int, userTimeoutMilliseconds: Int,
        allowsRemoteHalfClosure: Bool
    ) {
        self.noDelay = noDelay
        self.keepalive = keepalive
        self.keepaliveIdleSeconds = keepaliveIdleSeconds
        self.userTimeoutMilliseconds = userTimeoutMilliseconds
        self.allowsRemoteHalfClosure = allowsRemoteHalfClosure
    }
}

/// Credentials for `localName` with a fresh key and anchors, and no certificate: enough for every inbound path but
/// TLS termination, and for outbound plaintext.
func uncertifiedCredentials(_ localName: String) throws -> ProxyCredentials {
    let anchor = try TestCertificateAuthority()
    return ProxyCredentials(
        localName: localName, privateKey: Certificate.PrivateKey(P256.Signing.PrivateKey()),
        trustAnchors: try IdentityTrustAnchors(pemBundle: anchor.certificatePEM))
}

/// Runs an inbound proxy on 127.0.0.1 for `body`, which gets its port, the proxy and the connections it forwarded.
/// By default connections were going to `app`.
func withInboundProxy(
    app: TestTCPServer, originalDestination: OriginalDestinationSource? = nil,
    detectTimeout: TimeAmount = .seconds(10), allowedIPs: [IPAddress] = [], opaquePorts: PortList = PortList(),
    metrics: ProxyMetricsRegistry? = nil, credentials: ProxyCredentials,
    _ body: (_ port: Int, _ proxy: InboundProxy, _ forwarded: Locked<[InboundConnection]>) async throws -> Void
) async throws {
    let forwarded = Locked<[InboundConnection]>([])
    var settings = InboundProxy.Settings(
        listenAddress: try SocketAddress(ipAddress: "127.0.0.1", port: 0),
        originalDestination: try originalDestination ?? .fixed(app.address), detectTimeout: detectTimeout)
    settings.allowedIPs = allowedIPs
    settings.opaquePorts = opaquePorts
    let proxy = InboundProxy(
        settings: settings, credentials: credentials, metrics: metrics, logger: Logger(label: "test.inbound"),
        onForward: { connection in forwarded.withLock { $0.append(connection) } })
    try await whileServing({ try await proxy.run() }, bound: { try await proxy.waitUntilBound() }) { port in
        try await body(port, proxy, forwarded)
    }
}

/// A port on 127.0.0.1 that nothing listens on (it was free a moment ago).
func unusedLocalPort() async throws -> Int {
    let server = try await TestTCPServer.start { [] }
    let port = server.port
    await server.close()
    return port
}

@Suite("InboundProxy on loopback", .timeLimit(.minutes(1)))
struct InboundProxyTests {
    let localName = meshIdentity("api", "emojivoto")

    /// `curl --tlsv1.2 --tls-max 1.2 --resolve web.emojivoto.svc.cluster.local:18444:127.0.0.1 https://…:18444/`: a
    /// ClientHello for another server name than the proxy's.
    private static let clientHello: [UInt8] = {
        let hex = """
            16030100ed010000e903039807bb097b171282869fcdc1fa70797bd8a8ae451d23e717a9901473ee57f6ec000038c02c
            c030009fcca9cca8ccaac02bc02f009ec024c028006bc023c0270067c00ac0140039c009c0130033009d009c003d003c
            0035002f00ff0100008800000024002200001f7765622e656d6f6a69766f746f2e7376632e636c75737465722e6c6f63
            616c000b000403000102000a000c000a001d0017001e001900180010000e000c02683208687474702f312e3100160000
            00170000000d002a0028040305030603080708080809080a080b08040805080604010501060103030301030204020502
            0602
            """
        let digits = hex.compactMap(\.hexDigitValue)
        return stride(from: 0, to: digits.count - 1, by: 2).map { UInt8(digits[$0] << 4 | digits[$0 + 1]) }
    }()

    @Test("With LINKERD2_PROXY_INBOUND_IPS set, a connection to another address is closed before the application")
    func allowedAddresses() async throws {
        let app = try await TestTCPServer.start { [EchoHandler()] }
        let credentials = try uncertifiedCredentials(localName)
        try await withInboundProxy(
            app: app, allowedIPs: [try IPAddress(parsing: "10.9.9.9")], credentials: credentials
        ) { port, _, forwarded in
            let client = try await TestClient.connect(port: port)
            try await client.received.waitUntilInputEnded()
            #expect(forwarded.value.isEmpty)
            #expect(app.accepted.isEmpty)
        }
        try await withInboundProxy(
            app: app, allowedIPs: [try IPAddress(parsing: "127.0.0.1")], credentials: credentials
        ) { port, _, _ in
            let client = try await TestClient.connect(port: port)
            try await client.send("ping")
            try await client.received.waitForText("ping")
            await client.close()
        }
        await app.close()
    }

    @Test("Plaintext reaches the application at the original destination, both ways, and is counted")
    func plaintext() async throws {
        let app = try await TestTCPServer.start { [EchoHandler()] }
        try await withInboundProxy(app: app, credentials: try uncertifiedCredentials(localName)) {
            port, proxy, forwarded in
            let client = try await TestClient.connect(port: port)
            try await client.send("ping")
            try await client.received.waitForText("ping")
            let connection = try #require(forwarded.value.first)
            #expect(connection.tls == .plaintext)
            #expect(connection.originalDestination == (try app.address))
            #expect(connection.client?.port == client.channel.localAddress?.port)
            #expect(proxy.counters.openConnections == 1)

            await client.close()
            try await eventually("the proxy counts the connection closed") { proxy.counters.closedTotal == 1 }
            #expect(proxy.counters.openedTotal == 1)
            #expect(proxy.counters.openConnections == 0)
            #expect(proxy.counters.bytesRead == 4)
            #expect(proxy.counters.bytesWritten == 4)
        }
        await app.close()
    }

    #if os(Linux)
        @Test("Accepted connections get TCP_NODELAY, the accept keepalive and user timeout, and half-closure")
        func acceptOptions() async throws {
            let app = try await TestTCPServer.start { [EchoHandler()] }
            let appAddress = try app.address
            let observed = Locked<[Result<ObservedSocketOptions, any Error>]>([])
            let settings = InboundProxy.Settings(
                listenAddress: try SocketAddress(ipAddress: "127.0.0.1", port: 0),
                originalDestination: .custom { channel in
                    observed.withLock { $0.append(Result { try ObservedSocketOptions(of: channel) }) }
                    return appAddress
                },
                acceptOptions: TCPSocketOptions(keepalive: .seconds(7), userTimeout: .milliseconds(1500)))
            let proxy = InboundProxy(
                settings: settings, credentials: try uncertifiedCredentials(localName),
                logger: Logger(label: "test.inbound"))
            try await whileServing({ try await proxy.run() }, bound: { try await proxy.waitUntilBound() }) { port in
                let client = try await TestClient.connect(port: port)
                try await client.send("ping")
                try await client.received.waitForText("ping")
                let options = try #require(observed.value.first).get()
                #expect(
                    options
                        == ObservedSocketOptions(
                            noDelay: true, keepalive: true, keepaliveIdleSeconds: 7, userTimeoutMilliseconds: 1500,
                            allowsRemoteHalfClosure: true))
                await client.close()
            }
            await app.close()
        }
    #endif

    @Test("A ClientHello for another server name reaches the application untouched, with what follows it")
    func passthroughBytes() async throws {
        let appReceived = ReceivedBytes()
        let app = try await TestTCPServer.start { [CollectingHandler(appReceived)] }
        try await withInboundProxy(app: app, credentials: try uncertifiedCredentials(localName)) {
            port, _, forwarded in
            let client = try await TestClient.connect(port: port)
            let sent = Self.clientHello + Array("more bytes".utf8)
            try await client.send(sent)
            try await eventually("the application receives every byte") { appReceived.bytes.count >= sent.count }
            #expect(appReceived.bytes == sent)
            #expect(forwarded.value.map(\.tls) == [.passthrough(serverName: "web.emojivoto.svc.cluster.local")])
            await client.close()
        }
        await app.close()
    }

    @Test("A TLS session for another server name passes through to the application's own TLS")
    func passthroughSession() async throws {
        let authority = try TestCertificateAuthority(commonName: "application CA")
        let appName = "shop.example.com"
        let issued = try authority.issue(commonName: appName, dnsNames: [appName])
        let serverConfiguration = TLSConfiguration.makeServerConfiguration(
            certificateChain: [
                .certificate(try NIOSSLCertificate(bytes: Array(issued.certificatePEM.utf8), format: .pem))
            ],
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(issued.privateKeyPEM.utf8), format: .pem)))
        let serverContext = try NIOSSLContext(configuration: serverConfiguration)
        var clientConfiguration = TLSConfiguration.makeClientConfiguration()
        clientConfiguration.trustRoots = .certificates([
            try NIOSSLCertificate(bytes: Array(authority.certificatePEM.utf8), format: .pem)
        ])
        let clientContext = try NIOSSLContext(configuration: clientConfiguration)

        let app = try await TestTCPServer.start { [NIOSSLServerHandler(context: serverContext), EchoHandler()] }
        try await withInboundProxy(app: app, credentials: try uncertifiedCredentials(localName)) {
            port, _, forwarded in
            let client = try await TestClient.connect(port: port) {
                [try NIOSSLClientHandler(context: clientContext, serverHostname: appName)]
            }
            try await client.send("over the application's TLS")
            try await client.received.waitForText("over the application's TLS")
            #expect(forwarded.value.map(\.tls) == [.passthrough(serverName: appName)])
            await client.close()
        }
        await app.close()
    }

    @Test("A client that sends nothing is closed after the detect timeout, without reaching the application")
    func detectTimeout() async throws {
        let app = try await TestTCPServer.start { [EchoHandler()] }
        let metrics = ProxyMetricsRegistry()
        try await withInboundProxy(
            app: app, detectTimeout: .milliseconds(300), metrics: metrics,
            credentials: try uncertifiedCredentials(localName)
        ) { port, _, forwarded in
            let clock = ContinuousClock()
            let start = clock.now
            let client = try await TestClient.connect(port: port)
            try await client.received.waitUntilInputEnded(timeout: .seconds(5))
            let elapsed = clock.now - start
            #expect(elapsed >= .milliseconds(250), "closed after \(elapsed)")
            #expect(app.accepted.isEmpty)
            #expect(forwarded.value.isEmpty)
            try await eventually("a scrape counts the timeout") {
                metrics.render().contains(#"inbound_tcp_errors_total{error="tls detection timeout"} 1"#)
            }
        }
        await app.close()
    }

    @Test("A connection whose original destination is the inbound port itself is closed as a loop")
    func loop() async throws {
        let app = try await TestTCPServer.start { [EchoHandler()] }
        let metrics = ProxyMetricsRegistry()
        try await withInboundProxy(
            app: app, originalDestination: .custom { $0.localAddress }, metrics: metrics,
            credentials: try uncertifiedCredentials(localName)
        ) { port, proxy, _ in
            let client = try await TestClient.connect(port: port)
            try await client.received.waitUntilInputEnded()
            #expect(app.accepted.isEmpty)
            try await eventually("the proxy counts the connection closed") { proxy.counters.closedTotal == 1 }
            #expect(metrics.errors.count(.gatewayLoop, direction: .inbound, layer: .tcp) == 1)
        }
        await app.close()
    }

    @Test("A connection without an original destination is closed")
    func noOriginalDestination() async throws {
        let app = try await TestTCPServer.start { [EchoHandler()] }
        try await withInboundProxy(
            app: app, originalDestination: .custom { _ in nil }, credentials: try uncertifiedCredentials(localName)
        ) { port, _, _ in
            let client = try await TestClient.connect(port: port)
            try await client.received.waitUntilInputEnded()
            #expect(app.accepted.isEmpty)
        }
        await app.close()
    }

    @Test("A connection whose application refuses the connection is closed")
    func applicationUnreachable() async throws {
        let app = try await TestTCPServer.start { [EchoHandler()] }
        let closedPort = try await unusedLocalPort()
        let metrics = ProxyMetricsRegistry()
        try await withInboundProxy(
            app: app, originalDestination: .fixed(try SocketAddress(ipAddress: "127.0.0.1", port: closedPort)),
            metrics: metrics, credentials: try uncertifiedCredentials(localName)
        ) { port, _, forwarded in
            let client = try await TestClient.connect(port: port)
            try await client.send("hello")
            try await client.received.waitUntilInputEnded()
            #expect(client.received.bytes.isEmpty)
            #expect(forwarded.value.isEmpty)
            try await eventually("the refused connection is counted as i/o") {
                metrics.errors.count(.io, direction: .inbound, layer: .tcp) == 1
            }
        }
        await app.close()
    }

    @Test("A ClientHello for the proxy's identity is refused while the proxy has no certificate")
    func terminationWithoutCertificate() async throws {
        let app = try await TestTCPServer.start { [EchoHandler()] }
        let localName = localName
        try await withInboundProxy(app: app, credentials: try uncertifiedCredentials(localName)) {
            port, _, forwarded in
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateVerification = .none
            let context = try NIOSSLContext(configuration: configuration)
            let client = try await TestClient.connect(port: port) {
                [try NIOSSLClientHandler(context: context, serverHostname: localName)]
            }
            try await client.received.waitUntilInputEnded()
            #expect(app.accepted.isEmpty)
            #expect(forwarded.value.isEmpty)
        }
        await app.close()
    }
}
