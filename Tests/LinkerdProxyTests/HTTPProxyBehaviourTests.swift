import LinkerdProxy
import LinkerdProxyCore
import LinkerdTestSupport
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOPosix
import ServiceLifecycle
import Testing

/// The outbound proxy alone in front of the test application (original destination, plaintext): how it treats resets,
/// oversized and abusive clients, and shutdown.
@Suite("The HTTP proxy's edges", .serialized, .timeLimit(.minutes(1)))
struct HTTPProxyBehaviourTests {
    let localName = meshIdentity("web", "emojivoto")

    @Test("An HTTP/2 reset from the application reaches the client with its code")
    func http2ResetPropagated() async throws {
        let app = try await TestHTTPApp.start()
        try await withOutboundProxy(
            originalDestination: try app.address, credentials: try uncertifiedCredentials(localName)
        ) { port, _ in
            let error = await #expect(throws: CurlFailed.self) {
                try await curl(["--http2-prior-knowledge"], url: "http://127.0.0.1:\(port)/reset")
            }
            #expect(error?.errorOutput.contains("INTERNAL_ERROR") == true, "\(String(describing: error))")
            // The connection is still good for the next stream.
            let next = try await curl(["--http2-prior-knowledge"], url: "http://127.0.0.1:\(port)/ok")
            #expect(next.status == 200)
        }
        await app.close()
    }

    @Test("An upstream HTTP/1 connection is reused while fresh and closed once idle past the pool's timeout")
    func idleUpstreamConnectionsExpire() async throws {
        let app = try await TestHTTPApp.start()
        try await withOutboundProxy(
            originalDestination: try app.address, http1IdleTimeout: .milliseconds(300),
            credentials: try uncertifiedCredentials(localName)
        ) { port, _ in
            // One client connection, so one event loop and its pool, for all three requests.
            let client = try await TestClient.connect(port: port)
            func exchange(_ path: String, answered count: Int) async throws {
                try await client.send("GET /\(path) HTTP/1.1\r\nHost: app\r\n\r\n")
                try await eventually("\(count) responses") {
                    client.received.text.split(separator: "HTTP/1.1 200").count == count
                }
            }
            try await exchange("first", answered: 1)
            try await exchange("second", answered: 2)
            #expect(app.connections == 1, "the second request reuses the pooled connection")
            try await Task.sleep(for: .seconds(1))
            try await exchange("third", answered: 3)
            #expect(app.connections == 2, "the idle connection was closed; the third request needed a new one")
        }
        await app.close()
    }

    @Test("Headers over the limit are refused with a 4xx before anything is forwarded")
    func oversizedHeaders() async throws {
        let app = try await TestHTTPApp.start()
        try await withOutboundProxy(
            originalDestination: try app.address, credentials: try uncertifiedCredentials(localName)
        ) { port, _ in
            let huge = String(repeating: "a", count: 100 * 1024)
            let http1 = try await curl(["--http1.1", "-H", "x-huge: \(huge)"], url: "http://127.0.0.1:\(port)/big")
            #expect((400..<500).contains(http1.status))
            let http2 = await #expect(throws: CurlFailed.self) {
                try await curl(
                    ["--http2-prior-knowledge", "-H", "x-huge: \(huge)"], url: "http://127.0.0.1:\(port)/big")
            }
            #expect(http2 != nil)
            #expect(app.requests.isEmpty)
        }
        await app.close()
    }

    @Test("A client resetting streams as fast as it opens them (rapid reset) loses its connection")
    func rapidResetFlood() async throws {
        let app = try await TestHTTPApp.start()
        try await withOutboundProxy(
            originalDestination: try app.address, credentials: try uncertifiedCredentials(localName)
        ) { port, _ in
            let connection = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(host: "127.0.0.1", port: port).get()
            let multiplexer = try await connection.eventLoop.submit {
                try connection.pipeline.syncOperations.configureHTTP2Pipeline(
                    mode: .client, connectionConfiguration: .init(), streamConfiguration: .init()
                ) { $0.close() }
            }.get()
            var opened = 0
            for _ in 0..<1000 where connection.isActive {
                guard
                    let stream = try? await multiplexer.createStreamChannel({ stream in
                        stream.eventLoop.makeCompletedFuture {
                            try stream.pipeline.syncOperations.addHandler(
                                HTTP2FramePayloadToHTTP1ClientCodec(httpProtocol: .http))
                        }
                    }).get()
                else { break }
                var headers = HTTPHeaders()
                headers.add(name: "host", value: "api")
                let head = HTTPRequestHead(version: .http2, method: .GET, uri: "/slow", headers: headers)
                try? await stream.writeAndFlush(HTTPClientRequestPart.head(head)).get()
                try? await stream.close()
                opened += 1
            }
            try await eventually("the proxy closes the flooding connection") { !connection.isActive }
            #expect(opened < 1000)
        }
        await app.close()
    }

    @Test("Requests beyond the in-flight limit are shed with 503 at once")
    func loadShedAtInFlightLimit() async throws {
        let app = try await TestHTTPApp.start()
        var settings = OutboundProxy.Settings(
            listenAddress: try SocketAddress(ipAddress: "127.0.0.1", port: 0),
            originalDestination: .fixed(try app.address))
        settings.httpServer.maxInFlightRequests = 1
        let metrics = ProxyMetricsRegistry()
        let proxy = OutboundProxy(
            settings: settings, resolver: OriginalDestinationResolver(),
            credentials: try uncertifiedCredentials(localName), metrics: metrics, logger: Logger(label: "test.outbound")
        )
        try await whileServing({ try await proxy.run() }, bound: { try await proxy.waitUntilBound() }) { port in
            async let held = curl(["--http1.1"], url: "http://127.0.0.1:\(port)/hold")
            try await eventually("the first request is in flight") { !app.requests.isEmpty }
            let shed = try await curl(["--http1.1"], url: "http://127.0.0.1:\(port)/second")
            #expect(shed.status == 503, "\(shed)")
            #expect(shed.header("l5d-proxy-error")?.contains("request limit") == true)
            #expect(metrics.errors.count(.loadShed, direction: .outbound, layer: .http) == 1)
            #expect(try await held.status == 200)
            // The limit counts requests in flight, not requests served.
            #expect(try await curl(["--http1.1"], url: "http://127.0.0.1:\(port)/third").status == 200)
        }
        await app.close()
    }

    @Test("Graceful shutdown finishes the request in flight, then refuses new connections")
    func gracefulShutdownDrains() async throws {
        let app = try await TestHTTPApp.start()
        let proxy = OutboundProxy(
            settings: OutboundProxy.Settings(
                listenAddress: try SocketAddress(ipAddress: "127.0.0.1", port: 0),
                originalDestination: .fixed(try app.address)),
            resolver: OriginalDestinationResolver(), credentials: try uncertifiedCredentials(localName),
            logger: Logger(label: "test.outbound"))
        let group = ServiceGroup(services: [proxy], logger: Logger(label: "test.group"))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            let port = try await proxy.waitUntilBound()
            async let inFlight = curl(["--http1.1"], url: "http://127.0.0.1:\(port)/slow")
            try await eventually("the request reaches the application") { !app.requests.isEmpty }
            await group.triggerGracefulShutdown()
            let response = try await inFlight
            #expect(response.status == 200)
            #expect(response.header("x-seen-uri") == "/slow-done")
            // The service group ends once the connection is done.
            try await tasks.next()
            await #expect(throws: CurlFailed.self) {
                try await curl(["--http1.1"], url: "http://127.0.0.1:\(port)/late")
            }
        }
        await app.close()
    }
}
