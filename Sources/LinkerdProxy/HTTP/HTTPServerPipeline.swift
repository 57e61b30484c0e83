import Logging
import NIOCore
import NIOHTTP1
import NIOHTTP2

/// What the HTTP servers of one proxy side share: their upstream connection pools.
struct HTTPProxyServer: Sendable {
    let pools: HTTPUpstreamPools
    let settings: HTTPServerSettings
    let inFlight: InFlightRequests
    let errors: ProxyErrorRecorder
    let logger: Logger

    init(
        pools: HTTPUpstreamPools, settings: HTTPServerSettings = HTTPServerSettings(), errors: ProxyErrorRecorder,
        logger: Logger
    ) {
        self.pools = pools
        self.settings = settings
        self.inFlight = InFlightRequests(limit: settings.maxInFlightRequests)
        self.errors = errors
        self.logger = logger
    }

    /// Turns `channel`, whose first bytes detection found to be `version`, into an HTTP proxy server: NIO's HTTP/1
    /// server codec (request heads and headers bounded at 80 KiB; malformed requests, including conflicting
    /// `Content-Length` and `Transfer-Encoding`, answered with 400 and closed) with pipelining kept in order by
    /// ``HTTP1RequestSequencer``, or NIO's HTTP/2 server (its flood protections: reset-rate, CONTINUATION and glitch
    /// limits) with one ``HTTPProxyServerHandler`` per stream and the streams' flushes coalesced
    /// (``FlushCoalescingHandler``), serving `side` with `router`. Call it on the channel's event loop; handlers are
    /// added at the end.
    func configure(
        _ channel: any Channel, version: HTTPUpstreamTarget.Version, side: HTTPServerSide,
        router: any HTTPRequestRouter
    ) throws {
        let pool = pools.pool(for: channel.eventLoop)
        let pipeline = channel.pipeline.syncOperations
        switch version {
        case .http1:
            try pipeline.configureHTTPServerPipeline(
                withPipeliningAssistance: false, withServerUpgrade: nil, withErrorHandling: true)
            // In NIO's place for its pipelining handler: before the header validator and the error handler.
            try pipeline.addHandler(
                HTTP1RequestSequencer(), position: .before(pipeline.handler(type: NIOHTTPResponseHeadersValidator.self))
            )
            try pipeline.addHandler(
                HTTPProxyServerHandler(
                    side: side, router: router, pool: pool, inFlight: inFlight, isHTTP2Stream: false, errors: errors,
                    logger: logger))
        case .http2:
            var connection = NIOHTTP2Handler.ConnectionConfiguration()
            connection.initialSettings = settings.initialSettings
            var stream = NIOHTTP2Handler.StreamConfiguration()
            stream.targetWindowSize = settings.initialStreamWindowSize
            let inFlight = inFlight
            let errors = errors
            let boundPool = NIOLoopBound(pool, eventLoop: channel.eventLoop)
            let logger = logger
            // GOAWAY and a close once the streams are done when the connection is asked to quiesce (shutdown).
            let manager = NIOHTTP2ServerConnectionManagementHandler(
                eventLoop: channel.eventLoop,
                configuration: .init(
                    maxIdleTime: nil, maxAge: nil, maxGraceTime: nil,
                    keepalive: settings.keepAlive.map { .init(pingInterval: $0.interval, ackTimeout: $0.timeout) }))
            try pipeline.addHandler(FlushCoalescingHandler())
            _ = try pipeline.configureHTTP2Pipeline(
                mode: .server, connectionConfiguration: connection, streamConfiguration: stream,
                streamDelegate: manager.http2StreamDelegate
            ) { stream in
                stream.eventLoop.makeCompletedFuture {
                    try stream.pipeline.syncOperations.addHandlers([
                        HTTP2FramePayloadToHTTP1ServerCodec(),
                        HTTPProxyServerHandler(
                            side: side, router: router, pool: boundPool.value, inFlight: inFlight,
                            isHTTP2Stream: true, errors: errors, logger: logger),
                    ])
                }
            }
            try pipeline.addHandler(manager)
            try pipeline.addHandler(ConnectionErrorCloser(errors: errors, logger: logger))
        }
    }
}

/// The last handler of an HTTP/2 server connection: a connection-level error (a protocol violation, or a flood
/// NIO's HTTP/2 handler stopped: rapid resets, CONTINUATION or control-frame floods, after it sent its GOAWAY), or
/// the client ending its output, closes the connection, which nothing else would do.
private final class ConnectionErrorCloser: ChannelInboundHandler {
    typealias InboundIn = NIOAny

    private let errors: ProxyErrorRecorder
    private let logger: Logger

    init(errors: ProxyErrorRecorder, logger: Logger) {
        self.errors = errors
        self.logger = logger
    }

    /// A client that ended its output opens no more streams; what it started has been read.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            context.close(promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        errors.request(ProxyErrorRecorder.kind(of: error))
        logger.info(
            "closing an HTTP/2 connection",
            metadata: ["client": "\(context.remoteAddress?.endpointText ?? "unknown")", "error": "\(error)"])
        context.close(promise: nil)
    }
}
