import NIOCore
import NIOHTTP1
import NIOHTTP2
import Synchronization

/// The largest header list the proxy's HTTP/2 endpoints accept (`SETTINGS_MAX_HEADER_LIST_SIZE`): 64 KiB, a bound on
/// what one request or response may make the proxy hold.
let maximumHeaderListSize = 64 * 1024

/// Where one forwarded HTTP request goes, and how: what a router decides for it.
struct HTTPUpstreamTarget: Hashable, Sendable {
    /// The HTTP version spoken to the upstream.
    enum Version: Hashable, Sendable {
        /// HTTP/1.x on a pooled connection (one request at a time).
        case http1
        /// HTTP/2 with prior knowledge, one multiplexed connection per target.
        case http2
    }

    var address: SocketAddress
    /// The identity the upstream proxy must prove, and the SNI; nil for plaintext.
    var identity: String?
    var serverName: String?
    var version: Version
}

/// The proxy's connections to upstreams for one event loop (reference proxy §2.11): HTTP/1 connections pooled per
/// target (idle ones closed after the idle timeout, at most `maximumIdlePerTarget` kept), and one multiplexed HTTP/2
/// connection per target, shared by every request to it.
///
/// Bound to its event loop: every method must be called on it, and every channel it opens lives on it, so that a
/// request and its upstream exchange call each other directly.
final class HTTPUpstreamPool {
    private let eventLoop: any EventLoop
    private let connector: UpstreamConnector
    private let credentials: ProxyCredentials
    private let idleTimeout: TimeAmount
    private let maximumIdlePerTarget: Int
    private var idleHTTP1: [HTTPUpstreamTarget: [IdleConnection]] = [:]
    private var http2: [HTTPUpstreamTarget: HTTP2Connection] = [:]
    /// Closes the HTTP/1 connections idle for ``idleTimeout``; armed while any connection is idle. One timer for
    /// the pool rather than one per idle period, which would cost a scheduled task (and its promise) per request.
    private var idleSweep: Scheduled<Void>?

    private struct IdleConnection {
        var handler: UpstreamExchangeHandler
        var idleSince: NIODeadline
    }

    /// The shared HTTP/2 connection to a target: being connected (with the requests waiting for it), or ready.
    private enum HTTP2Connection {
        case connecting([(Result<(NIOHTTP2Handler.StreamMultiplexer, ObjectIdentifier), any Error>) -> Void])
        case ready(NIOHTTP2Handler.StreamMultiplexer, ObjectIdentifier)
    }

    /// What ``exchange(for:_:)`` delivers.
    typealias ExchangeCallback = (Result<UpstreamExchangeHandler, any Error>) -> Void

    init(
        eventLoop: any EventLoop, connector: UpstreamConnector, credentials: ProxyCredentials,
        idleTimeout: TimeAmount, maximumIdlePerTarget: Int
    ) {
        self.eventLoop = eventLoop
        self.connector = connector
        self.credentials = credentials
        self.idleTimeout = idleTimeout
        self.maximumIdlePerTarget = maximumIdlePerTarget
    }

    /// Calls `done`, on the event loop, with an idle exchange handler for `target`: a pooled HTTP/1 connection or a
    /// new one, or a new stream on the target's HTTP/2 connection (connecting it first when there is none); or with
    /// the connection's error. A pooled connection is delivered at once, before this returns.
    func exchange(for target: HTTPUpstreamTarget, _ done: @escaping ExchangeCallback) {
        eventLoop.preconditionInEventLoop()
        switch target.version {
        case .http1: http1Exchange(for: target, done)
        case .http2: http2Exchange(for: target, done)
        }
    }

    private func http1Exchange(for target: HTTPUpstreamTarget, _ done: @escaping ExchangeCallback) {
        while var idle = idleHTTP1[target], let connection = idle.popLast() {
            idleHTTP1[target] = idle.isEmpty ? nil : idle
            if connection.handler.channel?.isActive == true {
                done(.success(connection.handler))
                return
            }
        }
        connect(to: target).assumeIsolated().whenComplete { [weak self] result in
            done(
                Result {
                    let channel = try result.get()
                    let pipeline = channel.pipeline.syncOperations
                    try pipeline.addHTTPClientHandlers(leftOverBytesStrategy: .forwardBytes)
                    let handler = UpstreamExchangeHandler(
                        kind: .http1(onIdle: { handler in self?.release(handler, target: target) }))
                    try pipeline.addHandler(handler)
                    TLSHandshakeGate.release(in: pipeline)
                    return handler
                })
        }
    }

