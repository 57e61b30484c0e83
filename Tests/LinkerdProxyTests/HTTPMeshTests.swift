import LinkerdCore
import LinkerdProxy
import LinkerdProxyCore
import LinkerdTestSupport
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

/// client → proxy A (`web`, outbound) → mTLS → proxy B (`api`, inbound) → an HTTP application, on loopback, both
/// proxies certified by the real identity service. A's endpoint for the application is B's inbound listener, with B's
/// identity and an HTTP/2 hint, as the Destination service describes a meshed pod.
@Suite("HTTP through two proxies", .tags(.realIdentityServer), .serialized, .timeLimit(.minutes(2)))
struct HTTPMeshTests {
    /// The proxies' own event loop, as the proxy runs by default, and apart from the loops other suites keep busy.
    static let loop = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    var singleLoop: any EventLoopGroup { Self.loop }
    let webName = meshIdentity("web", "emojivoto")
    let apiName = meshIdentity("api", "emojivoto")

    /// Runs `body` with the outbound port of A and the application, B between them.
    private func withMesh(
        hint: EndpointProtocolHint = .http2, inboundMetrics: ProxyMetricsRegistry? = nil,
        outboundMetrics: ProxyMetricsRegistry? = nil,
        _ body: (_ outboundPort: Int, _ inboundPort: Int, _ app: TestHTTPApp, _ inbound: InboundProxy) async throws
            -> Void
    ) async throws {
        try await withMeshIdentities(hint: hint, inboundMetrics: inboundMetrics, outboundMetrics: outboundMetrics) {
            outboundPort, inboundPort, app, inbound, _, _ in
            try await body(outboundPort, inboundPort, app, inbound)
        }
    }

    /// ``withMesh(hint:inboundMetrics:outboundMetrics:_:)``, also giving `body` A's and B's identity fixtures.
    private func withMeshIdentities(
        hint: EndpointProtocolHint = .http2, inboundMetrics: ProxyMetricsRegistry? = nil,
        outboundMetrics: ProxyMetricsRegistry? = nil,
        _ body: (
            _ outboundPort: Int, _ inboundPort: Int, _ app: TestHTTPApp, _ inbound: InboundProxy,
            _ web: ProxyIdentityFixture, _ api: ProxyIdentityFixture
        ) async throws -> Void
    ) async throws {
        let app = try await TestHTTPApp.start()
        try await withCertifiedMeshFixtures { webFixture, apiFixture in
            let web = webFixture.credentials
            let api = apiFixture.credentials
            let inbound = InboundProxy(
                settings: InboundProxy.Settings(
                    listenAddress: try SocketAddress(ipAddress: "127.0.0.1", port: 0),
                    originalDestination: .fixed(try app.address)),
                credentials: api, metrics: inboundMetrics, logger: Logger(label: "test.inbound"),
                eventLoopGroup: singleLoop)
            try await whileServing({ try await inbound.run() }, bound: { try await inbound.waitUntilBound() }) {
                inboundPort in
                let endpoint = OutboundEndpoint(
                    address: try SocketAddress(ipAddress: "127.0.0.1", port: inboundPort), identity: apiName,
                    protocolHint: hint)
                // One event loop, as the proxy runs by default: one pool, so one HTTP/2 connection per endpoint.
                // A connect timeout (TLS handshake included) with room for a loaded machine running debug builds.
                let outbound = OutboundProxy(
                    settings: OutboundProxy.Settings(
                        listenAddress: try SocketAddress(ipAddress: "127.0.0.1", port: 0),
                        originalDestination: .fixed(try app.address), connectTimeout: .seconds(5)),
                    resolver: FixedEndpointResolver(endpoint: endpoint), credentials: web, metrics: outboundMetrics,
                    logger: Logger(label: "test.outbound"), eventLoopGroup: singleLoop)
                try await whileServing({ try await outbound.run() }, bound: { try await outbound.waitUntilBound() }) {
                    outboundPort in
                    try await body(outboundPort, inboundPort, app, inbound, webFixture, apiFixture)
                }
            }
        }
        await app.close()
    }

