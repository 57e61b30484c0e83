import LinkerdProxyCore
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// The outbound proxy (reference proxy §2.1, §4.6): accepts the connections iptables redirects from the
/// application, and forwards each to the endpoint an ``OutboundEndpointResolver`` chooses for its original
/// destination, over mTLS when the endpoint has an identity.
///
/// Per connection, on its event loop:
/// 1. the socket options (``TCPSocketOptions``) and its original destination; a connection without one is closed.
///    The connection does not read until it is forwarded, so nothing it sends is lost or buffered meanwhile;
/// 2. the endpoint: ``OutboundEndpointResolver/immediateEndpoint(for:)`` when it answers, else
///    ``OutboundEndpointResolver/endpoint(for:)`` in a task, back on the event loop afterwards;
/// 3. a connection to the endpoint within the outbound connect timeout: with an identity, the proxy's client TLS
///    expecting that identity (SNI = the identity, or discovery's server name), the handshake within the same
///    timeout; without, plaintext (upstream's `no_identity`, `not_provided_by_service_discovery`);
/// 4. ``TCPSplice``. A failed connection or handshake closes the application's connection.
///
/// Every protocol is forwarded as opaque TCP for now; HTTP detection and the HTTP stack are to go before the
/// endpoint is chosen (`OutboundConnectionServer`).
///
/// One ``OutboundProxy`` listens on one address; for two (`LINKERD2_PROXY_OUTBOUND_LISTEN_ADDRS`), run two that share
/// their ``ConnectionCounters`` and resolver. A swift-service-lifecycle `Service`: ``run()`` binds and serves until
/// cancelled or gracefully shut down.
public final class OutboundProxy: Service, Sendable {
    /// What the outbound proxy listens on and how it treats connections.
    public struct Settings: Sendable {
        /// Where to listen (`LINKERD2_PROXY_OUTBOUND_LISTEN_ADDRS`); port 0 picks a free one.
        public var listenAddress: SocketAddress
        /// How accepted connections' original destinations are found: ``OriginalDestinationSource/socket`` in a pod.
        public var originalDestination: OriginalDestinationSource
        /// `LINKERD2_PROXY_OUTBOUND_CONNECT_TIMEOUT`: how long connecting to an endpoint, TLS handshake included, may
        /// take.
        public var connectTimeout: TimeAmount
        /// The options of accepted connections (`LINKERD2_PROXY_OUTBOUND_ACCEPT_*`).
        public var acceptOptions: TCPSocketOptions
        /// The options of connections to endpoints (`LINKERD2_PROXY_OUTBOUND_CONNECT_*`).
        public var connectOptions: TCPSocketOptions
        /// `LINKERD2_PROXY_OUTBOUND_TCP_LISTEN_BACKLOG`; nil keeps the system's default.
        public var listenBacklog: Int?

        /// Settings with upstream's defaults: 1 s to connect, no keepalive or user timeout.
        public init(
            listenAddress: SocketAddress, originalDestination: OriginalDestinationSource = .socket,
            connectTimeout: TimeAmount = .seconds(1), acceptOptions: TCPSocketOptions = TCPSocketOptions(),
            connectOptions: TCPSocketOptions = TCPSocketOptions(), listenBacklog: Int? = nil
        ) {
            self.listenAddress = listenAddress
            self.originalDestination = originalDestination
            self.connectTimeout = connectTimeout
            self.acceptOptions = acceptOptions
            self.connectOptions = connectOptions
            self.listenBacklog = listenBacklog
        }

        /// The settings `configuration` gives for its outbound listen address `listenAddress`, with original
        /// destinations from the socket.
        ///
        /// - Throws: NIO's `SocketAddressError` when the listen address cannot be made a socket address.
        public init(configuration: ProxyConfiguration, listenAddress: IPSocketAddress) throws {
            let outbound = configuration.outbound
            self.init(
                listenAddress: try SocketAddress(listenAddress), connectTimeout: TimeAmount(outbound.connect.timeout),
                acceptOptions: TCPSocketOptions(accept: outbound.accept),
                connectOptions: TCPSocketOptions(connect: outbound.connect),
                listenBacklog: outbound.accept.listenBacklog)
        }
    }

    /// The outbound connections' counters.
    public var counters: ConnectionCounters { listener.counters }
    private let listener: ProxyListener

