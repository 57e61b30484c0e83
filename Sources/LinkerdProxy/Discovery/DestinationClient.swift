import GRPCCore
import GRPCNIOTransportHTTP2Posix
import GRPCProtobuf
import LinkerdCore
import LinkerdProxyAPI
import LinkerdProxyCore
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import SwiftProtobuf
import Synchronization

/// Follows the Destination service's streams (`io.linkerd.proxy.destination.Destination`, reference proxy §3.1–3.2):
/// `Get` for the endpoints of a logical name, `GetProfile` for the profile of a name or an `ip:port`.
///
/// Every request carries the context token (`LINKERD2_PROXY_DESTINATION_CONTEXT`). A stream that ends, or fails with
/// any status but `InvalidArgument`, is opened again after a backoff (the control-plane connect backoff, by default
/// 100 ms to 60 s with jitter 0.1), until the caller stops iterating or the client stops. The backoff starts over
/// once a stream has delivered a message. Across a reconnection the endpoint sequence keeps the last known endpoints
/// in use until the new stream's first update replaces them (``EndpointUpdate/reset(_:)``).
///
/// One HTTP/2 connection pool serves every stream (requests are spread over the addresses a DNS name resolves to,
/// round-robin). Traffic is plaintext only to a loopback address; otherwise it is TLS 1.3 with the proxy's
/// certificate, requiring the service's certificate to chain to the trust anchors and carry
/// `LINKERD2_PROXY_DESTINATION_SVC_NAME` (sent as SNI; the address dialled is not checked).
///
/// The client is a `Service`: ``run()`` runs its connections, and requests made before it starts wait for it.
///
/// Not modelled yet: the control-stream limits (`LINKERD2_PROXY_CONTROL_STREAM_{INITIAL_TIMEOUT,IDLE_TIMEOUT,
/// LIFETIME}`), SRV records and re-resolution of the service's name on a TTL (the name is resolved again only when a
/// connection fails), and per-stream queue bounds (updates are buffered for a slow reader without limit).
public final class DestinationClient: Service, Sendable {
    /// Where the service is and what the client tells it.
    public struct Configuration: Sendable {
        /// The service's address (`LINKERD2_PROXY_DESTINATION_SVC_ADDR`), and for a non-loopback one the identity it
        /// must prove (`_SVC_NAME`).
        public var address: ControlPlaneAddress
        /// `context_token` for every request (`LINKERD2_PROXY_DESTINATION_CONTEXT`), as given.
        public var contextToken: String
        /// The delays between attempts to open a stream again.
        public var backoff: ExponentialBackoff

        public init(address: ControlPlaneAddress, contextToken: String = "", backoff: ExponentialBackoff) {
            self.address = address
            self.contextToken = contextToken
            self.backoff = backoff
        }

        /// The proxy's settings: the destination address and context, and the connect backoff control-plane clients
        /// reuse (reference proxy §1.4): the outbound one, or the inbound one for a loopback address.
        public init(proxyConfiguration configuration: ProxyConfiguration) {
            let address = configuration.controlPlane.destination
            let connect = address.isLoopback ? configuration.inbound.connect : configuration.outbound.connect
            self.init(
                address: address, contextToken: configuration.controlPlane.destinationContext,
                backoff: ExponentialBackoff(connect.backoff))
        }
    }

    /// How the connections to the service are secured.
    public struct Security: Sendable {
        let tlsConfiguration: (@Sendable () -> ProxyClientTLSConfiguration?)?
        let waitUntilReady: (@Sendable () async throws -> Void)?

        /// Plaintext HTTP/2; allowed only to a loopback address.
        public static let plaintext = Security(tlsConfiguration: nil, waitUntilReady: nil)

        /// TLS with the configuration `current()` gives when each connection is made, so a refreshed certificate is
        /// used from the next connection on. A connection made while it gives nil fails (and is retried).
        public static func mutualTLS(
            _ current: @escaping @Sendable () -> ProxyClientTLSConfiguration?
        ) -> Security {
            Security(tlsConfiguration: current, waitUntilReady: nil)
        }

        /// TLS with the proxy's current certificate, towards a service that must prove `serverName`. The client
        /// connects only once the proxy has a certificate; requests made before wait.
        public static func mutualTLS(credentials: ProxyCredentials, serverName: TLSServerName) -> Security {
            Security(
                tlsConfiguration: { credentials.clientConfiguration(expectedIdentity: serverName.name) },
                waitUntilReady: { _ = try await credentials.waitUntilCertified() })
        }

