import LinkerdCore
import LinkerdProxyCore
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// How the inbound proxy treated a connection's TLS, as upstream labels inbound connections.
public enum InboundTLS: Hashable, Sendable {
    /// The ClientHello named the proxy's identity: the proxy terminated mTLS. `clientIdentity` is the identity the
    /// client's certificate proved (`tls="true",client_id=…`), nil when the client presented no certificate; the HTTP
    /// stack puts it in `l5d-client-id`.
    case terminated(clientIdentity: String?)
    /// A ClientHello for another server name: passed to the application as it came, undecrypted
    /// (`tls="opaque",sni=…`).
    case passthrough(serverName: String)
    /// No ClientHello, or one without a usable server name (`tls="no_identity",no_tls_reason="no_tls_from_remote"`).
    case plaintext
}

/// An inbound connection, as the proxy starts forwarding it to the application.
public struct InboundConnection: Hashable, Sendable {
    /// The connecting peer.
    public var client: SocketAddress?
    /// Where the connection was going: the application's address.
    public var originalDestination: SocketAddress
    public var tls: InboundTLS
}

/// The inbound proxy (reference proxy §2.1, §2.2): accepts the connections iptables redirects to the pod, and
/// forwards each to the application at its original destination, terminating mTLS addressed to the proxy's
/// identity.
///
/// Per connection, on its event loop:
/// 1. the socket options (``TCPSocketOptions``) and its original destination; a connection without one is closed;
/// 2. one whose original destination is the listener's own port is closed, as a loop;
/// 3. TLS detection, and HTTP detection on plaintext (``ProtocolDetectionHandler`` in
///    ``DetectionMode/tlsThenHTTP`` mode), within the detect timeout:
///    - a ClientHello naming the proxy's identity: mTLS is terminated with the server configuration of
///      ``ProxyCredentials`` (client certificates optional), the handshake completing within the detect timeout too;
///      then HTTP detection runs on the decrypted bytes;
///    - a ClientHello naming anything else: the bytes are forwarded as they came, the ClientHello included;
///    - nothing within the timeout: the connection is closed;
/// 4. HTTP (HTTP/1 request line or HTTP/2 preface, not on opaque ports): served by the HTTP proxy
///    (``HTTPProxyServerHandler``): `l5d-client-id` set from the verified client identity and stripped otherwise,
///    `l5d-orig-proto` downgraded, each request forwarded to the application over pooled connections;
/// 5. anything else (or HTTP detection timing out): a connection to the original destination (the inbound connect
///    timeout), then ``TCPSplice``. A failed connection closes the client's.
///
/// A swift-service-lifecycle `Service`: ``run()`` binds and serves until cancelled or gracefully shut down.
public final class InboundProxy: Service, Sendable {
    /// What the inbound proxy listens on and how it treats connections.
    public struct Settings: Sendable {
        /// Where to listen (`LINKERD2_PROXY_INBOUND_LISTEN_ADDR`); port 0 picks a free one.
        public var listenAddress: SocketAddress
        /// How accepted connections' original destinations are found: ``OriginalDestinationSource/socket`` in a pod.
        public var originalDestination: OriginalDestinationSource
        /// `LINKERD2_PROXY_INBOUND_DETECT_TIMEOUT`: how long a client may take to send its first bytes, and to
        /// complete a TLS handshake the proxy terminates.
        public var detectTimeout: TimeAmount
        /// `LINKERD2_PROXY_INBOUND_CONNECT_TIMEOUT`: how long connecting to the application may take.
        public var connectTimeout: TimeAmount
        /// The options of accepted connections (`LINKERD2_PROXY_INBOUND_ACCEPT_*`).
        public var acceptOptions: TCPSocketOptions
        /// The options of connections to the application (`LINKERD2_PROXY_INBOUND_CONNECT_*`).
        public var connectOptions: TCPSocketOptions
        /// `LINKERD2_PROXY_INBOUND_TCP_LISTEN_BACKLOG`; nil keeps the system's default.
        public var listenBacklog: Int?
        /// `LINKERD2_PROXY_INBOUND_IPS`: the only original-destination addresses served (the pod's IPs); empty
        /// allows all. Connections to another address are closed.
        public var allowedIPs: [IPAddress] = []
        /// `LINKERD2_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION`: application ports whose traffic is never
        /// treated as HTTP. (TLS addressed to the proxy is still terminated: without the transport header that
        /// upstream's meshed clients use for opaque ports, that is how a meshed client's identity is checked.)
        public var opaquePorts: PortList = PortList()
        /// `LINKERD2_PROXY_MAX_IDLE_CONNS_PER_ENDPOINT` and `LINKERD2_PROXY_INBOUND_HTTP1_CONNECTION_POOL_IDLE_TIMEOUT`:
        /// how many idle HTTP/1 connections to the application are kept, and for how long.
        public var http1IdleTimeout: TimeAmount = .seconds(3)
        public var http1MaxIdlePerEndpoint = 10_000
        /// The HTTP server's settings (`…_SERVER_HTTP2_*`, `…_MAX_IN_FLIGHT`).
        public var httpServer = HTTPServerSettings()

