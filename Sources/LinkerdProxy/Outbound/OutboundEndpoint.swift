import LinkerdProxyCore
import NIOCore
import NIOHTTP1

/// Where the outbound proxy sends a connection, and how.
public struct OutboundEndpoint: Hashable, Sendable {
    /// The address to connect to: the original destination, or the endpoint discovery chose for it.
    public var address: SocketAddress
    /// The TLS identity the endpoint's proxy must prove (discovery's `tls_identity`): with one, the connection is
    /// mTLS, and a server without that identity fails it; nil sends plaintext (an endpoint outside the mesh).
    public var identity: String?
    /// The SNI to send; nil sends ``identity``, as upstream does unless discovery gives a separate server name (as it
    /// must for a SPIFFE identity). Never the host name the application dialled.
    public var serverName: String?
    /// What discovery says the endpoint accepts: ``EndpointProtocolHint/opaque`` skips HTTP detection (so
    /// server-first protocols are not held up by it), ``EndpointProtocolHint/http2`` lets HTTP/1 requests to a meshed
    /// endpoint travel over one multiplexed HTTP/2 connection with `l5d-orig-proto`.
    public var protocolHint: EndpointProtocolHint

    public init(
        address: SocketAddress, identity: String? = nil, serverName: String? = nil,
        protocolHint: EndpointProtocolHint = .unknown
    ) {
        self.address = address
        self.identity = identity
        self.serverName = serverName
        self.protocolHint = protocolHint
    }

    /// How an HTTP request to this endpoint travels: HTTP/2 requests as HTTP/2; HTTP/1 requests over HTTP/2 with
    /// `l5d-orig-proto` to a meshed endpoint that accepts HTTP/2, and as HTTP/1 otherwise.
    func route(for head: HTTPRequestHead) -> UpstreamRoute {
        let upgrades = identity != nil && protocolHint == .http2
        let version: HTTPUpstreamTarget.Version = head.version.major == 2 || upgrades ? .http2 : .http1
        return UpstreamRoute(
            target: HTTPUpstreamTarget(address: address, identity: identity, serverName: serverName, version: version),
            upgradesHTTP1: upgrades)
    }
}

/// Where the outbound proxy sends the connections to one original destination.
public enum OutboundTarget: Sendable {
    /// Every connection and request to one endpoint: the original destination, or the endpoint a profile names.
    case endpoint(OutboundEndpoint)
    /// A logical service: each HTTP request (or, for opaque traffic, each connection) to the endpoint its balancer
    /// picks. `opaque` skips HTTP detection (a profile's `opaque_protocol`).
    case service(ServiceBalancer, opaque: Bool)
}

/// Chooses where the outbound proxy sends each connection, from the address the application was connecting to.
///
/// The proxy asks ``immediateTarget(for:)`` first, on the connection's event loop, and only when it has no answer
/// calls ``target(for:)`` in a task: a resolver that can answer at once (from a cache, or without looking anything
/// up) keeps the task and the hop back to the event loop off the connection's path. Resolvers that only ever name
/// one endpoint implement ``endpoint(for:)`` and ``immediateEndpoint(for:)`` instead.
public protocol OutboundEndpointResolver: Sendable {
    /// The target for connections to `originalDestination`; by default the ``endpoint(for:)``.
    func target(for originalDestination: SocketAddress) async -> OutboundTarget

    /// The target known without waiting, else nil; by default the ``immediateEndpoint(for:)``.
    func immediateTarget(for originalDestination: SocketAddress) -> OutboundTarget?

    /// The endpoint for a connection to `originalDestination`. Called from a task; it may wait for discovery. It
    /// cannot fail: without a better answer, return the original destination without identity, as upstream falls
    /// back to it.
    func endpoint(for originalDestination: SocketAddress) async -> OutboundEndpoint

    /// The endpoint for a connection to `originalDestination` when it is known without waiting, else nil. Called on
    /// an event loop, so it must not block. By default nil.
    func immediateEndpoint(for originalDestination: SocketAddress) -> OutboundEndpoint?
}

extension OutboundEndpointResolver {
    public func immediateEndpoint(for originalDestination: SocketAddress) -> OutboundEndpoint? {
        nil
    }

    public func target(for originalDestination: SocketAddress) async -> OutboundTarget {
        .endpoint(await endpoint(for: originalDestination))
    }

    public func immediateTarget(for originalDestination: SocketAddress) -> OutboundTarget? {
        immediateEndpoint(for: originalDestination).map { .endpoint($0) }
    }
}

/// Sends every connection where it was going, in plaintext: the outbound proxy without discovery.
public struct OriginalDestinationResolver: OutboundEndpointResolver {
    public init() {}

    public func endpoint(for originalDestination: SocketAddress) async -> OutboundEndpoint {
        OutboundEndpoint(address: originalDestination)
    }

    public func immediateEndpoint(for originalDestination: SocketAddress) -> OutboundEndpoint? {
        OutboundEndpoint(address: originalDestination)
    }
}

/// Sends every request of a connection to the endpoint chosen for it.
struct EndpointRouter: HTTPRequestRouter {
    let endpoint: OutboundEndpoint
    let metrics: HTTPEndpointMetrics?

    func route(_ head: HTTPRequestHead, on eventLoop: any EventLoop) -> EventLoopFuture<UpstreamRoute> {
        eventLoop.makeSucceededFuture(endpointRoute(head))
    }

    func immediateRoute(_ head: HTTPRequestHead) -> UpstreamRoute? { endpointRoute(head) }

    private func endpointRoute(_ head: HTTPRequestHead) -> UpstreamRoute {
        var route = endpoint.route(for: head)
        route.metrics = metrics
        return route
    }
}