        /// What the proxy uses for `address`: plaintext for a loopback address, else mutual TLS with `credentials`
        /// towards the address's server name.
        public static func forControlPlane(_ address: ControlPlaneAddress, credentials: ProxyCredentials) -> Security {
            guard let serverName = address.serverName, !address.isLoopback else { return .plaintext }
            return .mutualTLS(credentials: credentials, serverName: serverName)
        }
    }

    public let configuration: Configuration
    private let security: Security
    private let grpc: GRPCClient<HTTP2ClientTransport.Posix>
    private let clock: any WallClock
    private let logger: Logger
    private let streams = Mutex(StreamRegistry())
    private let latestVerification: Locked<PeerVerificationReport?>

    private struct StreamRegistry {
        var nextID: UInt64 = 0
        var tasks: [UInt64: Task<Void, Never>] = [:]
        /// Tasks that ended before they were registered, so that they are not registered afterwards.
        var endedEarly: Set<UInt64> = []
        var stopped = false
    }

    /// - Parameters:
    ///   - clock: what backoff delays are slept on.
    /// - Throws: ``DestinationClientError/invalidConfiguration(_:)`` for plaintext to an address that is not
    ///   loopback.
    public init(
        configuration: Configuration, security: Security, clock: any WallClock = SystemWallClock(), logger: Logger,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) throws(DestinationClientError) {
        let address = configuration.address
        if security.tlsConfiguration == nil, !address.isLoopback {
            throw .invalidConfiguration(
                "plaintext is allowed only to a loopback address (127.0.0.0/8, ::1, localhost), not to \(address)")
        }
        self.configuration = configuration
        self.security = security
        self.clock = clock
        self.logger = logger
        let latestVerification = Locked<PeerVerificationReport?>(nil)
        self.latestVerification = latestVerification

        var config = HTTP2ClientTransport.Posix.Config.defaults
        // Upstream sends the service's address as the authority.
        config.http2.authority = address.description
        // Reconnect as fast as the streams do; the streams' own backoff spaces out the attempts.
        let backoff = configuration.backoff
        config.backoff = .init(
            initial: max(backoff.minimum, .milliseconds(1)), max: backoff.maximum, multiplier: 2, jitter: 0)
        let transportSecurity: HTTP2ClientTransport.Posix.TransportSecurity
        if let current = security.tlsConfiguration {
            // The transport's own TLS allows TLS 1.2 and checks host names; the mesh's handlers are added instead.
            transportSecurity = .customSecure
            config.channelDebuggingCallbacks.onCreateTCPConnection = { channel in
                channel.eventLoop.makeCompletedFuture {
                    guard let tls = current() else {
                        throw DestinationClientError.invalidConfiguration(
                            "the proxy has no certificate yet to connect to \(address) with")
                    }
                    let report = PeerVerificationReport()
                    latestVerification.withLock { $0 = report }
                    try channel.pipeline.syncOperations.addHandlers(tls.makeHandlers(report: report), position: .first)
                }
            }
        } else {
            transportSecurity = .plaintext
        }
        let target: any ResolvableTarget =
            switch address.host {
            case .ip(.v4(let ip)): .ipv4(address: IPAddress.v4(ip).description, port: Int(address.port))
            case .ip(.v6(let ip)): .ipv6(address: IPAddress.v6(ip).description, port: Int(address.port))
            case .name(let name): .dns(host: name, port: Int(address.port))
            }
        do {
            let transport = try HTTP2ClientTransport.Posix(
                target: target, transportSecurity: transportSecurity, config: config,
                serviceConfig: ServiceConfig(loadBalancingConfig: [.roundRobin]), eventLoopGroup: eventLoopGroup)
            grpc = GRPCClient(transport: transport)
        } catch {
            throw .invalidConfiguration("no gRPC transport to \(address): \(error)")
        }
    }

