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
/// 3. TLS detection (``ProtocolDetectionHandler`` in ``DetectionMode/tls`` mode) within the detect timeout:
///    - a ClientHello naming the proxy's identity: mTLS is terminated with the server configuration of
///      ``ProxyCredentials`` (client certificates optional), the handshake completing within the detect timeout too;
///      then the plaintext is forwarded;
///    - a ClientHello naming anything else: the bytes are forwarded as they came, the ClientHello included;
///    - anything else: the bytes are forwarded as they came;
///    - nothing within the timeout: the connection is closed;
/// 4. forwarding: a connection to the original destination (the inbound connect timeout), then ``TCPSplice``. A
///    failed connection closes the client's.
///
/// Every protocol is forwarded as opaque TCP for now; HTTP detection and the HTTP stack are to go where the
/// forwarding starts (`InboundConnectionServer`), after TLS, as upstream detects HTTP inside terminated TLS.
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
        }
    }

    /// The inbound connections' counters.
    public var counters: ConnectionCounters { listener.counters }
    private let listener: ProxyListener

    /// - Parameters:
    ///   - credentials: the proxy's identity; connections whose ClientHello names it are refused until it has a
    ///     certificate.
    ///   - counters: where to count connections and bytes; a new set by default.
    ///   - onForward: called on the connection's event loop as each connection starts being forwarded (after the
    ///     TLS handshake, when the proxy terminates TLS); it must not block.
    public init(
        settings: Settings, credentials: ProxyCredentials, counters: ConnectionCounters = ConnectionCounters(),
        logger: Logger, eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        onForward: (@Sendable (InboundConnection) -> Void)? = nil
    ) {
        var logger = logger
        logger[metadataKey: "direction"] = "inbound"
        let server = InboundConnectionServer(
            settings: settings, credentials: credentials, localName: credentials.localName.lowercased(),
            connector: UpstreamConnector(options: settings.connectOptions, timeout: settings.connectTimeout),
            logger: logger, onForward: onForward)
        listener = ProxyListener(
            name: "inbound", address: settings.listenAddress, backlog: settings.listenBacklog,
            options: settings.acceptOptions, autoRead: true, counters: counters, group: eventLoopGroup,
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

/// The inbound proxy's per-connection logic, from the original destination to the splice.
struct InboundConnectionServer: Sendable {
    let settings: InboundProxy.Settings
    let credentials: ProxyCredentials
    /// The proxy's identity in lowercase, as detection gives server names.
    let localName: String
    let connector: UpstreamConnector
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
                let detection = ProtocolDetectionHandler(mode: .tls, timeout: settings.detectTimeout) {
                    detected, _ in
                    route(detected, client: client, destination: destination)
                }
                try client.pipeline.syncOperations.addHandler(detection)
            }
            .flatMapErrorThrowing { error in
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
        case .tls(serverName: nil), .opaque, .http1, .http2:
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
            .flatMap { clientIdentity in
                connector.connect(to: destination, on: client.eventLoop, tls: nil).flatMapThrowing { upstream in
                    try spliceAccepted(client, to: upstream)
                    TLSHandshakeGate.release(in: client.pipeline.syncOperations)
                    onForward?(
                        InboundConnection(
                            client: client.remoteAddress, originalDestination: destination,
                            tls: .terminated(clientIdentity: clientIdentity)))
                }
            }
            .whenFailure { error in
                logClosing(client, destination, error)
                client.close(promise: nil)
            }
        return client.eventLoop.makeSucceededVoidFuture()
    }

    /// Logs why the connection is closed, and returns the failure that closes it.
    private func refuse(
        _ client: any Channel, _ destination: SocketAddress, _ error: any Error
    ) -> EventLoopFuture<Void> {
        logClosing(client, destination, error)
        return client.eventLoop.makeFailedFuture(error)
    }

    private func logClosing(_ client: any Channel, _ destination: SocketAddress, _ error: any Error) {
        logger.info(
            "closing connection",
            metadata: [
                "client": "\(client.remoteAddress?.endpointText ?? "unknown")",
                "destination": "\(destination.endpointText)",
                "error": "\(error)",
            ])
    }
}