        /// Whether connections to `destination` skip HTTP detection.
        func isOpaque(_ destination: SocketAddress) -> Bool {
            guard let port = destination.port, let port16 = UInt16(exactly: port) else { return false }
            return opaquePorts.contains(port16)
        }

        /// Settings with upstream's defaults: 10 s to detect, 300 ms to connect, no keepalive or user timeout.
        public init(
            listenAddress: SocketAddress, originalDestination: OriginalDestinationSource = .socket,
            detectTimeout: TimeAmount = .seconds(10), connectTimeout: TimeAmount = .milliseconds(300),
            acceptOptions: TCPSocketOptions = TCPSocketOptions(),
            connectOptions: TCPSocketOptions = TCPSocketOptions(), listenBacklog: Int? = nil
        ) {
            self.listenAddress = listenAddress
            self.originalDestination = originalDestination
            self.detectTimeout = detectTimeout
            self.connectTimeout = connectTimeout
            self.acceptOptions = acceptOptions
            self.connectOptions = connectOptions
            self.listenBacklog = listenBacklog
        }

        /// The settings `configuration` gives, with original destinations from the socket.
        ///
        /// - Throws: NIO's `SocketAddressError` when the listen address cannot be made a socket address.
        public init(configuration: ProxyConfiguration) throws {
            let inbound = configuration.inbound
            self.init(
                listenAddress: try SocketAddress(configuration.listeners.inbound),
                detectTimeout: TimeAmount(inbound.detectTimeout), connectTimeout: TimeAmount(inbound.connect.timeout),
                acceptOptions: TCPSocketOptions(accept: inbound.accept),
                connectOptions: TCPSocketOptions(connect: inbound.connect),
                listenBacklog: inbound.accept.listenBacklog)
            allowedIPs = inbound.allowedIPs
            opaquePorts = inbound.opaquePorts
            http1IdleTimeout = TimeAmount(inbound.http1Pool.idleTimeout)
            http1MaxIdlePerEndpoint = inbound.http1Pool.maxIdlePerEndpoint
            httpServer = HTTPServerSettings(
                http2: inbound.http2Server, maxInFlightRequests: inbound.maxInFlightRequests)
        }
    }

    /// The inbound connections' counters.
    public var counters: ConnectionCounters { listener.counters }
    private let listener: ProxyListener