    /// Runs the connections until cancelled or shut down gracefully; then every stream ends with
    /// ``DestinationClientError/stopped(method:path:)``. With ``Security/mutualTLS(credentials:serverName:)`` it
    /// first waits for the proxy's certificate.
    public func run() async throws {
        defer { stop() }
        do {
            try await cancelWhenGracefulShutdown {
                if let waitUntilReady = self.security.waitUntilReady {
                    try await waitUntilReady()
                }
                try await self.grpc.runConnections()
            }
        } catch is CancellationError {
            return
        }
    }

    /// The endpoints of `name` (`Get`, with `path` = `name`, such as `web.emojivoto.svc.cluster.local:8080`), as
    /// updates to apply in order to an ``EndpointSet``.
    ///
    /// The sequence goes on across reconnections until the caller stops iterating it (or cancels the iterating
    /// task), which cancels the stream; it ends with ``DestinationClientError/rejected(method:path:message:)`` when
    /// the service refuses the name, and ``DestinationClientError/stopped(method:path:)`` when the client stops.
    public func resolve(_ name: String) -> AsyncThrowingStream<EndpointUpdate, any Error> {
        let recovery = Locked(EndpointStreamRecovery())
        return follow(
            Io_Linkerd_Proxy_Destination_Destination.Method.Get.descriptor, path: name,
            responseType: Io_Linkerd_Proxy_Destination_Update.self,
            streamStarted: { recovery.withLock { $0.streamStarted() } },
            translate: { message in
                guard let update = EndpointUpdate(message) else { return nil }
                return recovery.withLock { $0.deliver(update) }
            })
    }

    /// The profile of `target` (`GetProfile`): a fully-qualified name and port such as
    /// `web.emojivoto.svc.cluster.local:8080`, or an `ip:port`. Each update replaces the previous one; across a
    /// reconnection the last one stays valid until the next arrives.
    ///
    /// It ends as ``resolve(_:)`` does; a ``DestinationClientError/rejected(method:path:message:)`` means the target
    /// has no profile.
    public func profile(_ target: String) -> AsyncThrowingStream<DestinationProfileUpdate, any Error> {
        follow(
            Io_Linkerd_Proxy_Destination_Destination.Method.GetProfile.descriptor, path: target,
            responseType: Io_Linkerd_Proxy_Destination_DestinationProfile.self, streamStarted: {},
            translate: { DestinationProfileUpdate($0) })
    }

    // MARK: - Streams

    /// Starts a task that follows `method` for `path` into a new sequence, and registers it so that ``stop()`` can
    /// end it. Ending the sequence (the consumer stops iterating) cancels the task.
    private func follow<Response: SwiftProtobuf.Message & Sendable, Element: Sendable>(
        _ method: MethodDescriptor, path: String, responseType: Response.Type,
        streamStarted: @escaping @Sendable () -> Void, translate: @escaping @Sendable (Response) -> Element?
    ) -> AsyncThrowingStream<Element, any Error> {
        let (sequence, continuation) = AsyncThrowingStream.makeStream(of: Element.self)
        let id: UInt64? = streams.withLock { registry in
            guard !registry.stopped else { return nil }
            registry.nextID += 1
            return registry.nextID
        }
        guard let id else {
            continuation.finish(throwing: DestinationClientError.stopped(method: method.method, path: path))
            return sequence
        }
        let task = Task {
            defer {
                self.streams.withLock { registry in
                    if registry.tasks.removeValue(forKey: id) == nil {
                        registry.endedEarly.insert(id)
                    }
                }
            }
            let outcome = await self.followStreams(
                method, path: path, streamStarted: streamStarted,
                onMessage: { (message: Response) in
                    if let element = translate(message) {
                        continuation.yield(element)
                    }
                })
            continuation.finish(throwing: outcome)
        }
        let stopped = streams.withLock { registry in
            if registry.endedEarly.remove(id) == nil {
                registry.tasks[id] = task
            }
            return registry.stopped
        }
        continuation.onTermination = { _ in task.cancel() }
        if stopped {
            task.cancel()
        }
        return sequence
    }

