import NIOCore

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

    public init(address: SocketAddress, identity: String? = nil, serverName: String? = nil) {
        self.address = address
        self.identity = identity
        self.serverName = serverName
    }
}

/// Chooses where the outbound proxy sends each connection, from the address the application was connecting to.
///
/// The proxy asks ``immediateEndpoint(for:)`` first, on the connection's event loop, and only when it has no answer
/// calls ``endpoint(for:)`` in a task: a resolver that can answer at once (from a cache, or without looking anything
/// up) keeps the task and the hop back to the event loop off the connection's path.
public protocol OutboundEndpointResolver: Sendable {
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