    /// - Parameters:
    ///   - credentials: the proxy's identity; connections whose ClientHello names it are refused until it has a
    ///     certificate.
    ///   - counters: where to count connections and bytes; a new set by default.
    ///   - acceptsAfter: awaited after binding, before accepting (``ProxyApp`` waits for the first certificate);
    ///     nil accepts at once.
    ///   - metrics: where the request and TCP metrics go (`request_total`, `tcp_open_total`, …); nil records none.
    ///   - onForward: called on the connection's event loop as each connection starts being forwarded (after the
    ///     TLS handshake, when the proxy terminates TLS); it must not block.
    public init(
        settings: Settings, credentials: ProxyCredentials, counters: ConnectionCounters = ConnectionCounters(),
        metrics: ProxyMetricsRegistry? = nil, acceptsAfter: (@Sendable () async throws -> Void)? = nil, logger: Logger,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        onForward: (@Sendable (InboundConnection) -> Void)? = nil
    ) {
        var logger = logger
        logger[metadataKey: "direction"] = "inbound"
        let connector = UpstreamConnector(options: settings.connectOptions, timeout: settings.connectTimeout)
        let errors = ProxyErrorRecorder(metrics: metrics?.errors, direction: .inbound)
        let http = HTTPProxyServer(
            pools: HTTPUpstreamPools(
                connector: connector, credentials: credentials,
                idleTimeout: settings.http1IdleTimeout, maximumIdlePerTarget: settings.http1MaxIdlePerEndpoint),
            settings: settings.httpServer, errors: errors, logger: logger)
        let server = InboundConnectionServer(
            settings: settings, credentials: credentials, localName: credentials.localName.lowercased(),
            connector: connector, http: http, metrics: metrics, errors: errors, logger: logger, onForward: onForward)
        listener = ProxyListener(
            name: "inbound", address: settings.listenAddress, backlog: settings.listenBacklog,
            options: settings.acceptOptions, autoRead: true, counters: counters, group: eventLoopGroup,
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

/// The inbound proxy's per-connection logic, from the original destination to the splice.
struct InboundConnectionServer: Sendable {
    let settings: InboundProxy.Settings
    let credentials: ProxyCredentials
    /// The proxy's identity in lowercase, as detection gives server names.
    let localName: String
    let connector: UpstreamConnector
    let http: HTTPProxyServer
    let metrics: ProxyMetricsRegistry?
    let errors: ProxyErrorRecorder
    let logger: Logger
    let onForward: (@Sendable (InboundConnection) -> Void)?

    /// Sets up `client`, a connection just accepted, on its event loop.
    func serve(_ client: any Channel) -> EventLoopFuture<Void> {
        settings.originalDestination.originalDestination(of: client)
            .flatMapThrowing { destination in
                if let port = client.localAddress?.port, destination.port == port {
                    throw ProxyConnectionError.targetsInboundPort(port)
                }
                if !settings.allowedIPs.isEmpty {
                    let target = destination.ipAddress.flatMap { try? IPAddress(parsing: $0) }
                    guard let target, settings.allowedIPs.contains(target) else {
                        throw ProxyConnectionError.addressNotAllowed(destination)
                    }
                }
                if let metrics {
                    client.attachTransportMetrics(
                        metrics.transport(
                            ProxyMetricLabels.acceptedTransport(direction: "inbound", destination: destination),
                            now: NIODeadline.now().uptimeNanoseconds))
                }
                let mode: DetectionMode = settings.isOpaque(destination) ? .tls : .tlsThenHTTP
                let detection = ProtocolDetectionHandler(mode: mode, timeout: settings.detectTimeout) {
                    detected, _ in
                    route(detected, client: client, destination: destination)
                }
                try client.pipeline.syncOperations.addHandler(detection)
            }
            .flatMapErrorThrowing { error in
                errors.connection(closedBy: error)
                logger.info(
                    "closing connection",
                    metadata: ["client": "\(client.remoteAddress?.endpointText ?? "unknown")", "error": "\(error)"])
                throw error
            }
    }

    /// Acts on what detection found; a failed future closes the connection.
    private func route(
        _ detected: DetectedProtocol, client: any Channel, destination: SocketAddress
    ) -> EventLoopFuture<Void> {
        switch detected {
        case .tls(let serverName?) where serverName == localName:
            return terminateTLS(client: client, destination: destination)
        case .tls(let serverName?):
            return forward(client: client, destination: destination, tls: .passthrough(serverName: serverName))
        case .http1:
            return serveHTTP(client: client, destination: destination, version: .http1, tls: .plaintext)
        case .http2:
            return serveHTTP(client: client, destination: destination, version: .http2, tls: .plaintext)
        case .tls(serverName: nil), .opaque:
            return forward(client: client, destination: destination, tls: .plaintext)
        case .timedOut:
            return refuse(client, destination, ProxyConnectionError.detectionTimedOut(settings.detectTimeout))
        }
    }

    /// Forwards the connection's bytes as they come; the bytes detection read are replayed once this succeeds.
    private func forward(client: any Channel, destination: SocketAddress, tls: InboundTLS) -> EventLoopFuture<Void> {
        connector.connect(to: destination, on: client.eventLoop, tls: nil)
            .flatMapThrowing { upstream in
                try spliceAccepted(client, to: upstream)
                onForward?(InboundConnection(client: client.remoteAddress, originalDestination: destination, tls: tls))
            }
            .flatMapError { error in
                refuse(client, destination, error)
            }
    }

    /// Adds the TLS server after the detection handler, which replays the ClientHello into it once this returns;
    /// once the handshake is complete, connects to the application and forwards the plaintext.
    private func terminateTLS(client: any Channel, destination: SocketAddress) -> EventLoopFuture<Void> {
        guard let server = credentials.serverConfiguration() else {
            return refuse(client, destination, ProxyConnectionError.noIdentityCertificate)
        }
        let established = client.eventLoop.makePromise(of: String?.self)
        do {
            let pipeline = client.pipeline.syncOperations
            try server.addHandlers(to: pipeline, position: .last)
            try pipeline.addHandler(
                TLSHandshakeGate(established: established, deadline: .now() + settings.detectTimeout))
        } catch {
            established.fail(error)
            return refuse(client, destination, error)
        }
        established.futureResult
            .flatMapThrowing { clientIdentity in
                let tls = InboundTLS.terminated(clientIdentity: clientIdentity)
                let pipeline = client.pipeline.syncOperations
                if settings.isOpaque(destination) {
                    return forwardDecrypted(client: client, destination: destination, tls: tls)
                }
                let detection = ProtocolDetectionHandler(mode: .http, timeout: settings.detectTimeout) {
                    detected, _ in
                    switch detected {
                    case .http1:
                        return serveHTTP(client: client, destination: destination, version: .http1, tls: tls)
                    case .http2:
                        return serveHTTP(client: client, destination: destination, version: .http2, tls: tls)
                    case .tls, .opaque, .timedOut:
                        return forward(client: client, destination: destination, tls: tls)
                    }
                }
                try pipeline.addHandler(detection)
                TLSHandshakeGate.release(in: pipeline)
                return client.eventLoop.makeSucceededVoidFuture()
            }
            .flatMap { $0 }
            .whenFailure { error in
                logClosing(client, destination, error)
                client.close(promise: nil)
            }
        return client.eventLoop.makeSucceededVoidFuture()
    }

    /// Forwards the decrypted bytes of a terminated connection as opaque TCP; the TLS gate holds what arrived during
    /// the handshake until the splice is in place.
    private func forwardDecrypted(
        client: any Channel, destination: SocketAddress, tls: InboundTLS
    ) -> EventLoopFuture<Void> {
        connector.connect(to: destination, on: client.eventLoop, tls: nil).flatMapThrowing { upstream in
            try spliceAccepted(client, to: upstream)
            TLSHandshakeGate.release(in: client.pipeline.syncOperations)
            onForward?(InboundConnection(client: client.remoteAddress, originalDestination: destination, tls: tls))
        }
    }

    /// Serves the connection's HTTP, forwarding each request to the application at `destination`.
    private func serveHTTP(
        client: any Channel, destination: SocketAddress, version: HTTPUpstreamTarget.Version, tls: InboundTLS
    ) -> EventLoopFuture<Void> {
        client.eventLoop.makeCompletedFuture {
            let clientIdentity: String? =
                if case .terminated(let identity) = tls { identity } else { nil }
            try http.configure(
                client, version: version, side: .inbound(clientIdentity: clientIdentity),
                router: FixedAddressRouter(
                    address: destination,
                    metrics: metrics?.httpEndpoint(
                        ProxyMetricLabels.inbound(destination: destination, tls: tls),
                        now: NIODeadline.now().uptimeNanoseconds)))
            onForward?(InboundConnection(client: client.remoteAddress, originalDestination: destination, tls: tls))
        }
    }

    /// Logs why the connection is closed, and returns the failure that closes it.
    private func refuse(
        _ client: any Channel, _ destination: SocketAddress, _ error: any Error
    ) -> EventLoopFuture<Void> {
        logClosing(client, destination, error)
        return client.eventLoop.makeFailedFuture(error)
    }

    /// Counts and logs the error that closes `client`.
    private func logClosing(_ client: any Channel, _ destination: SocketAddress, _ error: any Error) {
        errors.connection(closedBy: error)
        logger.info(
            "closing connection",
            metadata: [
                "client": "\(client.remoteAddress?.endpointText ?? "unknown")",
                "destination": "\(destination.endpointText)",
                "error": "\(error)",
            ])
    }
}