    /// Opens `method` for `path` again and again, each time it ends or fails, until cancelled or a failure is not to
    /// be retried; returns that failure, or nil when cancelled by the consumer.
    private func followStreams<Response: SwiftProtobuf.Message & Sendable>(
        _ method: MethodDescriptor, path: String, streamStarted: @escaping @Sendable () -> Void,
        onMessage: @escaping @Sendable (Response) -> Void
    ) async -> (any Error)? {
        var request = Io_Linkerd_Proxy_Destination_GetDestination()
        request.path = path
        request.contextToken = configuration.contextToken
        var options = CallOptions.defaults
        // Fail at once when the service cannot be reached, so that the backoff below paces the attempts.
        options.waitForReady = false
        var logger = self.logger
        logger[metadataKey: "method"] = "\(method.method)"
        logger[metadataKey: "path"] = "\(path)"
        var random = SystemRandomNumberGenerator()
        var failures = 0
        while true {
            let progress = StreamProgress()
            // Why the stream closed, and how loudly to say so: the service ending a stream is routine.
            let outcome: (reason: String, level: Logger.Level)
            do {
                try await grpc.serverStreaming(
                    request: ClientRequest(message: request), descriptor: method,
                    serializer: ProtobufSerializer<Io_Linkerd_Proxy_Destination_GetDestination>(),
                    deserializer: ProtobufDeserializer<Response>(), options: options
                ) { response in
                    streamStarted()
                    for try await message in response.messages {
                        progress.received.store(true, ordering: .relaxed)
                        onMessage(message)
                    }
                }
                outcome = ("the stream ended", .debug)
            } catch {
                switch decide(after: error, method: method, path: path) {
                case .retry: outcome = (describe(error), .info)
                case .finish: return nil
                case .fail(let error): return error
                }
            }
            if Task.isCancelled {
                return stopError(method: method, path: path)
            }
            if progress.received.load(ordering: .relaxed) {
                failures = 0
            }
            let delay = configuration.backoff.delay(afterFailures: failures, using: &random)
            failures += 1
            logger.log(
                level: outcome.level, "destination stream closed; reopening after backoff",
                metadata: ["reason": "\(outcome.reason)", "backoff": "\(delay)"])
            do {
                try await clock.sleep(for: delay)
            } catch {
                return stopError(method: method, path: path)
            }
        }
    }

    /// What to do after a stream ended with `error`.
    private enum Decision {
        /// Open the stream again after a backoff.
        case retry
        /// End the sequence without error: the consumer stopped iterating.
        case finish
        /// End the sequence with this error.
        case fail(any Error)
    }

    /// Stop when the client stopped or the consumer cancelled, or the service rejected the request with
    /// `InvalidArgument`; retry anything else.
    private func decide(after error: any Error, method: MethodDescriptor, path: String) -> Decision {
        if streams.withLock({ $0.stopped }) {
            return .fail(DestinationClientError.stopped(method: method.method, path: path))
        }
        if let runtime = error as? RuntimeError, runtime.code == .clientIsStopped {
            return .fail(DestinationClientError.stopped(method: method.method, path: path))
        }
        if Task.isCancelled || error is CancellationError {
            return .finish
        }
        if let rpc = error as? RPCError, rpc.code == .invalidArgument {
            return .fail(DestinationClientError.rejected(method: method.method, path: path, message: rpc.message))
        }
        return .retry
    }

    /// The error a sequence cancelled between streams ends with: none when the consumer cancelled it,
    /// ``DestinationClientError/stopped(method:path:)`` when the client stopped.
    private func stopError(method: MethodDescriptor, path: String) -> (any Error)? {
        streams.withLock { $0.stopped } ? DestinationClientError.stopped(method: method.method, path: path) : nil
    }

    /// A stream failure for the logs, with the certificate check that failed when there was one.
    private func describe(_ error: any Error) -> String {
        var text = "\(error)"
        if let rejection = latestVerification.withLock({ $0?.recorded }) {
            text += " (last TLS handshake: \(rejection.reason))"
        }
        return text
    }

    /// Marks the client stopped and cancels every stream, so each ends with
    /// ``DestinationClientError/stopped(method:path:)``.
    private func stop() {
        let tasks = streams.withLock { registry in
            registry.stopped = true
            return Array(registry.tasks.values)
        }
        for task in tasks {
            task.cancel()
        }
    }
}

/// Whether the current stream has delivered a message, which resets the backoff.
private final class StreamProgress: Sendable {
    let received = Atomic(false)
}

/// A value behind a lock, shared by the closures of one client or stream.
private final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>

    init(_ value: Value) {
        mutex = Mutex(value)
    }

    func withLock<Result>(_ body: (inout Value) -> Result) -> Result {
        mutex.withLock { body(&$0) }
    }
}