    /// Keeps an HTTP/1 connection whose exchange ended cleanly for the next request to `target`.
    private func release(_ handler: UpstreamExchangeHandler, target: HTTPUpstreamTarget) {
        guard let channel = handler.channel, channel.isActive else { return }
        guard (idleHTTP1[target]?.count ?? 0) < maximumIdlePerTarget else {
            channel.close(promise: nil)
            return
        }
        // The most recently used connection is reused first (`popLast`), so the oldest idle ones expire.
        let now = NIODeadline.now()
        idleHTTP1[target, default: []].append(IdleConnection(handler: handler, idleSince: now))
        if idleSweep == nil {
            scheduleIdleSweep(at: now + idleTimeout)
        }
    }

    /// Closes the idle HTTP/1 connections whose time is up, and those the upstream closed meanwhile (the reuse path
    /// skips them too: watching each one's close future would add a callback per request over a long-lived
    /// connection); comes back when the next one's time is up.
    private func sweepIdleConnections() {
        idleSweep = nil
        let now = NIODeadline.now()
        var nextExpiry: NIODeadline?
        for target in Array(idleHTTP1.keys) {
            var kept: [IdleConnection] = []
            for connection in idleHTTP1[target] ?? [] {
                let expiry = connection.idleSince + idleTimeout
                guard let channel = connection.handler.channel, channel.isActive, expiry > now else {
                    connection.handler.channel?.close(promise: nil)
                    continue
                }
                kept.append(connection)
                nextExpiry = min(nextExpiry ?? expiry, expiry)
            }
            idleHTTP1[target] = kept.isEmpty ? nil : kept
        }
        if let nextExpiry {
            scheduleIdleSweep(at: nextExpiry)
        }
    }

    private func scheduleIdleSweep(at deadline: NIODeadline) {
        idleSweep = eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [weak self] in
            self?.sweepIdleConnections()
        }
    }

    private func http2Exchange(for target: HTTPUpstreamTarget, _ done: @escaping ExchangeCallback) {
        let openStream: (Result<(NIOHTTP2Handler.StreamMultiplexer, ObjectIdentifier), any Error>) -> Void = {
            [weak self] result in
            switch result {
            case .failure(let error):
                done(.failure(error))
            case .success((let multiplexer, let connection)):
                self?.openStream(on: multiplexer, connection: connection, target: target, done)
            }
        }
        switch http2[target] {
        case .ready(let multiplexer, let connection):
            self.openStream(on: multiplexer, connection: connection, target: target, done)
        case .connecting(var waiters):
            waiters.append(openStream)
            http2[target] = .connecting(waiters)
        case nil:
            http2[target] = .connecting([openStream])
            connectHTTP2(to: target)
        }
    }

    private func openStream(
        on multiplexer: NIOHTTP2Handler.StreamMultiplexer, connection: ObjectIdentifier, target: HTTPUpstreamTarget,
        _ done: @escaping ExchangeCallback
    ) {
        multiplexer.createStreamChannel { stream in
            stream.eventLoop.makeCompletedFuture {
                try stream.pipeline.syncOperations.addHandlers([
                    HTTP2FramePayloadToHTTP1ClientCodec(httpProtocol: .http),
                    UpstreamExchangeHandler(kind: .http2Stream),
                ])
            }
        }
        .assumeIsolated().whenComplete { [weak self] result in
            switch result {
            case .success(let stream):
                done(Result { try stream.pipeline.syncOperations.handler(type: UpstreamExchangeHandler.self) })
            case .failure(let error):
                // A connection that cannot open streams (GOAWAY, closing) is dropped so the next request reconnects.
                if case .ready(_, connection) = self?.http2[target] {
                    self?.http2[target] = nil
                }
                done(.failure(error))
            }
        }
    }

    private func connectHTTP2(to target: HTTPUpstreamTarget) {
        connect(to: target).assumeIsolated().whenComplete { [weak self] result in
            guard let self else { return }
            let outcome = Result { () throws -> (NIOHTTP2Handler.StreamMultiplexer, ObjectIdentifier) in
                let channel = try result.get()
                let id = ObjectIdentifier(channel)
                do {
                    let multiplexer = try Self.configureHTTP2Client(on: channel) { [weak self] in
                        self?.forgetHTTP2(target: target, connection: id)
                    }
                    channel.closeFuture.assumeIsolated().whenComplete { [weak self] _ in
                        self?.forgetHTTP2(target: target, connection: id)
                    }
                    return (multiplexer, id)
                } catch {
                    channel.close(promise: nil)
                    throw error
                }
            }
            guard case .connecting(let waiters) = http2[target] else { return }
            switch outcome {
            case .success((let multiplexer, let connection)):
                http2[target] = .ready(multiplexer, connection)
            case .failure:
                http2[target] = nil
            }
            for waiter in waiters {
                waiter(outcome)
            }
        }
    }

    /// Stops handing out `connection` for `target`: it closed, or its peer sent GOAWAY (new streams would fail).
    private func forgetHTTP2(target: HTTPUpstreamTarget, connection: ObjectIdentifier) {
        if case .ready(_, connection) = http2[target] {
            http2[target] = nil
        }
    }

    /// Adds the HTTP/2 client handlers to a new upstream connection, with upstream's fixed windows (64 KiB per stream;
    /// connection 1 MiB is the peer's to grant) and the streams' flushes coalesced (``FlushCoalescingHandler``), and
    /// releases the bytes the TLS gate held. `onGoAway` is called when the peer sends GOAWAY; the connection itself
    /// stays for the streams in flight.
    private static func configureHTTP2Client(
        on channel: any Channel, onGoAway: @escaping () -> Void
    ) throws -> NIOHTTP2Handler.StreamMultiplexer {
        var connection = NIOHTTP2Handler.ConnectionConfiguration()
        connection.initialSettings = [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: 100),
            HTTP2Setting(parameter: .maxHeaderListSize, value: maximumHeaderListSize),
            HTTP2Setting(parameter: .enablePush, value: 0),
        ]
        var stream = NIOHTTP2Handler.StreamConfiguration()
        stream.targetWindowSize = 65535
        try channel.pipeline.syncOperations.addHandler(FlushCoalescingHandler())
        let multiplexer = try channel.pipeline.syncOperations.configureHTTP2Pipeline(
            mode: .client, connectionConfiguration: connection, streamConfiguration: stream
        ) { pushed in
            pushed.close()
        }
        try channel.pipeline.syncOperations.addHandler(UpstreamConnectionWatcher(onGoAway: onGoAway))
        TLSHandshakeGate.release(in: channel.pipeline.syncOperations)
        return multiplexer
    }

    private func connect(to target: HTTPUpstreamTarget) -> EventLoopFuture<any Channel> {
        guard let identity = target.identity else {
            return connector.connect(to: target.address, on: eventLoop, tls: nil)
        }
        guard let tls = credentials.clientConfiguration(expectedIdentity: identity, serverName: target.serverName)
        else {
            return eventLoop.makeFailedFuture(ProxyConnectionError.noIdentityCertificate)
        }
        return connector.connect(to: target.address, on: eventLoop, tls: tls)
    }
}

