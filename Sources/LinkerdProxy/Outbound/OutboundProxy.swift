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
/// 3. unless the endpoint is opaque, HTTP detection within the outbound detect timeout. HTTP (HTTP/1 request line,
///    HTTP/2 preface) is served by the HTTP proxy (``HTTPProxyServerHandler``), each request forwarded to the
///    endpoint over pooled connections, HTTP/1 to a meshed HTTP/2 endpoint over HTTP/2 with `l5d-orig-proto`;
///    anything else, or nothing within the timeout, continues as opaque TCP;
/// 4. for opaque TCP, a connection to the endpoint within the outbound connect timeout: with an identity, the
///    proxy's client TLS expecting that identity (SNI = the identity, or discovery's server name), the handshake
///    within the same timeout; without, plaintext (upstream's `no_identity`, `not_provided_by_service_discovery`);
///    then ``TCPSplice``. A failed connection or handshake closes the application's connection.
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
        /// `LINKERD2_PROXY_OUTBOUND_DETECT_TIMEOUT`: how long HTTP detection waits for the application's first bytes
        /// before the connection continues as opaque TCP.
        public var detectTimeout: TimeAmount
        /// Whether synthesized errors carry `l5d-proxy-error` (off in ingress mode, or with
        /// `LINKERD2_PROXY_OUTBOUND_DISABLE_INFORMATIONAL_HEADERS`).
        public var informationalHeaders = true
        /// `LINKERD2_PROXY_OUTBOUND_MAX_IDLE_CONNS_PER_ENDPOINT` and `..._OUTBOUND_HTTP1_CONNECTION_POOL_IDLE_TIMEOUT`.
        public var http1IdleTimeout: TimeAmount = .seconds(3)
        public var http1MaxIdlePerEndpoint = 10_000
        /// The HTTP server's settings (`…_SERVER_HTTP2_*`, `…_MAX_IN_FLIGHT`).
        public var httpServer = HTTPServerSettings()

        /// Settings with upstream's defaults: 1 s to connect, 10 s to detect, no keepalive or user timeout.
        public init(
            listenAddress: SocketAddress, originalDestination: OriginalDestinationSource = .socket,
            connectTimeout: TimeAmount = .seconds(1), detectTimeout: TimeAmount = .seconds(10),
            acceptOptions: TCPSocketOptions = TCPSocketOptions(),
            connectOptions: TCPSocketOptions = TCPSocketOptions(), listenBacklog: Int? = nil
        ) {
            self.listenAddress = listenAddress
            self.originalDestination = originalDestination
            self.connectTimeout = connectTimeout
            self.detectTimeout = detectTimeout
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
                detectTimeout: TimeAmount(outbound.detectTimeout),
                acceptOptions: TCPSocketOptions(accept: outbound.accept),
                connectOptions: TCPSocketOptions(connect: outbound.connect),
                listenBacklog: outbound.accept.listenBacklog)
            informationalHeaders = !(outbound.disableInformationalHeaders || outbound.ingressMode)
            http1IdleTimeout = TimeAmount(outbound.http1Pool.idleTimeout)
            http1MaxIdlePerEndpoint = outbound.http1Pool.maxIdlePerEndpoint
            httpServer = HTTPServerSettings(
                http2: outbound.http2Server, maxInFlightRequests: outbound.maxInFlightRequests)
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
    ///   - acceptsAfter: awaited after binding, before accepting (``ProxyApp`` waits for the first certificate);
    ///     nil accepts at once.
    ///   - metrics: where the request and TCP metrics go; nil records none.
    public init(
        settings: Settings, resolver: any OutboundEndpointResolver, credentials: ProxyCredentials,
        counters: ConnectionCounters = ConnectionCounters(), metrics: ProxyMetricsRegistry? = nil,
        acceptsAfter: (@Sendable () async throws -> Void)? = nil, logger: Logger,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        var logger = logger
        logger[metadataKey: "direction"] = "outbound"
        let connector = UpstreamConnector(options: settings.connectOptions, timeout: settings.connectTimeout)
        let errors = ProxyErrorRecorder(metrics: metrics?.errors, direction: .outbound)
        let http = HTTPProxyServer(
            pools: HTTPUpstreamPools(
                connector: connector, credentials: credentials, idleTimeout: settings.http1IdleTimeout,
                maximumIdlePerTarget: settings.http1MaxIdlePerEndpoint),
            settings: settings.httpServer, errors: errors, logger: logger)
        let server = OutboundConnectionServer(
            settings: settings, resolver: resolver, credentials: credentials, connector: connector, http: http,
            metrics: metrics, errors: errors, logger: logger)
        listener = ProxyListener(
            name: "outbound", address: settings.listenAddress, backlog: settings.listenBacklog,
            options: settings.acceptOptions, autoRead: false, counters: counters, group: eventLoopGroup,
            logger: logger, acceptsAfter: acceptsAfter, serve: server.serve)
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
    let settings: OutboundProxy.Settings
    let resolver: any OutboundEndpointResolver
    let credentials: ProxyCredentials
    let connector: UpstreamConnector
    let http: HTTPProxyServer
    let metrics: ProxyMetricsRegistry?
    let errors: ProxyErrorRecorder
    let logger: Logger

    /// Sets up `client`, a connection just accepted (not reading), on its event loop. The future fails, closing the
    /// connection, only without an original destination; the rest starts once the connection is active (a connection
    /// to a loopback endpoint can complete before the accepted one is registered).
    func serve(_ client: any Channel) -> EventLoopFuture<Void> {
        settings.originalDestination.originalDestination(of: client)
            .flatMapThrowing { destination in
                if let metrics {
                    client.attachTransportMetrics(
                        metrics.transport(
                            ProxyMetricLabels.acceptedTransport(direction: "outbound", destination: destination),
                            now: NIODeadline.now().uptimeNanoseconds))
                }
                try client.pipeline.syncOperations.addHandler(
                    ActivationHandler { forward(client, destination: destination) })
            }
            .flatMapErrorThrowing { error in
                errors.connection(closedBy: error)
                logger.info(
                    "closing connection",
                    metadata: ["client": "\(client.remoteAddress?.endpointText ?? "unknown")", "error": "\(error)"])
                throw error
            }
    }

    private func forward(_ client: any Channel, destination: SocketAddress) {
        let eventLoop = client.eventLoop
        let target: EventLoopFuture<OutboundTarget>
        if let known = resolver.immediateTarget(for: destination) {
            target = eventLoop.makeSucceededFuture(known)
        } else {
            let resolver = resolver
            target = eventLoop.makeFutureWithTask { await resolver.target(for: destination) }
        }
        target.assumeIsolated().whenComplete { result in
            if case .success(.service(let service, _)) = result {
                service.connectionOpened()
                client.closeFuture.whenComplete { _ in service.connectionClosed() }
            }
            // The resolver cannot fail; the future can only fail if the event loop is shutting down.
            switch result {
            case .failure:
                client.close(promise: nil)
            case .success(.endpoint(let endpoint)) where endpoint.protocolHint == .opaque:
                splice(client, destination: destination, to: .endpoint(endpoint))
            case .success(.service(let service, opaque: true)):
                splice(client, destination: destination, to: .service(service, opaque: true))
            case .success(let target):
                detect(client, destination: destination, target: target)
            }
        }
    }

    /// Runs HTTP detection on the application's first bytes, then serves HTTP or splices.
    private func detect(_ client: any Channel, destination: SocketAddress, target: OutboundTarget) {
        let router: any HTTPRequestRouter =
            switch target {
            case .endpoint(let endpoint):
                EndpointRouter(
                    endpoint: endpoint,
                    metrics: metrics?.httpEndpoint(
                        ProxyMetricLabels.outbound(endpoint: endpoint, authority: nil),
                        now: NIODeadline.now().uptimeNanoseconds))
            case .service(let service, _): service
            }
        let detection = ProtocolDetectionHandler(mode: .http, timeout: settings.detectTimeout) { detected, _ in
            switch detected {
            case .http1, .http2:
                return client.eventLoop.makeCompletedFuture {
                    try http.configure(
                        client, version: detected == .http2 ? .http2 : .http1,
                        side: .outbound(informationalHeaders: settings.informationalHeaders), router: router)
                }
            case .tls, .opaque, .timedOut:
                return splice(client, destination: destination, to: target)
            }
        }
        do {
            try client.pipeline.syncOperations.addHandler(detection)
            try client.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
            client.read()
        } catch {
            logClosing(client, destination, error)
            client.close(promise: nil)
        }
    }

    /// Connects to the target's endpoint (for a service, the one its balancer picks for this connection, the
    /// connection time its RTT sample) and splices; a failure closes the application's connection.
    @discardableResult
    private func splice(
        _ client: any Channel, destination: SocketAddress, to target: OutboundTarget
    ) -> EventLoopFuture<Void> {
        let eventLoop = client.eventLoop
        let upstream: EventLoopFuture<any Channel>
        switch target {
        case .endpoint(let endpoint):
            upstream = connect(to: endpoint, on: eventLoop)
        case .service(let service, _):
            upstream = service.endpoint(on: eventLoop).flatMap { pick in
                let started = NIODeadline.now()
                return connect(to: OutboundEndpoint(pick), on: eventLoop).always { result in
                    let rtt = (NIODeadline.now() - started).nanoseconds
                    service.finished(
                        pick.address, rttNanoseconds: (try? result.get()) != nil ? UInt64(max(rtt, 0)) : nil)
                }
            }
        }
        let spliced = upstream.flatMapThrowing { upstream in
            try spliceAccepted(client, to: upstream)
            TLSHandshakeGate.release(in: upstream.pipeline.syncOperations)
            try client.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
        }
        spliced.whenFailure { error in
            logClosing(client, destination, error)
            client.close(promise: nil)
        }
        return spliced
    }

    /// Counts and logs the error that closes `client`.
    private func logClosing(_ client: any Channel, _ destination: SocketAddress, _ error: any Error) {
        errors.connection(closedBy: error)
        logger.info(
            "closing connection",
            metadata: [
                "client": "\(client.remoteAddress?.endpointText ?? "unknown")",
                "destination": "\(destination.endpointText)", "error": "\(error)",
            ])
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
