import LinkerdProxyCore
import NIOCore
import NIOHTTP1

/// Where one request goes, as an ``HTTPRequestRouter`` decides it.
struct UpstreamRoute: Sendable {
    var target: HTTPUpstreamTarget
    /// Whether an HTTP/1 request (not an upgrade) travels over HTTP/2 with `l5d-orig-proto` (a meshed peer with an
    /// HTTP/2 hint, §2.7); ``target`` is then HTTP/2 for such requests.
    var upgradesHTTP1: Bool = false
    /// The metrics of the endpoint the request goes to; nil records nothing.
    var metrics: HTTPEndpointMetrics?
    /// Called once per routed request: with the time from the request's start to the first byte of the response's
    /// body (or its end), the balancer's RTT sample; or with nil when the request failed.
    var onComplete: (@Sendable (_ rttNanoseconds: UInt64?) -> Void)?

    init(
        target: HTTPUpstreamTarget, upgradesHTTP1: Bool = false, metrics: HTTPEndpointMetrics? = nil,
        onComplete: (@Sendable (_ rttNanoseconds: UInt64?) -> Void)? = nil
    ) {
        self.target = target
        self.upgradesHTTP1 = upgradesHTTP1
        self.metrics = metrics
        self.onComplete = onComplete
    }
}

/// Decides where each HTTP request of a connection goes.
protocol HTTPRequestRouter: Sendable {
    /// The route for `head` (already rewritten by the proxy's header rules), on `eventLoop`. The future fails with an
    /// ``HTTPProxyError`` to have the proxy answer the request itself (fail-fast, load shed).
    func route(_ head: HTTPRequestHead, on eventLoop: any EventLoop) -> EventLoopFuture<UpstreamRoute>

    /// The route for `head` when it is known at once, which spares the request a future; nil means ask
    /// ``route(_:on:)``.
    func immediateRoute(_ head: HTTPRequestHead) -> UpstreamRoute?
}

extension HTTPRequestRouter {
    func immediateRoute(_ head: HTTPRequestHead) -> UpstreamRoute? { nil }
}

/// Which proxy side serves the requests of a connection, and what that side knows of it.
enum HTTPServerSide: Sendable {
    /// Inbound: `clientIdentity` is the identity a terminated mTLS client proved (nil for plaintext or no
    /// certificate), which `l5d-client-id` carries; error details go only to meshed clients.
    case inbound(clientIdentity: String?)
    /// Outbound: error details (`l5d-proxy-error`) go to the application unless `informationalHeaders` is off
    /// (ingress mode, `LINKERD2_PROXY_OUTBOUND_DISABLE_INFORMATIONAL_HEADERS`).
    case outbound(informationalHeaders: Bool)

    var informationalHeaders: Bool {
        switch self {
        case .inbound(let clientIdentity): clientIdentity != nil
        case .outbound(let informationalHeaders): informationalHeaders
        }
    }
}

/// Sends every request to one address: the inbound proxy's route to the application (the original destination), in
/// plaintext, over HTTP/2 for HTTP/2 requests and HTTP/1 otherwise, as the request arrived after any downgrade.
struct FixedAddressRouter: HTTPRequestRouter {
    let address: SocketAddress
    let metrics: HTTPEndpointMetrics?

    func route(_ head: HTTPRequestHead, on eventLoop: any EventLoop) -> EventLoopFuture<UpstreamRoute> {
        eventLoop.makeSucceededFuture(fixedRoute(head))
    }

    func immediateRoute(_ head: HTTPRequestHead) -> UpstreamRoute? { fixedRoute(head) }

    private func fixedRoute(_ head: HTTPRequestHead) -> UpstreamRoute {
        let version: HTTPUpstreamTarget.Version = head.version.major == 2 ? .http2 : .http1
        return UpstreamRoute(
            target: HTTPUpstreamTarget(address: address, identity: nil, serverName: nil, version: version),
            metrics: metrics)
    }
}
