import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPCompression
import NIOPosix
import NIOSSL
import ServiceLifecycle
import Synchronization

/// An HTTP/1.1 server, plain or HTTPS, shared by the admin and webhook servers.
///
/// Each connection's pipeline is: TLS (with the context current when the connection was accepted) →
/// `RequestStartDetector` → NIO's HTTP decoder and encoder (with header size limits) and
/// `HTTPServerPipelineHandler` → `HTTPConnectionHandler` (the responder). Keep-alive is honoured, requests on one
/// connection are answered in order, and each connection has the deadlines of `ConnectionTimeouts`.
///
/// At most `maximumConnections` connections are open at once: one accepted beyond that is closed at once, so no
/// client can exhaust the process's file descriptors. Refusals are counted and logged, the first and then every
/// `refusalLogInterval`-th, so a flood cannot flood the log either.
///
/// `run()` binds, serves until cancelled or gracefully shut down, and returns once every connection is closed:
/// on graceful shutdown it stops accepting, lets each connection finish the request it is on (at most
/// `shutdownGracePeriod`), then closes them; on cancellation it closes everything at once.
public final class HTTPServer: Sendable {
    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        public var headerReadTimeout: TimeAmount = .seconds(15)
        public var bodyReadTimeout: TimeAmount = .seconds(30)
        public var idleTimeout: TimeAmount = .seconds(120)
        /// The longest header line (name and value) and the largest total of header names and values.
        public var maximumHeaderFieldBytes = 16 * 1024
        public var maximumHeaderBytes = 32 * 1024
        public var maximumHeaderCount = 128
        /// How much of a request answered early (404, 405, 413) is read and dropped before giving up on the
        /// connection.
        public var discardLimit = 1024 * 1024
        public var shutdownGracePeriod: TimeAmount = .seconds(10)
        /// Whether responses are compressed (gzip or deflate) for requests whose `Accept-Encoding` asks for it.
        public var compressesResponses = false
        /// Connections open at once; more are closed as soon as they are accepted.
        public var maximumConnections: Int

