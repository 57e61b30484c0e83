import LinkerdCore
import LinkerdHTTPServer
import LinkerdProxyCore
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import Synchronization

/// The readiness latch behind `/ready`: not ready until ``markReady()`` (identity certified), then ready for
/// good, as upstream's latch never goes back.
public final class ProxyReadiness: Sendable {
    private let ready = Atomic(false)

    public init() {}

    public var isReady: Bool { ready.load(ordering: .acquiring) }

    public func markReady() {
        ready.store(true, ordering: .releasing)
    }
}

/// The log filter in force, read by the log handler on every message and replaced by `PUT /proxy-log-level`.
public final class LogFilterStore: Sendable {
    private let filter: Mutex<LogFilter>

    public init(_ filter: LogFilter) {
        self.filter = Mutex(filter)
    }

    public var current: LogFilter { filter.withLock { $0 } }

    public func replace(with newFilter: LogFilter) {
        filter.withLock { $0 = newFilter }
    }
}

/// The proxy's admin server (port 4191, proxy.md §6.1): `/live`, `/ready`, `/metrics` (gzip when asked),
/// `/proxy-log-level` (GET, PUT; localhost only) and `/shutdown` (POST; localhost only, when enabled), as
/// ``AdminRoute`` decides. Plain HTTP/1.1 on the shared ``HTTPServer``, with its header limits and deadlines; bodies
/// over 4 KiB are refused with 413. A `Service`: `run()` binds and serves until cancelled or gracefully shut down.
public final class ProxyAdminServer: ServiceLifecycle.Service, Sendable {
    /// The largest body read: a log filter.
    static let maximumBodyBytes = 4 * 1024

    private let server: HTTPServer

    /// - Parameters:
    ///   - host: the address to listen on (`LINKERD2_PROXY_ADMIN_LISTEN_ADDR`).
    ///   - port: the port; 0 picks a free one (see ``waitUntilBound()``).
    ///   - shutdownEnabled: `LINKERD2_PROXY_SHUTDOWN_ENDPOINT_ENABLED`.
    ///   - metrics: renders the Prometheus exposition; called on an event loop, so it must not block.
    ///   - onShutdown: starts the proxy's graceful shutdown; called once per accepted `POST /shutdown`.
    public init(
        host: String, port: Int, shutdownEnabled: Bool, readiness: ProxyReadiness, logFilter: LogFilterStore,
        metrics: @escaping @Sendable () -> String, onShutdown: @escaping @Sendable () -> Void, logger: Logger,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        var configuration = HTTPServer.Configuration(host: host, port: port, maximumConnections: 64)
        configuration.compressesResponses = true
        let responder = ProxyAdminResponder(
            shutdownEnabled: shutdownEnabled, readiness: readiness, logFilter: logFilter, metrics: metrics,
            onShutdown: onShutdown, logger: logger)
        server = HTTPServer(
            name: "admin", configuration: configuration, security: .plaintext, responder: responder,
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

private struct ProxyAdminResponder: HTTPResponder {
    let shutdownEnabled: Bool
    let readiness: ProxyReadiness
    let logFilter: LogFilterStore
    let metrics: @Sendable () -> String
    let onShutdown: @Sendable () -> Void
    let logger: Logger

    func route(_ head: HTTPRequestHead) -> HTTPRoute {
        route(head, from: nil)
    }

    func route(_ head: HTTPRequestHead, from peer: SocketAddress?) -> HTTPRoute {
        let isFromLoopback = peer?.ipAddress.flatMap { try? IPAddress(parsing: $0) }?.isLoopback ?? false
        let decision = AdminRoute.decide(
            method: head.method.rawValue, path: head.path, isFromLoopback: isFromLoopback,
            isReady: readiness.isReady, shutdownEnabled: shutdownEnabled)
        guard case .answer(let status, let body, let allow) = decision else {
            return .readBody(maximumBytes: ProxyAdminServer.maximumBodyBytes)
        }
        var headers = HTTPHeaders()
        if let allow {
            headers.add(name: "Allow", value: allow)
        }
        return .respond(.text(HTTPResponseStatus(statusCode: status), body, headers: headers))
    }

    func respond(
        to head: HTTPRequestHead, body: ByteBuffer, on eventLoop: any EventLoop
    ) -> EventLoopFuture<HTTPResponse> {
        // Only the routes that read a body get here, and `route` let them through from this client already.
        let decision = AdminRoute.decide(
            method: head.method.rawValue, path: head.path, isFromLoopback: true, isReady: readiness.isReady,
            shutdownEnabled: shutdownEnabled)
        let response: HTTPResponse
        switch decision {
        case .metrics:
            response = .text(.ok, metrics())
        case .readLogFilter:
            response = .text(.ok, logFilter.current.description + "\n")
        case .replaceLogFilter:
            let text = String(buffer: body).trimmingWhitespace
            do throws(ParseError) {
                let filter = try LogFilter(parsing: text)
                logFilter.replace(with: filter)
                logger.info("log filter changed through the admin interface", metadata: ["filter": "\(filter)"])
                response = HTTPResponse(status: .noContent)
            } catch {
                response = .text(.badRequest, "\(error)\n")
            }
        case .shutdown:
            logger.notice("Received shutdown via admin interface")
            onShutdown()
            response = .text(.ok, "shutdown\n")
        case .answer(let status, let text, _):
            response = .text(HTTPResponseStatus(statusCode: status), text)
        }
        return eventLoop.makeSucceededFuture(response)
    }
}
