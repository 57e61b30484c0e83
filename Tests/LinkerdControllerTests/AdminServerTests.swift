import AsyncHTTPClient
import Foundation
import LinkerdController
import LinkerdTestSupport
import Logging
import Metrics
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus
import ServiceLifecycle
import Testing

@Suite("AdminServer endpoints on a real socket", .timeLimit(.minutes(1)))
struct AdminServerTests {
    @Test func servesMetricsPingAndReadiness() async throws {
        let registry = PrometheusCollectorRegistry()
        Counter(label: "test_requests_total", factory: PrometheusMetricsFactory(registry: registry)).increment(by: 3)
        let ready = Locked(false)
        let server = AdminServer(
            configuration: .init(host: "127.0.0.1", port: 0), registry: registry, isReady: { ready.value },
            logger: Logger(label: "test.admin"))
        try await withRunning(server) { port in
            let metrics = try await get(port, "/metrics")
            #expect(metrics.status == 200)
            #expect(metrics.headers.first(name: "Content-Type")?.hasPrefix("text/plain; version=0.0.4") == true)
            #expect(metrics.text.contains("test_requests_total 3"))

            let ping = try await get(port, "/ping")
            #expect(ping.status == 200)
            #expect(ping.text == "pong\n")

            let notReady = try await get(port, "/ready")
            #expect(notReady.status == 500)
            #expect(notReady.text == "not ready\n")
            ready.withLock { $0 = true }
            let isReady = try await get(port, "/ready?verbose=1")
            #expect(isReady.status == 200)
            #expect(isReady.text == "ok\n")

            #expect(try await get(port, "/debug/pprof").status == 404)
            #expect(try await get(port, "/").status == 404)
            let post = try await get(port, "/ping", method: .POST, body: Data("x".utf8))
            #expect(post.status == 405)
            #expect(post.headers.first(name: "Allow") == "GET")
            let hugeHeader = try await get(port, "/ping", headers: ["X-Padding": String(repeating: "a", count: 40_000)])
            #expect(hugeHeader.status == 400)
            let tooLarge = try await get(
                port, "/metrics", body: Data(count: 64 * 1024))
            #expect(tooLarge.status == 413)
        }
    }

    @Test func connectionsBeyondTheLimitAreClosed() async throws {
        let server = AdminServer(
            configuration: .init(host: "127.0.0.1", port: 0, maximumConnections: 2),
            registry: PrometheusCollectorRegistry(), isReady: { true }, logger: Logger(label: "test.admin"))
        try await withRunning(server) { port in
            let first = try await RawConnection(port: port)
            let second = try await RawConnection(port: port)
            for connection in [first, second] {
                try await connection.send("GET /ping HTTP/1.1\r\nHost: admin\r\n\r\n")
                try await eventually("a pong") { connection.received.contains("pong\n") }
            }
            let third = try await RawConnection(port: port)
            // The server may close it before the request is written; either way nothing is answered.
            try? await third.send("GET /ping HTTP/1.1\r\nHost: admin\r\n\r\n")
            try await eventually("the third connection is closed") { third.closed }
            #expect(third.received.isEmpty)
            try await first.close()
            // The slot frees once the server sees the close; until then new connections are refused.
            try await eventually("a new connection is served") {
                let next = try await RawConnection(port: port)
                try? await next.send("GET /ping HTTP/1.1\r\nHost: admin\r\n\r\n")
                try? await eventually("an answer or a close", timeout: .seconds(2)) {
                    next.received.contains("pong\n") || next.closed
                }
                let served = next.received.contains("pong\n")
                try? await next.close()
                return served
            }
            try await second.close()
        }
    }

    @Test func bindFailureIsReported() async throws {
        let first = AdminServer(
            configuration: .init(host: "127.0.0.1", port: 0), registry: PrometheusCollectorRegistry(),
            isReady: { true }, logger: Logger(label: "test.admin"))
        try await withRunning(first) { port in
            let second = AdminServer(
                configuration: .init(host: "127.0.0.1", port: port), registry: PrometheusCollectorRegistry(),
                isReady: { true }, logger: Logger(label: "test.admin"))
            await #expect(throws: (any Error).self) { try await second.run() }
            await #expect(throws: (any Error).self) { _ = try await second.waitUntilBound() }
        }
    }

    @Test func gracefulShutdownStopsTheServer() async throws {
        let server = AdminServer(
            configuration: .init(host: "127.0.0.1", port: 0), registry: PrometheusCollectorRegistry(),
            isReady: { true }, logger: Logger(label: "test.admin"))
        let group = ServiceGroup(services: [server], logger: Logger(label: "test.group"))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            let port = try await server.waitUntilBound()
            #expect(try await get(port, "/ping").status == 200)
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            // The port is closed (a plain connect: the HTTP client would retry until its timeout).
            await #expect(throws: (any Error).self) {
                _ = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                    .connect(host: "127.0.0.1", port: port).get()
            }
        }
    }
}

private struct Reply {
    var status: Int
    var headers: HTTPHeaders
    var text: String
}

private func get(
    _ port: Int, _ path: String, method: HTTPMethod = .GET, headers: HTTPHeaders = [:], body: Data? = nil
) async throws -> Reply {
    var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
    request.method = method
    request.headers = headers
    if let body {
        request.body = .bytes(ByteBuffer(bytes: body))
    }
    let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
    let bytes = try await response.body.collect(upTo: 1024 * 1024)
    return Reply(status: Int(response.status.code), headers: response.headers, text: String(buffer: bytes))
}

/// Runs the server for the duration of `body`, then cancels it and waits for it to return.
private func withRunning(_ server: AdminServer, _ body: (Int) async throws -> Void) async throws {
    try await whileServing({ try await server.run() }, bound: { try await server.waitUntilBound() }, body)
}
