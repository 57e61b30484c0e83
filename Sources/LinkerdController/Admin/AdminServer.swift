import LinkerdHTTPServer
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus
import ServiceLifecycle

/// The admin endpoints of a control-plane component, as Go's `pkg/admin` serves them (control-plane.md §1):
///
/// | Request | Answer |
/// | --- | --- |
/// | `GET /metrics` | 200, the registry in the Prometheus text format |
/// | `GET /ping` | 200 `pong\n` |
/// | `GET /ready` | 200 `ok\n` when `isReady()` holds, else 500 `not ready\n` |
/// | another method on those paths | 405 (`Allow: GET`) |
/// | any other path | 404 |
///
/// Plain HTTP/1.1 with keep-alive, at most `maximumConnections` connections at once; request bodies over 8 KiB are refused with 413 and header limits and timeouts
/// are those of `HTTPServer`. A `Service`: `run()` binds (failing if the address is taken) and serves until
/// cancelled or gracefully shut down.
public final class AdminServer: ServiceLifecycle.Service, Sendable {
    public struct Configuration: Sendable {
        /// The address to listen on; `0.0.0.0` by default.
        public var host: String
        /// The port; 9995 by default (the proxy injector's). 0 picks a free port (see `waitUntilBound()`).
        public var port: Int
        /// Connections open at once; more are closed as soon as they are accepted. 64 by default: the admin port
        /// serves a few scrapers and probes.
        public var maximumConnections: Int

        public init(host: String = "0.0.0.0", port: Int = 9995, maximumConnections: Int = 64) {
            self.host = host
            self.port = port
            self.maximumConnections = maximumConnections
        }
    }

    /// The largest request body read; admin requests carry none.
    static let maximumBodyBytes = 8 * 1024

    private let server: HTTPServer

    /// - Parameters:
    ///   - registry: the metrics served on `/metrics`.
    ///   - isReady: whether the component is ready; called on every `/ready` request, from an event loop, so it
    ///     must be quick and must not block.
    public init(
        configuration: Configuration = Configuration(), registry: PrometheusCollectorRegistry,
        isReady: @escaping @Sendable () -> Bool, logger: Logger,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        server = HTTPServer(
            name: "admin",
            configuration: HTTPServer.Configuration(
                host: configuration.host, port: configuration.port,
                maximumConnections: configuration.maximumConnections),
            security: .plaintext, responder: AdminResponder(registry: registry, isReady: isReady),
            group: eventLoopGroup, logger: logger)
    }

    public func run() async throws {
        try await server.run()
    }

    /// The port the server listens on, once `run()` has bound it.
    ///
    /// - Throws: the bind error when `run()` could not bind.
    public func waitUntilBound() async throws -> Int {
        try await server.waitUntilBound()
    }
}

private struct AdminResponder: HTTPResponder {
    let registry: PrometheusCollectorRegistry
    let isReady: @Sendable () -> Bool

    func route(_ head: HTTPRequestHead) -> HTTPRoute {
        switch head.path {
        case "/metrics", "/ping", "/ready":
            guard head.method == .GET else {
                return .respond(.text(.methodNotAllowed, "method not allowed\n", headers: ["Allow": "GET"]))
            }
            return .readBody(maximumBytes: AdminServer.maximumBodyBytes)
        default:
            return .respond(.text(.notFound, "not found\n"))
        }
    }

    func respond(
        to head: HTTPRequestHead, body: ByteBuffer, on eventLoop: any EventLoop
    ) -> EventLoopFuture<HTTPResponse> {
        let response: HTTPResponse
        switch head.path {
        case "/metrics":
            var text: [UInt8] = []
            registry.emit(into: &text)
            response = HTTPResponse(
                status: .ok, headers: ["Content-Type": "text/plain; version=0.0.4; charset=utf-8"],
                body: ByteBuffer(bytes: text))
        case "/ping":
            response = .text(.ok, "pong\n")
        default:
            response = isReady() ? .text(.ok, "ok\n") : .text(.internalServerError, "not ready\n")
        }
        return eventLoop.makeSucceededFuture(response)
    }
}
