import Foundation
import LinkerdHTTPServer
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

/// The proxy injector's HTTPS endpoint (control-plane.md §2.2): AdmissionReviews are `POST`ed to `/` and answered
/// by an `AdmissionHandler`.
///
/// - TLS only. Each new connection uses the `TLSCredentialStore`'s context of that moment, so a renewed certificate
///   is served without a restart while established connections keep theirs; connections are refused (closed) while
///   the store has no certificate. The minimum TLS version is the store's (`minimumTLSVersion`, TLS 1.3 unless
///   configured otherwise, as the Go injector).
/// - HTTP/1.1 with keep-alive. `POST /` only: other paths are answered 404, other methods on `/` 405.
/// - A body over `maximumBodyBytes` (10 MB, as upstream) is answered 413 and the connection closed, without
///   decoding anything. Header size limits, the header read timeout (15 s, Go's `ReadHeaderTimeout`) and the limit
///   of open connections (`maximumConnections`) are those of `HTTPServer`.
/// - Reviews are decided on the connection's event loop; only a namespace or owner lookup that misses its cache
///   runs in a task. Events are emitted in the background after the answer is ready.
///
/// A `Service`: `run()` binds, serves until cancelled or gracefully shut down (finishing requests in progress),
/// and returns when every connection is closed.
public final class WebhookServer: ServiceLifecycle.Service, Sendable {
    public struct Configuration: Sendable {
        /// `0.0.0.0` by default.
        public var host: String
        /// 8443 by default (the injector's `-addr :8443`); 0 picks a free port (see `waitUntilBound()`).
        public var port: Int
        /// The largest AdmissionReview accepted: 10 MB by default.
        public var maximumBodyBytes: Int
        /// From a connection's start, or a request's first byte, to its complete head: 15 s by default.
        public var headerReadTimeout: TimeAmount
        /// Connections open at once; more are closed as soon as they are accepted: 1,024 by default.
        public var maximumConnections: Int

        public init(
            host: String = "0.0.0.0", port: Int = 8443, maximumBodyBytes: Int = 10 * 1024 * 1024,
            headerReadTimeout: TimeAmount = .seconds(15), maximumConnections: Int = 1024
        ) {
            self.host = host
            self.port = port
            self.maximumBodyBytes = maximumBodyBytes
            self.headerReadTimeout = headerReadTimeout
            self.maximumConnections = maximumConnections
        }
    }

    private let server: HTTPServer

    public init(
        configuration: Configuration = Configuration(), credentials: TLSCredentialStore, handler: AdmissionHandler,
        logger: Logger, eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        var serverConfiguration = HTTPServer.Configuration(
            host: configuration.host, port: configuration.port, maximumConnections: configuration.maximumConnections)
        serverConfiguration.headerReadTimeout = configuration.headerReadTimeout
        server = HTTPServer(
            name: "webhook", configuration: serverConfiguration,
            security: .tls { credentials.sslContext },
            responder: WebhookResponder(handler: handler, maximumBodyBytes: configuration.maximumBodyBytes),
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

    /// How many connections have been accepted since the start (refused ones included).
    public var acceptedConnections: Int {
        server.acceptedConnections
    }
}

private struct WebhookResponder: HTTPResponder {
    let handler: AdmissionHandler
    let maximumBodyBytes: Int

    func route(_ head: HTTPRequestHead) -> HTTPRoute {
        guard head.path == "/" else {
            return .respond(.text(.notFound, "not found\n"))
        }
        guard head.method == .POST else {
            return .respond(.text(.methodNotAllowed, "method not allowed\n", headers: ["Allow": "POST"]))
        }
        return .readBody(maximumBytes: maximumBodyBytes)
    }

    func respond(
        to head: HTTPRequestHead, body: ByteBuffer, on eventLoop: any EventLoop
    ) -> EventLoopFuture<HTTPResponse> {
        let handler = handler
        switch handler.begin(Data(body.readableBytesView)) {
        case .finished(let outcome):
            handler.emitEventsInBackground(of: outcome)
            return eventLoop.makeSucceededFuture(Self.response(outcome))
        case .pending(let pending):
            return eventLoop.makeFutureWithTask {
                let outcome = await handler.complete(pending)
                handler.emitEventsInBackground(of: outcome)
                return Self.response(outcome)
            }
        }
    }

    private static func response(_ outcome: AdmissionOutcome) -> HTTPResponse {
        var headers = HTTPHeaders()
        if !outcome.body.isEmpty {
            headers.add(name: "Content-Type", value: outcome.statusCode == 200 ? "application/json" : "text/plain")
        }
        return HTTPResponse(
            status: HTTPResponseStatus(statusCode: outcome.statusCode), headers: headers,
            body: ByteBuffer(bytes: outcome.body))
    }
}
