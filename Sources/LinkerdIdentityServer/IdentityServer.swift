import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import LinkerdCore
import LinkerdIdentity
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import ServiceLifecycle
import Synchronization
import X509

/// Serves `CertifyService` over gRPC (HTTP/2, NIO), with TLS from a `ServerCertificate` it renews itself.
///
/// - TLS 1.3 only: the transport sets no maximum and a 1.2 minimum that cannot be configured, so each accepted
///   connection gets a handler that closes it when the negotiated version is older than 1.3.
/// - Client certificates are not requested: a new proxy has none yet; the token proves who it is.
/// - The certificate is issued once the first issuer is loaded (`issuerUpdated(_:now:)`, wired to the
///   `IssuerWatcher`), before the port is bound; it is renewed at 70% of its lifetime and whenever the issuer
///   changes. New connections get the new certificate at once (a `CertificateReloader`); no restart is needed.
/// - Before binding (after the first issuer), the `TokenReviewPermission` check must pass, as upstream's startup
///   SelfSubjectAccessReview; `run()` throws its error when it does not, and the port is never bound.
/// - Plaintext HTTP/2 only on a loopback address (tests, a sidecar setup): `init` refuses any other.
/// - Requests over `maximumRequestBytes` are refused by the transport (`resourceExhausted`).
public final class IdentityServer: ServiceLifecycle.Service, Sendable {
    public struct Configuration: Sendable {
        public var host: String
        /// 0 picks a free port (see `waitUntilBound()`).
        public var port: Int
        /// Plaintext instead of TLS; allowed only when `host` is a loopback address.
        public var plaintext: Bool
        /// The largest request message accepted.
        public var maximumRequestBytes: Int
        /// How long to wait before retrying a failed certificate renewal.
        public var renewalRetryInterval: Duration

        public init(
            host: String = "0.0.0.0", port: Int = 8080, plaintext: Bool = false, maximumRequestBytes: Int = 64 * 1024,
            renewalRetryInterval: Duration = .seconds(10)
        ) {
            self.host = host
            self.port = port
            self.plaintext = plaintext
            self.maximumRequestBytes = maximumRequestBytes
            self.renewalRetryInterval = renewalRetryInterval
        }
    }

    public let configuration: Configuration
    public let certificate: ServerCertificate
    private let service: CertifyService
    private let authority: IdentityAuthority
    private let permission: TokenReviewPermission?
    private let clock: any WallClock
    private let logger: Logger
    private let eventLoopGroup: MultiThreadedEventLoopGroup
    /// Yields when a first issuer is known, and at every later change (the renewal loop wakes up).
    private let issuerChanges: (stream: AsyncStream<Void>, continuation: AsyncStream<Void>.Continuation)
    private let bound = Mutex<BindState>(.waiting([]))

    private enum BindState {
        case waiting([CheckedContinuation<Int, any Error>])
        case bound(Int)
        case failed(any Error)
    }