    @Test("HTTP/1.1 travels over one multiplexed HTTP/2 connection with l5d-orig-proto, which never leaks")
    func http1UpgradedBetweenProxies() async throws {
        try await withMesh { outboundPort, _, app, inbound in
            for index in 0..<3 {
                let result = try await curl(["--http1.1"], url: "http://127.0.0.1:\(outboundPort)/hello/\(index)")
                #expect(result.status == 200)
                #expect(result.body == "echo:")
                #expect(result.header("x-seen-version") == "1.1")
                #expect(result.header("x-seen-client-id") == webName)
                #expect(result.header("l5d-orig-proto") == nil)
            }
            #expect(app.requests.map(\.head.uri) == ["/hello/0", "/hello/1", "/hello/2"])
            #expect(app.requests.allSatisfy { $0.head.headers["l5d-orig-proto"].isEmpty })
            // Three client connections to A, one HTTP/2 connection from A to B.
            #expect(inbound.counters.openedTotal == 1)
        }
    }

    @Test("A scrape shows each side's request, response, latency and TCP series with upstream's labels")
    func metricsAfterTraffic() async throws {
        let inbound = ProxyMetricsRegistry()
        let outbound = ProxyMetricsRegistry()
        try await withMesh(inboundMetrics: inbound, outboundMetrics: outbound) { outboundPort, inboundPort, app, _ in
            let url = "http://127.0.0.1:\(outboundPort)"
            for _ in 0..<2 {
                #expect(try await curl(["--http1.1"], url: url + "/counted").status == 200)
            }
            let grpc = try await curl(
                ["--http2-prior-knowledge", "-H", "content-type: application/grpc", "--data-binary", "@-"],
                url: url + "/grpc", body: "\u{0}\u{0}\u{0}\u{0}\u{0}")
            #expect(grpc.header("grpc-status") == "7")
            let target = "target_addr=\"127.0.0.1:\(app.port)\",target_ip=\"127.0.0.1\",target_port=\"\(app.port)\""
            let inboundLabels = "direction=\"inbound\",\(target),tls=\"true\",client_id=\"\(webName)\""
            let outboundLabels =
                "direction=\"outbound\",target_addr=\"127.0.0.1:\(inboundPort)\",target_ip=\"127.0.0.1\","
                + "target_port=\"\(inboundPort)\",tls=\"true\",server_id=\"\(apiName)\""
            try await eventually("both scrapes count the three requests") {
                inbound.render().contains("request_total{\(inboundLabels)} 3")
                    && outbound.render().contains("request_total{\(outboundLabels)} 3")
            }
            let scrape = inbound.render()
            #expect(
                scrape.contains("response_total{\(inboundLabels),status_code=\"200\",classification=\"success\"} 2"))
            #expect(
                scrape.contains(
                    "response_total{\(inboundLabels),status_code=\"200\",classification=\"failure\",grpc_status=\"7\"} 1"
                ))
            #expect(scrape.contains("response_latency_ms_bucket{\(inboundLabels),status_code=\"200\",le=\"+Inf\"} 3"))
            #expect(scrape.contains("response_latency_ms_count{\(inboundLabels),status_code=\"200\"} 3"))
            // One HTTP/2 connection from A carried all three requests.
            #expect(scrape.contains("tcp_open_total{direction=\"inbound\",peer=\"src\",\(target)} 1"))
            #expect(scrape.contains("tcp_open_connections{direction=\"inbound\",peer=\"src\",\(target)} 1"))
            #expect(outbound.render().contains("tcp_open_total{direction=\"outbound\",peer=\"src\",\(target)} 3"))
        }
    }

    @Test("Both proxies renew their certificates while requests flow: none fails, the connection stays")
    func identityRefreshWithoutDrops() async throws {
        try await withMeshIdentities { outboundPort, _, app, inbound, web, api in
            let url = "http://127.0.0.1:\(outboundPort)/during-refresh"
            let before = (web.credentials.current?.identity.leaf, api.credentials.current?.identity.leaf)
            for index in 0..<12 {
                if index == 4 { _ = try await api.certify() }
                if index == 8 { _ = try await web.certify() }
                let result = try await curl(["--http1.1"], url: url)
                #expect(result.status == 200)
                #expect(result.header("x-seen-client-id") == webName)
            }
            #expect(web.credentials.current?.identity.leaf != before.0)
            #expect(api.credentials.current?.identity.leaf != before.1)
            #expect(app.requests.count == 12)
            // The HTTP/2 connection between the proxies outlived both renewals.
            #expect(inbound.counters.openedTotal == 1)
        }
    }

    @Test("Chunked and empty bodies, HEAD, and HTTP/1.0 with and without Host reach the application intact")
    func http1Transparency() async throws {
        try await withMesh { outboundPort, _, app, _ in
            let url = "http://127.0.0.1:\(outboundPort)"
            let chunked = try await curl(
                ["--http1.1", "-H", "Transfer-Encoding: chunked", "--data-binary", "@-"], url: url + "/chunked",
                body: String(repeating: "x", count: 100_000))
            #expect(chunked.status == 200)
            #expect(chunked.body == "echo:" + String(repeating: "x", count: 100_000))

            let empty = try await curl(["--http1.1", "-X", "POST", "-H", "Content-Length: 0"], url: url + "/empty")
            #expect(empty.body == "echo:")
            #expect(app.requests.last?.bodyBytes == 0)

            let head = try await curl(["--http1.1", "--head"], url: url + "/head")
            #expect(head.status == 200)
            #expect(head.header("content-length") == "5")
            #expect(head.body.isEmpty)

            let http10 = try await rawHTTPExchange(port: outboundPort, "GET /ten HTTP/1.0\r\nHost: api\r\n\r\n")
            #expect(http10.hasPrefix("HTTP/1.0 200"))
            #expect(http10.hasSuffix("echo:"))
            #expect(app.requests.last?.head.version == .http1_0)

            let noHost = try await rawHTTPExchange(port: outboundPort, "GET /nohost HTTP/1.0\r\n\r\n")
            #expect(noHost.hasPrefix("HTTP/1.0 200"))
            #expect(app.requests.last?.head.uri == "/nohost")

            let eof = try await curl(["--http1.1"], url: url + "/eof")
            #expect(eof.body == "until the end")
        }
    }

    @Test("Pipelined HTTP/1.1 requests sent in one write are answered in order; Connection: close ends the connection")
    func pipelinedRequests() async throws {
        try await withMesh { outboundPort, _, app, _ in
            func post(_ body: String, close: Bool = false) -> String {
                "POST /\(body) HTTP/1.1\r\nHost: api\r\nContent-Length: \(body.utf8.count)\r\n"
                    + (close ? "Connection: close\r\n" : "") + "\r\n" + body
            }
            let received = try await rawHTTPExchange(
                port: outboundPort, post("one") + post("two") + post("three", close: true))
            // Each response ends with its echoed body; in order, they name the requests.
            let echoed = received.split(separator: "HTTP/1.1 200 ").map { $0.split(separator: "echo:").last ?? "" }
            #expect(echoed == ["one", "two", "three"], "\(received)")
            #expect(app.requests.suffix(3).map(\.head.uri) == ["/one", "/two", "/three"])
        }
    }

    @Test("An absolute-form target stays absolute end to end")
    func absoluteForm() async throws {
        try await withMesh { outboundPort, _, app, _ in
            // curl sends absolute form to a proxy it is told about.
            let result = try await curl(
                ["--http1.1", "--proxy", "http://127.0.0.1:\(outboundPort)"], url: "http://api.example:8080/abs?q=1")
            #expect(result.status == 200)
            #expect(result.header("x-seen-uri") == "http://api.example:8080/abs?q=1")
            #expect(app.requests.last?.head.uri == "http://api.example:8080/abs?q=1")
        }
    }

    @Test("HTTP/2 and gRPC go end to end, trailers included")
    func http2AndGRPC() async throws {
        try await withMesh { outboundPort, _, app, _ in
            let url = "http://127.0.0.1:\(outboundPort)"
            let plain = try await curl(
                ["--http2-prior-knowledge", "--data-binary", "@-"], url: url + "/h2", body: "h2")
            #expect(plain.status == 200)
            #expect(plain.body == "echo:h2")
            #expect(plain.header("x-seen-version") == "2.0")
            #expect(plain.header("x-seen-client-id") == webName)

            let grpc = try await curl(
                [
                    "--http2-prior-knowledge", "-H", "content-type: application/grpc", "-H", "te: trailers",
                    "--data-binary", "@-",
                ],
                url: url + "/grpc", body: "\u{0}\u{0}\u{0}\u{0}\u{0}")
            #expect(grpc.status == 200)
            #expect(grpc.header("grpc-status") == "7")
            #expect(grpc.header("grpc-message") == "denied")
            #expect(app.requests.last?.head.version == .http2)
        }
    }

    @Test("A WebSocket upgrade stays HTTP/1.1 between the proxies and becomes a byte stream after the 101")
    func webSocket() async throws {
        try await withMesh { outboundPort, _, app, _ in
            let client = try await TestClient.connect(port: outboundPort)
            try await client.send(
                "GET /ws HTTP/1.1\r\nHost: api\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
            try await eventually("the response head arrives") { client.received.text.contains("\r\n\r\n") }
            #expect(client.received.text.hasPrefix("HTTP/1.1 101"))
            #expect(client.received.text.lowercased().contains("upgrade: websocket"))
            let handshake = client.received.text
            let frame = randomBytes(64 * 1024)
            try await client.channel.writeAndFlush(frame).get()
            try await eventually("the application echoes every byte back through both proxies") {
                client.received.bytes.count == handshake.utf8.count + frame.readableBytes
            }
            #expect(Array(client.received.bytes.dropFirst(handshake.utf8.count)) == Array(frame.readableBytesView))
            let seen = try #require(app.requests.last)
            #expect(seen.head.version == .http1_1)
            #expect(seen.head.headers.first(name: "l5d-client-id") == webName)
            #expect(seen.head.headers.first(name: "upgrade") == "websocket")
            await client.close()
        }
    }

    @Test("Malformed CONNECT and authority-form requests get 400 without reaching the application")
    func badConnect() async throws {
        try await withMesh { outboundPort, _, app, _ in
            let http10 = try await rawHTTPExchange(
                port: outboundPort, "CONNECT api.example:443 HTTP/1.0\r\nHost: api.example:443\r\n\r\n")
            #expect(http10.hasPrefix("HTTP/1.0 400"))
            let client = try await TestClient.connect(port: outboundPort)
            try await client.send("GET api.example:80 HTTP/1.1\r\nHost: api.example\r\n\r\n")
            try await eventually("the response head arrives") { client.received.text.contains("\r\n\r\n") }
            #expect(client.received.text.hasPrefix("HTTP/1.1 400"))
            await client.close()
            #expect(app.requests.isEmpty)
        }
    }

    @Test("Without an HTTP/2 hint, HTTP/1 stays HTTP/1 between proxies, over mTLS")
    func http1WithoutHint() async throws {
        try await withMesh(hint: .unknown) { outboundPort, _, app, _ in
            let result = try await curl(["--http1.1"], url: "http://127.0.0.1:\(outboundPort)/plain")
            #expect(result.status == 200)
            #expect(result.header("x-seen-client-id") == webName)
            #expect(app.requests.last?.head.version == .http1_1)
        }
    }

    @Test("l5d-client-id from a client that proved nothing is removed before the application sees it")
    func spoofedClientIdentityStripped() async throws {
        try await withMesh { _, inboundPort, app, _ in
            // Plaintext, straight to B's inbound listener.
            let result = try await curl(
                ["--http1.1", "-H", "l5d-client-id: admin.kube-system.serviceaccount.identity.linkerd.cluster.local"],
                url: "http://127.0.0.1:\(inboundPort)/spoof")
            #expect(result.status == 200)
            #expect(result.header("x-seen-client-id") == "none")
            #expect(app.requests.last?.head.headers["l5d-client-id"] == [])
        }
    }

    @Test("Conflicting Content-Length and Transfer-Encoding are refused with 400 and nothing reaches the application")
    func requestSmuggling() async throws {
        let metrics = ProxyMetricsRegistry()
        try await withMesh(outboundMetrics: metrics) { outboundPort, _, app, _ in
            let response = try await rawHTTPExchange(
                port: outboundPort,
                "POST /smuggle HTTP/1.1\r\nHost: api\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
                    + "0\r\n\r\nGET /hidden HTTP/1.1\r\nHost: api\r\n\r\n")
            #expect(response.hasPrefix("HTTP/1.1 400"))
            #expect(app.requests.isEmpty)
            #expect(metrics.render().contains(#"outbound_http_errors_total{error="bad request"} 1"#))
        }
    }

    @Test("A service without endpoints fails fast with 504 (gRPC: DEADLINE_EXCEEDED) and l5d-proxy-error")
    func failFastWithoutEndpoints() async throws {
        let credentials = try uncertifiedCredentials(webName)
        let service = ServiceBalancer(
            name: "api.emojivoto.svc.cluster.local:8080",
            queue: BalancerQueue(capacity: 100, failfastTimeout: .milliseconds(300)))
        service.apply(.noEndpoints(exists: true))
        let destination = try SocketAddress(ipAddress: "10.1.2.3", port: 8080)
        let metrics = ProxyMetricsRegistry()
        try await withOutboundProxy(
            originalDestination: destination, resolver: ServiceResolver(service: service), metrics: metrics,
            credentials: credentials
        ) { port, _ in
            let url = "http://127.0.0.1:\(port)/nothing"
            let http = try await curl(["--http1.1"], url: url)
            #expect(http.status == 504)
            #expect(http.header("l5d-proxy-error")?.contains("fail-fast") == true)
            let grpc = try await curl(
                ["--http2-prior-knowledge", "-H", "content-type: application/grpc", "--data-binary", "@-"],
                url: url, body: "")
            #expect(grpc.status == 200)
            #expect(grpc.header("grpc-status") == "4")
            #expect(metrics.render().contains(#"outbound_http_errors_total{error="failfast"} 2"#))
        }
    }

    @Test("Requests waiting for endpoints go out when discovery adds one; a reset replaces the set")
    func balancerFollowsDiscovery() async throws {
        let first = try await TestHTTPApp.start()
        let second = try await TestHTTPApp.start()
        let credentials = try uncertifiedCredentials(webName)
        let service = ServiceBalancer(
            name: "api.emojivoto.svc.cluster.local:8080",
            queue: BalancerQueue(capacity: 100, failfastTimeout: .seconds(3)))
        try await withOutboundProxy(
            originalDestination: try first.address, resolver: ServiceResolver(service: service),
            credentials: credentials
        ) { port, _ in
            async let waiting = curl(["--http1.1"], url: "http://127.0.0.1:\(port)/queued")
            try await Task.sleep(for: .milliseconds(200))
            service.apply(.add([Endpoint(address: try IPSocketAddress(parsing: "127.0.0.1:\(first.port)"))]))
            #expect(try await waiting.status == 200)
            #expect(first.requests.map(\.head.uri) == ["/queued"])

            service.apply(.reset([Endpoint(address: try IPSocketAddress(parsing: "127.0.0.1:\(second.port)"))]))
            for _ in 0..<3 {
                #expect(try await curl(["--http1.1"], url: "http://127.0.0.1:\(port)/after").status == 200)
            }
            #expect(second.requests.count == 3)
            #expect(first.requests.count == 1)
        }
        await first.close()
        await second.close()
    }
}

/// Sends every connection to one logical service.
struct ServiceResolver: OutboundEndpointResolver {
    let service: ServiceBalancer

    func endpoint(for originalDestination: SocketAddress) async -> OutboundEndpoint {
        OutboundEndpoint(address: originalDestination)
    }

    func immediateTarget(for originalDestination: SocketAddress) -> OutboundTarget? {
        .service(service, opaque: false)
    }
}