/// One ``HTTPUpstreamPool`` per event loop, created on first use: what the inbound or outbound proxy shares between
/// its connections.
final class HTTPUpstreamPools: Sendable {
    private let pools = Mutex<[ObjectIdentifier: NIOLoopBound<HTTPUpstreamPool>]>([:])
    private let connector: UpstreamConnector
    private let credentials: ProxyCredentials
    private let idleTimeout: TimeAmount
    private let maximumIdlePerTarget: Int

    init(
        connector: UpstreamConnector, credentials: ProxyCredentials, idleTimeout: TimeAmount = .seconds(3),
        maximumIdlePerTarget: Int = 10_000
    ) {
        self.connector = connector
        self.credentials = credentials
        self.idleTimeout = idleTimeout
        self.maximumIdlePerTarget = maximumIdlePerTarget
    }

    /// The pool of `eventLoop`; call it on that event loop (once per connection, not per request).
    func pool(for eventLoop: any EventLoop) -> HTTPUpstreamPool {
        let key = ObjectIdentifier(eventLoop)
        if let existing = pools.withLock({ $0[key] }) {
            return existing.value
        }
        let created = NIOLoopBound(
            HTTPUpstreamPool(
                eventLoop: eventLoop, connector: connector, credentials: credentials, idleTimeout: idleTimeout,
                maximumIdlePerTarget: maximumIdlePerTarget),
            eventLoop: eventLoop)
        let bound = pools.withLock { pools in
            if let raced = pools[key] { return raced }
            pools[key] = created
            return created
        }
        return bound.value
    }
}

/// The last handler of an upstream HTTP/2 connection: reports a GOAWAY from the peer, closes the connection when the
/// peer ends its output (a half-closed connection would otherwise stay open and pooled) or on a connection error.
private final class UpstreamConnectionWatcher: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame

    private var onGoAway: (() -> Void)?

    init(onGoAway: @escaping () -> Void) {
        self.onGoAway = onGoAway
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .goAway = unwrapInboundIn(data).payload, let onGoAway {
            self.onGoAway = nil
            onGoAway()
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            context.close(promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