    /// - Parameter permission: the check to pass before binding; nil skips it.
    /// - Throws: `IdentityServerError.plaintextNotOnLoopback` when plaintext is asked for on another address.
    public init(
        configuration: Configuration, service: CertifyService, authority: IdentityAuthority,
        certificate: ServerCertificate, permission: TokenReviewPermission?, clock: any WallClock, logger: Logger,
        eventLoopGroup: MultiThreadedEventLoopGroup = .singleton
    ) throws(IdentityServerError) {
        if configuration.plaintext, !Self.isLoopback(configuration.host) {
            throw .plaintextNotOnLoopback(host: configuration.host)
        }
        self.configuration = configuration
        self.service = service
        self.authority = authority
        self.certificate = certificate
        self.permission = permission
        self.clock = clock
        self.logger = logger
        self.eventLoopGroup = eventLoopGroup
        issuerChanges = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Whether the server accepts calls (bound, and with a certificate unless plaintext).
    public var isServing: Bool {
        if case .bound = bound.withLock({ $0 }) { return true }
        return false
    }

    /// Renews the serving certificate with a new issuer (the `IssuerWatcher`'s `onUpdate`).
    public func issuerUpdated(_ issuer: IssuerCredentials, now: Date) {
        if !configuration.plaintext {
            renew(with: issuer, now: now)
        }
        issuerChanges.continuation.yield()
    }

    public func run() async throws {
        do {
            try await serve()
        } catch {
            resolveBind(.failure(error))
            throw error
        }
    }

    /// The bound port, once `run()` has bound it.
    ///
    /// - Throws: the error `run()` failed with before binding.
    public func waitUntilBound() async throws -> Int {
        try await withCheckedThrowingContinuation { continuation in
            bound.withLock { state in
                switch state {
                case .waiting(var waiters):
                    waiters.append(continuation)
                    state = .waiting(waiters)
                case .bound(let port): continuation.resume(returning: port)
                case .failed(let error): continuation.resume(throwing: error)
                }
            }
        }
    }

    private func serve() async throws {
        // The certificate needs the issuer; wait for the first one (or cancellation, when loading failed).
        var changes = issuerChanges.stream.makeAsyncIterator()
        guard await changes.next() != nil else { throw CancellationError() }
        if let permission {
            do {
                try await cancelWhenGracefulShutdown { try await permission.verify() }
            } catch is CancellationError where Task.isShuttingDownGracefully {
                resolveBind(.failure(CancellationError()))
                return
            }
        }

        var config = HTTP2ServerTransport.Posix.Config.defaults
        config.rpc.maxRequestPayloadSize = configuration.maximumRequestBytes
        // Limits for callers that have proven nothing yet (a new proxy has no certificate): a connection that stays
        // idle is closed, one connection cannot start unbounded concurrent Certify calls (each a TokenReview), and
        // on shutdown calls get a bounded time to finish so a stalled client cannot hold the process.
        config.connection.maxIdleTime = .seconds(300)
        config.connection.maxGraceTime = .seconds(10)
        config.http2.maxConcurrentStreams = 100
        let security: HTTP2ServerTransport.Posix.TransportSecurity
        if configuration.plaintext {
            security = .plaintext
        } else {
            security = try .tls(certificateReloader: certificate) { tls in
                tls.clientCertificateVerification = .noVerification
                tls.requireALPN = false
            }
            config.channelDebuggingCallbacks.onAcceptTCPConnection = { channel in
                channel.eventLoop.makeCompletedFuture {
                    let tls = try channel.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self)
                    try channel.pipeline.syncOperations.addHandler(TLSVersionGate(), position: .after(tls))
                }
            }
        }
        let server = GRPCServer(
            transport: .http2NIOPosix(
                address: configuration.host.contains(":")
                    ? .ipv6(host: configuration.host, port: configuration.port)
                    : .ipv4(host: configuration.host, port: configuration.port), transportSecurity: security,
                config: config, eventLoopGroup: eventLoopGroup),
            services: [service])

        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await server.serve() }
            group.addTask {
                guard let address = try await server.listeningAddress,
                    let port = address.ipv4?.port ?? address.ipv6?.port
                else {
                    throw IdentityServerError.notBound
                }
                self.resolveBind(.success(port))
                self.logger.info(
                    "identity gRPC server listening",
                    metadata: [
                        "address": "\(address)", "tls": "\(!self.configuration.plaintext)",
                        "serverName": "\(self.certificate.serverName)",
                    ])
            }
            if !configuration.plaintext {
                group.addTask {
                    do {
                        try await cancelWhenGracefulShutdown { try await self.renewPeriodically() }
                    } catch is CancellationError {
                        return
                    }
                }
            }
            group.addTask {
                // On graceful shutdown (or cancellation), stop accepting and let the calls in flight finish;
                // `serve()` then returns.
                try? await gracefulShutdown()
                server.beginGracefulShutdown()
            }
        }
    }

    /// Renews the certificate at its renewal time (or retries a failed renewal), until cancelled.
    ///
    /// It wakes at least every `renewalRetryInterval` even when the renewal time is further away, because an issuer
    /// change renews the certificate from outside this loop and may move the renewal time earlier. It never renews
    /// with an issuer that is no longer valid, and waits `renewalRetryInterval` after a renewal that is due at once
    /// (an issuer about to expire caps the certificate's lifetime), so an expiring issuer cannot make it spin.
    private func renewPeriodically() async throws {
        while !Task.isCancelled {
            let now = clock.now()
            if let issued = certificate.issued, issued.renewAt > now {
                let recheck = now.addingTimeInterval(configuration.renewalRetryInterval.inSeconds)
                try await clock.sleep(until: min(issued.renewAt, recheck))
                continue
            }
            guard let issuer = authority.issuer, issuer.validityProblem(at: now) == nil,
                renew(with: issuer, now: now), let renewed = certificate.issued, renewed.renewAt > now
            else {
                try await clock.sleep(for: configuration.renewalRetryInterval)
                continue
            }
        }
    }

    @discardableResult
    private func renew(with issuer: IssuerCredentials, now: Date) -> Bool {
        do {
            let issued = try certificate.renew(with: issuer, now: now)
            logger.info(
                "issued the identity service's serving certificate",
                metadata: ["name": "\(certificate.serverName)", "notAfter": "\(issued.leaf.notValidAfter)"])
            return true
        } catch {
            logger.error(
                "cannot issue the identity service's serving certificate; keeping the current one",
                metadata: ["error": "\(error)"])
            return false
        }
    }

    private func resolveBind(_ result: Result<Int, any Error>) {
        let waiters = bound.withLock { state -> [CheckedContinuation<Int, any Error>] in
            guard case .waiting(let waiters) = state else { return [] }
            switch result {
            case .success(let port): state = .bound(port)
            case .failure(let error): state = .failed(error)
            }
            return waiters
        }
        for waiter in waiters {
            waiter.resume(with: result)
        }
    }

    /// Whether `host` is a loopback address (`127.0.0.0/8`, `::1`) or `localhost`.
    static func isLoopback(_ host: String) -> Bool {
        if host == "localhost" { return true }
        switch try? IPAddress(parsing: host) {
        case .v4(let value): return value >> 24 == 127
        case .v6(let value): return value == 1
        case nil: return false
        }
    }
}

/// Why the identity server cannot start.
public enum IdentityServerError: Error, Hashable, Sendable, CustomStringConvertible {
    /// `--plaintext` on an address other machines can reach.
    case plaintextNotOnLoopback(host: String)
    /// The transport did not report a listening address.
    case notBound

    public var description: String {
        switch self {
        case .plaintextNotOnLoopback(let host):
            "refusing to serve plaintext gRPC on \(host): plaintext is allowed only on a loopback address "
                + "(127.0.0.1, ::1); drop --plaintext to serve TLS"
        case .notBound:
            "the gRPC transport did not report a listening address"
        }
    }
}

/// Closes a connection whose TLS handshake negotiated a version older than 1.3. It sits after the TLS handler and
/// looks once, at the first decrypted bytes (the handshake is complete by then), then leaves the pipeline.
final class TLSVersionGate: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = NIOAny

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let version = try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self).tlsVersion
        guard version == .tlsv13 else {
            context.close(promise: nil)
            return
        }
        context.fireChannelRead(data)
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}