    /// - Parameters:
    ///   - resolver: chooses each connection's endpoint; ``OriginalDestinationResolver`` forwards to the original
    ///     destination in plaintext.
    ///   - credentials: the proxy's identity, for mTLS to meshed endpoints; connections to them are refused until it
    ///     has a certificate.
    ///   - counters: where to count connections and bytes; a new set by default.
    public init(
        settings: Settings, resolver: any OutboundEndpointResolver, credentials: ProxyCredentials,
        counters: ConnectionCounters = ConnectionCounters(), logger: Logger,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        var logger = logger
        logger[metadataKey: "direction"] = "outbound"
        let server = OutboundConnectionServer(
            originalDestination: settings.originalDestination, resolver: resolver, credentials: credentials,
            connector: UpstreamConnector(options: settings.connectOptions, timeout: settings.connectTimeout),
            logger: logger)
        listener = ProxyListener(
            name: "outbound", address: settings.listenAddress, backlog: settings.listenBacklog,
            options: settings.acceptOptions, autoRead: false, counters: counters, group: eventLoopGroup,
            logger: logger, serve: server.serve)
    }

    public func run() async throws {
        try await listener.run()
    }

    /// The port the proxy listens on, once ``run()`` has bound it.
    ///
    /// - Throws: the bind error when ``run()`` could not bind.
    public func waitUntilBound() async throws -> Int {
        try await listener.waitUntilBound()
    }
}

/// The outbound proxy's per-connection logic, from the original destination to the splice.
struct OutboundConnectionServer: Sendable {
    let originalDestination: OriginalDestinationSource
    let resolver: any OutboundEndpointResolver
    let credentials: ProxyCredentials
    let connector: UpstreamConnector
    let logger: Logger

    /// Sets up `client`, a connection just accepted (not reading), on its event loop. The future fails, closing the
    /// connection, only without an original destination; the rest starts once the connection is active (a connection
    /// to a loopback endpoint can complete before the accepted one is registered).
    func serve(_ client: any Channel) -> EventLoopFuture<Void> {
        originalDestination.originalDestination(of: client)
            .flatMapThrowing { destination in
                try client.pipeline.syncOperations.addHandler(
                    ActivationHandler { forward(client, destination: destination) })
            }
            .flatMapErrorThrowing { error in
                logger.info(
                    "closing connection",
                    metadata: ["client": "\(client.remoteAddress?.endpointText ?? "unknown")", "error": "\(error)"])
                throw error
            }
    }

    private func forward(_ client: any Channel, destination: SocketAddress) {
        let eventLoop = client.eventLoop
        let endpoint: EventLoopFuture<OutboundEndpoint>
        if let known = resolver.immediateEndpoint(for: destination) {
            endpoint = eventLoop.makeSucceededFuture(known)
        } else {
            let resolver = resolver
            endpoint = eventLoop.makeFutureWithTask { await resolver.endpoint(for: destination) }
        }
        endpoint
            .flatMap { endpoint in
                connect(to: endpoint, on: eventLoop)
            }
            .flatMapThrowing { upstream in
                try spliceAccepted(client, to: upstream)
                TLSHandshakeGate.release(in: upstream.pipeline.syncOperations)
                try client.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
            }
            .whenFailure { error in
                logger.info(
                    "closing connection",
                    metadata: [
                        "client": "\(client.remoteAddress?.endpointText ?? "unknown")",
                        "destination": "\(destination.endpointText)", "error": "\(error)",
                    ])
                client.close(promise: nil)
            }
    }

    private func connect(to endpoint: OutboundEndpoint, on eventLoop: any EventLoop) -> EventLoopFuture<any Channel> {
        guard let identity = endpoint.identity else {
            return connector.connect(to: endpoint.address, on: eventLoop, tls: nil)
        }
        guard let tls = credentials.clientConfiguration(expectedIdentity: identity, serverName: endpoint.serverName)
        else {
            return eventLoop.makeFailedFuture(ProxyConnectionError.noIdentityCertificate)
        }
        return connector.connect(to: endpoint.address, on: eventLoop, tls: tls)
    }
}

/// Calls `start` once its channel is active, then leaves the pipeline.
private final class ActivationHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    private var start: (() -> Void)?

    init(start: @escaping () -> Void) {
        self.start = start
    }

    func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()
        let start = self.start
        self.start = nil
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        start?()
    }
}