        public init(host: String, port: Int, maximumConnections: Int) {
            self.host = host
            self.port = port
            self.maximumConnections = maximumConnections
        }
    }

    /// Plain HTTP, or TLS with the context to use for each new connection (nil refuses the connection).
    public enum Security: Sendable {
        case plaintext
        case tls(@Sendable () -> NIOSSLContext?)
    }

    private struct Connections {
        var open: [ObjectIdentifier: any Channel] = [:]
        var accepted = 0
        /// Connections closed because `maximumConnections` were open.
        var refused = 0
        var stopping = false
    }

    /// A refusal is logged when it is the first or a multiple of this.
    static let refusalLogInterval = 100

    private let configuration: Configuration
    private let security: Security
    private let responder: any HTTPResponder
    private let group: any EventLoopGroup
    private let logger: Logger
    private let connections = Mutex(Connections())
    private let bound = BindSignal()

    /// - Parameter name: names the server in log messages (`admin`, `webhook`).
    public init(
        name: String, configuration: Configuration, security: Security, responder: any HTTPResponder,
        group: any EventLoopGroup, logger: Logger
    ) {
        self.configuration = configuration
        self.security = security
        self.responder = responder
        self.group = group
        var logger = logger
        logger[metadataKey: "server"] = "\(name)"
        self.logger = logger
    }

    /// How many connections have been accepted since the start.
    public var acceptedConnections: Int {
        connections.withLock { $0.accepted }
    }

    /// How many connections have been closed because `maximumConnections` were open.
    public var refusedConnections: Int {
        connections.withLock { $0.refused }
    }

    /// The bound port, once `run()` has bound; throws the bind error when binding failed.
    public func waitUntilBound() async throws -> Int {
        try await bound.wait()
    }

    public func run() async throws {
        let listener: any Channel
        do {
            listener = try await makeBootstrap().bind(host: configuration.host, port: configuration.port).get()
        } catch {
            bound.resolve(.failure(error))
            throw error
        }
        guard let port = listener.localAddress?.port else {
            listener.close(promise: nil)
            bound.resolve(.failure(ChannelError.unknownLocalAddress))
            throw ChannelError.unknownLocalAddress
        }
        bound.resolve(.success(port))
        logger.info("listening", metadata: ["address": "\(configuration.host):\(port)"])
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                try? await listener.closeFuture.get()
            } onGracefulShutdown: {
                self.stop(listener, graceful: true)
            }
        } onCancel: {
            self.stop(listener, graceful: false)
        }
        // The listener may also have closed on its own (a socket error): the connections are stopped then too, and
        // the failure reported once they are closed.
        let (open, stopRequested) = connections.withLock { (Array($0.open.values), $0.stopping) }
        if !stopRequested {
            stop(listener, graceful: true)
        }
        await withTaskCancellationHandler {
            for channel in open {
                try? await channel.closeFuture.get()
            }
        } onCancel: {
            for channel in open { channel.close(promise: nil) }
        }
        guard stopRequested else {
            logger.error("the listening socket closed unexpectedly")
            throw ListenerClosed()
        }
        logger.info("stopped")
    }

    /// Stops accepting and ends the open connections: at once, or after their current request (bounded by the
    /// grace period).
    private func stop(_ listener: any Channel, graceful: Bool) {
        let open = connections.withLock { state in
            state.stopping = true
            return Array(state.open.values)
        }
        listener.close(promise: nil)
        for channel in open {
            if graceful {
                channel.eventLoop.execute {
                    channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
                }
                channel.eventLoop.scheduleTask(in: configuration.shutdownGracePeriod) {
                    channel.close(promise: nil)
                }
            } else {
                channel.close(promise: nil)
            }
        }
    }

    private func makeBootstrap() -> ServerBootstrap {
        ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try self.configure(channel) }
            }
    }

    private func configure(_ channel: any Channel) throws {
        let id = ObjectIdentifier(channel)
        enum Admission { case accepted, stopping, refused(count: Int) }
        let admission = connections.withLock { state -> Admission in
            guard !state.stopping else { return .stopping }
            guard state.open.count < configuration.maximumConnections else {
                state.refused += 1
                return .refused(count: state.refused)
            }
            state.open[id] = channel
            state.accepted += 1
            return .accepted
        }
        switch admission {
        case .accepted:
            break
        case .stopping:
            throw ServerStopping()
        case .refused(let count):
            if count == 1 || count % Self.refusalLogInterval == 0 {
                logger.warning(
                    "refusing connections: too many are open",
                    metadata: [
                        "maximum": "\(configuration.maximumConnections)", "refused-so-far": "\(count)",
                        "peer": "\(channel.remoteAddress.map { "\($0)" } ?? "unknown")",
                    ])
            }
            throw TooManyConnections()
        }
        channel.closeFuture.whenComplete { _ in
            _ = self.connections.withLock { $0.open.removeValue(forKey: id) }
        }
        let pipeline = channel.pipeline.syncOperations
        if case .tls(let currentContext) = security {
            guard let context = currentContext() else {
                logger.warning("refusing a connection: no serving certificate yet")
                throw NoServingCertificate()
            }
            try pipeline.addHandler(NIOSSLServerHandler(context: context))
        }
        let timeouts = ConnectionTimeouts(
            limits: .init(
                headerRead: configuration.headerReadTimeout, bodyRead: configuration.bodyReadTimeout,
                idle: configuration.idleTimeout),
            channel: channel, logger: logger)
        try pipeline.addHandler(RequestStartDetector(timeouts: timeouts))
        var limits = NIOHTTPDecoderLimitConfiguration()
        limits.maxHeaderFieldSize = configuration.maximumHeaderFieldBytes
        limits.maxHeaderListSize = configuration.maximumHeaderBytes
        limits.maxHeaderFieldCount = configuration.maximumHeaderCount
        try pipeline.configureHTTPServerPipeline(
            withPipeliningAssistance: true, withErrorHandling: true, withOutboundHeaderValidation: true,
            withEncoderConfiguration: .init(), withDecoderLimitConfiguration: limits)
        if configuration.compressesResponses {
            try pipeline.addHandler(HTTPResponseCompressor())
        }
        try pipeline.addHandler(
            HTTPConnectionHandler(
                responder: responder, timeouts: timeouts, discardLimit: configuration.discardLimit, logger: logger))
    }
}

/// The listening socket closed without a stop being asked for.
public struct ListenerClosed: Error, CustomStringConvertible {
    public var description: String { "the listening socket closed unexpectedly" }
}

/// A connection accepted while the server stops; it is closed.
private struct ServerStopping: Error {}

/// A connection accepted while `maximumConnections` are open; it is closed.
private struct TooManyConnections: Error {}

/// A TLS connection accepted before the server has a certificate; it is closed.
private struct NoServingCertificate: Error {}

/// The outcome of binding, awaited by any number of callers before or after it is known.
public final class BindSignal: Sendable {
    private struct State {
        var result: Result<Int, any Error>?
        var waiters: [CheckedContinuation<Int, any Error>] = []
    }

    private let state = Mutex(State())

    public init() {}

    public func resolve(_ result: Result<Int, any Error>) {
        let waiters = state.withLock { state in
            guard state.result == nil else { return [CheckedContinuation<Int, any Error>]() }
            state.result = result
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters {
            waiter.resume(with: result)
        }
    }

    public func wait() async throws -> Int {
        try await withCheckedThrowingContinuation { continuation in
            let known = state.withLock { state -> Result<Int, any Error>? in
                if let result = state.result { return result }
                state.waiters.append(continuation)
                return nil
            }
            if let known {
                continuation.resume(with: known)
            }
        }
    }
}
