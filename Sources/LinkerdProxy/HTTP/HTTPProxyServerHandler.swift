import LinkerdProxyCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTP2

/// Forwards the HTTP requests of one server-side connection (HTTP/1, after NIO's server codec and
/// ``HTTP1RequestSequencer``) or one HTTP/2 stream (after NIO's HTTP/2-to-HTTP/1 codec) to their upstreams, and
/// their responses back.
///
/// Per request, on the connection's event loop and without tasks:
/// 1. the header rules of the side (``HTTPServerSide``): the `l5d-orig-proto` downgrade and `l5d-client-id`
///    inbound; hop-by-hop headers either way;
/// 2. the ``HTTPRequestRouter`` decides the route (it may queue the request, or fail it fast); meanwhile reads are
///    held back and what was already read waits in order;
/// 3. ``HTTPUpstreamPool`` gives an exchange (pooled HTTP/1, or a stream on the HTTP/2 connection); an HTTP/1
///    request to an HTTP/2 route travels with `l5d-orig-proto`;
/// 4. request parts stream up and response parts stream down, each direction paced by the other side's writability;
/// 5. the response is restored for the client (version, `l5d-orig-proto`), and metrics and the balancer's RTT sample
///    are recorded at its end.
///
/// When the route or the upstream fails before the response starts, the proxy answers itself (``HTTPProxyError``:
/// 502/503/504, or `grpc-status` for gRPC). After it started, the client's HTTP/1 connection is closed, or its
/// HTTP/2 stream reset (with the upstream's code when the upstream reset its stream).
final class HTTPProxyServerHandler: ChannelDuplexHandler, RemovableChannelHandler, UpstreamResponseReceiver {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// One request in flight.
    private final class Exchange {
        /// The request as the client sent it, after the inbound downgrade.
        let head: HTTPRequestHead
        /// The HTTP version to answer with (the client's).
        let clientVersion: HTTPVersion
        /// The version the application answers a downgraded request with is marked on the response.
        let downgraded: Bool
        let isGRPC: Bool
        let startedAt: NIODeadline
        var keepAlive: Bool
        var route: UpstreamRoute?
        var upstream: UpstreamExchangeHandler?
        /// Request parts read before the upstream was ready, in order.
        var pending: [HTTPClientRequestPart] = []
        var upgradedToOrigProto = false
        /// An HTTP/1.1 upgrade or CONNECT: after a 101 (or a 2xx to CONNECT) both connections become one byte stream.
        let isUpgrade: Bool
        var switchingToSplice = false
        var requestEnded = false
        var responseStarted = false
        var responseStatus = 0
        var grpcStatus: Int?
        var rttReported = false
        /// Whether the request counts against the in-flight limit (released when the exchange ends).
        var admitted = false
        /// The `grpc-*` status fields of a trailers-only gRPC response, to send as trailers.
        var statusTrailers: HTTPHeaders?

        init(head: HTTPRequestHead, clientVersion: HTTPVersion, downgraded: Bool, keepAlive: Bool, isUpgrade: Bool) {
            self.head = head
            self.isUpgrade = isUpgrade
            self.clientVersion = clientVersion
            self.downgraded = downgraded
            self.isGRPC = HTTPHeaderRules.isGRPC(head)
            self.keepAlive = keepAlive
            self.startedAt = .now()
        }
    }

    private let side: HTTPServerSide
    private let router: any HTTPRequestRouter
    private let pool: HTTPUpstreamPool
    private let inFlight: InFlightRequests
    private let isHTTP2Stream: Bool
    private let errors: ProxyErrorRecorder
    private let logger: Logger
    private var context: ChannelHandlerContext?
    private var exchange: Exchange?
    /// Set once a response ended while the request was still arriving: the rest of the request is dropped.
    private var discardingRequest = false
    private var heldRead = false

    init(
        side: HTTPServerSide, router: any HTTPRequestRouter, pool: HTTPUpstreamPool, inFlight: InFlightRequests,
        isHTTP2Stream: Bool, errors: ProxyErrorRecorder, logger: Logger
    ) {
        self.side = side
        self.router = router
        self.pool = pool
        self.inFlight = inFlight
        self.isHTTP2Stream = isHTTP2Stream
        self.errors = errors
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    // MARK: Requests from the client.

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            discardingRequest = false
            startRequest(head, context: context)
        case .body(let body):
            forward(.body(.byteBuffer(body)))
        case .end(let trailers):
            forward(.end(trailers))
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        exchange?.upstream?.flush()
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        if let exchange, !exchange.requestEnded, exchange.upstream.map({ !$0.isWritable }) ?? true {
            heldRead = true
        } else {
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            exchange?.upstream?.resumeReads()
        }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A malformed request (NIO's codec has answered it with 400); a client going away is not the proxy's error.
        if error is HTTPParserError {
            errors.request(.badRequest)
        }
        logger.debug("closing the client's connection", metadata: ["error": "\(error)"])
        abandonUpstream()
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        abandonUpstream()
        context.fireChannelInactive()
    }

    /// An HTTP/1 client that ended its output sends no more requests: an idle connection closes now, a busy one
    /// after its response.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event, !isHTTP2Stream {
            if let exchange {
                exchange.keepAlive = false
            } else {
                context.close(promise: nil)
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func startRequest(_ received: HTTPRequestHead, context: ChannelHandlerContext) {
        var head = received
        let clientVersion = head.version
        var downgraded = false
        if case .inbound = side, head.version.major == 2, HTTPHeaderRules.downgradeFromOrigProto(&head) != nil {
            downgraded = true
        }
        let isUpgrade = !isHTTP2Stream && HTTPHeaderRules.isUpgrade(head)
        // Any `Upgrade` header (even h2c, which is not honoured) makes NIO's decoder stop parsing after this request:
        // such a connection cannot carry another one.
        let keepAlive =
            !isHTTP2Stream && head.isKeepAlive && head.version == .http1_1 && !head.headers.contains(name: "upgrade")
        if !isUpgrade {
            HTTPHeaderRules.stripHopByHop(&head.headers)
        }
        // After the hop-by-hop rules, so that a client cannot have `Connection` remove the verified identity.
        if case .inbound(let clientIdentity) = side {
            HTTPHeaderRules.setClientIdentity(clientIdentity, in: &head.headers)
        }
        let exchange = Exchange(
            head: head, clientVersion: clientVersion, downgraded: downgraded, keepAlive: keepAlive,
            isUpgrade: isUpgrade)
        self.exchange = exchange
        if !isHTTP2Stream, let refusal = HTTPHeaderRules.definitelyBad(head) {
            fail(exchange, refusal)
            return
        }
        guard inFlight.admit() else {
            fail(exchange, .loadShed)
            return
        }
        exchange.admitted = true
        if let route = router.immediateRoute(head) {
            connect(exchange, route: route, isUpgrade: isUpgrade)
            return
        }
        router.route(head, on: context.eventLoop).assumeIsolated().whenComplete { result in
            guard self.exchange === exchange else {
                // The client went away while the request waited: the endpoint picked for it is not used.
                if case .success(let route) = result { route.onComplete?(nil) }
                return
            }
            switch result {
            case .success(let route):
                self.connect(exchange, route: route, isUpgrade: isUpgrade)
            case .failure(let error):
                self.fail(exchange, HTTPProxyError(upstream: error))
            }
        }
    }

    private func connect(_ exchange: Exchange, route: UpstreamRoute, isUpgrade: Bool) {
        var head = exchange.head
        var target = route.target
        if head.version.major == 1 {
            // A request without Host has no authority for HTTP/2: it stays HTTP/1 to the peer.
            if route.upgradesHTTP1 && !isUpgrade && head.headers.contains(name: "host") {
                HTTPHeaderRules.upgradeToOrigProto(&head)
                exchange.upgradedToOrigProto = true
            } else {
                target.version = .http1
            }
        }
        exchange.route = route
        route.metrics?.recordRequest(now: exchange.startedAt.uptimeNanoseconds)
        pool.exchange(for: target) { result in
            guard self.exchange === exchange else {
                // The client went away meanwhile; the exchange was never used.
                if case .success(let upstream) = result { upstream.abandon() }
                return
            }
            switch result {
            case .success(let upstream):
                exchange.upstream = upstream
                upstream.start(self, keepAlive: target.version == .http1 && !isUpgrade)
                upstream.send(.head(head))
                let pending = exchange.pending
                exchange.pending = []
                for part in pending {
                    upstream.send(part)
                }
                upstream.flush()
                self.resumeHeldRead()
            case .failure(let error):
                self.fail(exchange, HTTPProxyError(upstream: error))
            }
        }
    }

    private func forward(_ part: HTTPClientRequestPart) {
        guard let exchange, !discardingRequest else { return }
        if case .end = part {
            exchange.requestEnded = true
        }
        if let upstream = exchange.upstream {
            upstream.send(part)
        } else {
            exchange.pending.append(part)
        }
    }

    private func resumeHeldRead() {
        guard heldRead, let context else { return }
        heldRead = false
        context.read()
    }

    // MARK: Responses from the upstream.

    var canAcceptResponse: Bool { context?.channel.isWritable ?? false }

    func upstreamBecameWritable() {
        resumeHeldRead()
    }

    func upstreamReadComplete() {
        context?.flush()
    }

    func upstreamResponse(_ part: HTTPClientResponsePart) {
        guard let context, let exchange else { return }
        switch part {
        case .head(var head):
            guard head.status.code >= 200 || head.status == .switchingProtocols else {
                // 1xx informational responses are not forwarded: the final response follows.
                return
            }
            exchange.responseStarted = true
            exchange.responseStatus = Int(head.status.code)
            if exchange.isUpgrade
                && (head.status == .switchingProtocols
                    || (exchange.head.method == .CONNECT && (200..<300).contains(head.status.code)))
            {
                exchange.switchingToSplice = true
                if exchange.head.method == .CONNECT {
                    head.headers.remove(name: "content-length")
                    head.headers.remove(name: "transfer-encoding")
                }
            }
            prepare(&head, for: exchange)
            if exchange.isGRPC, let status = head.headers.first(name: "grpc-status").flatMap({ Int($0) }) {
                exchange.grpcStatus = status
                // A trailers-only gRPC response (one HEADERS frame ending the stream) reaches this handler as a head
                // and an empty end; written so, it would become HEADERS, then an empty DATA frame ending the stream,
                // which gRPC clients reject. Its status goes in the trailers instead.
                if isHTTP2Stream { exchange.statusTrailers = Self.takeGRPCStatus(from: &head.headers) }
            }
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            if exchange.switchingToSplice {
                spliceUpgraded(exchange, context: context)
            }
        case .body(let body):
            reportRTT(exchange)
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        case .end(var trailers):
            reportRTT(exchange)
            if exchange.isGRPC, let status = trailers?.first(name: "grpc-status").flatMap({ Int($0) }) {
                exchange.grpcStatus = status
            }
            if let statusTrailers = exchange.statusTrailers {
                var merged = trailers ?? HTTPHeaders()
                merged.add(contentsOf: statusTrailers)
                trailers = merged
            }
            finish(exchange, with: .end(trailers), error: nil)
        }
    }

    func upstreamFailed(_ failure: UpstreamFailure) {
        guard let exchange else { return }
        exchange.upstream = nil
        // An HTTP/2 reset between HTTP/2 peers is passed on, not answered (§2.9: H2 errors are not rescued); only a
        // request the proxy upgraded to HTTP/2 itself gets a 502 instead.
        let propagatesReset: Bool
        if isHTTP2Stream, case .reset = failure, !exchange.upgradedToOrigProto {
            propagatesReset = true
        } else {
            propagatesReset = false
        }
        if !exchange.responseStarted && !propagatesReset {
            fail(exchange, .upstreamFailed(failure.description))
            return
        }
        // The response is under way: the client must learn it is incomplete.
        recordResponse(exchange, error: failureLabel(failure))
        endExchange(exchange)
        if !exchange.rttReported {
            exchange.rttReported = true
            exchange.route?.onComplete?(nil)
        }
        guard let context else { return }
        if isHTTP2Stream, case .reset(let code) = failure, !exchange.upgradedToOrigProto {
            resetStream(context: context, code: code)
        } else {
            context.close(promise: nil)
        }
    }

    /// Turns the client's connection and the upstream one into a byte stream after an accepted upgrade or CONNECT
    /// (§2.6): the response head is flushed to the client, then both sides lose their HTTP handlers and are spliced.
    /// The switch runs after the current read's handling; the codecs hold what arrives meanwhile and pass it on (the
    /// upstream's decoder forwards its leftover bytes; the client must await the response before sending more, as
    /// WebSocket and CONNECT clients do).
    private func spliceUpgraded(_ exchange: Exchange, context: ChannelHandlerContext) {
        context.flush()
        recordResponse(exchange, error: nil)
        exchange.rttReported = true
        exchange.route?.onComplete?(elapsed(exchange))
        endExchange(exchange)
        guard let upstream = exchange.upstream, let upstreamChannel = upstream.channel else {
            context.close(promise: nil)
            return
        }
        upstream.detach()
        let client = context.channel
        context.eventLoop.assumeIsolated().execute {
            do {
                let clientPipeline = client.pipeline.syncOperations
                let upstreamPipeline = upstreamChannel.pipeline.syncOperations
                // The last handlers go first, so that bytes the decoders forward on removal reach the splice.
                clientPipeline.removeHandler(self, promise: nil)
                upstreamPipeline.removeHandler(upstream, promise: nil)
                _ = TCPSplice.splice(client, upstreamChannel)
                try clientPipeline.removeHandler(clientPipeline.handler(type: HTTP1RequestSequencer.self))
                try clientPipeline.removeHandler(clientPipeline.handler(type: HTTPServerProtocolErrorHandler.self))
                try clientPipeline.removeHandler(clientPipeline.handler(type: NIOHTTPResponseHeadersValidator.self))
                try clientPipeline.removeHandler(clientPipeline.handler(type: HTTPResponseEncoder.self))
                try clientPipeline.removeHandler(
                    clientPipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self))
                try upstreamPipeline.removeHandler(upstreamPipeline.handler(type: NIOHTTPRequestHeadersValidator.self))
                try upstreamPipeline.removeHandler(upstreamPipeline.handler(type: HTTPRequestEncoder.self))
                try upstreamPipeline.removeHandler(
                    upstreamPipeline.handler(type: ByteToMessageHandler<HTTPResponseDecoder>.self))
                // The HTTP handlers may have held a read back (a request pipelined behind the upgrade waits for a
                // response's end, which an upgrade never has); the splice paces reads from here on.
                client.read()
                upstreamChannel.read()
            } catch {
                self.logger.info("closing an upgraded connection", metadata: ["error": "\(error)"])
                client.close(promise: nil)
                upstreamChannel.close(promise: nil)
            }
        }
    }

    /// The response head as the client gets it.
    private func prepare(_ head: inout HTTPResponseHead, for exchange: Exchange) {
        if head.status != .switchingProtocols {
            HTTPHeaderRules.stripHopByHop(&head.headers)
        }
        if head.headers.contains(name: HTTPHeaderRules.proxyConnectionHeader) {
            head.headers.remove(name: HTTPHeaderRules.proxyConnectionHeader)
        }
        if exchange.upgradedToOrigProto {
            HTTPHeaderRules.restoreOrigProtoResponse(&head, version: exchange.clientVersion)
        }
        if exchange.downgraded {
            HTTPHeaderRules.markOrigProtoResponse(&head, version: head.version)
        }
        if !isHTTP2Stream {
            head.version = exchange.clientVersion
            if !exchange.keepAlive && exchange.clientVersion == .http1_1 && !exchange.switchingToSplice {
                head.headers.replaceOrAdd(name: "connection", value: "close")
            }
        }
    }

    /// Answers `exchange` with `error`, or ends its connection when the response already started.
    private func fail(_ exchange: Exchange, _ error: HTTPProxyError) {
        guard let context else { return }
        errors.request(error.errorKind)
        logger.info(
            "answering the request with an error",
            metadata: ["uri": "\(exchange.head.uri)", "error": "\(error)"])
        exchange.upstream?.abandon()
        exchange.upstream = nil
        guard !exchange.responseStarted else {
            endExchange(exchange)
            context.close(promise: nil)
            return
        }
        var request = exchange.head
        request.version = isHTTP2Stream ? .http2 : exchange.clientVersion
        var head = error.response(to: request, informational: side.informationalHeaders)
        exchange.responseStarted = true
        exchange.responseStatus = Int(head.status.code)
        if exchange.isGRPC {
            exchange.grpcStatus = error.grpcStatus
        }
        if error.closesConnection {
            exchange.keepAlive = false
        }
        let trailers = isHTTP2Stream && exchange.isGRPC ? Self.takeGRPCStatus(from: &head.headers) : nil
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        finish(exchange, with: .end(trailers), error: error.errorKind.rawValue)
    }

    /// Writes the response's last part and closes the books on `exchange`; an HTTP/1 connection that is not kept,
    /// or whose request is still arriving, closes once the response is out.
    private func finish(_ exchange: Exchange, with end: HTTPServerResponsePart, error: String?) {
        guard let context else { return }
        recordResponse(exchange, error: error)
        if !exchange.rttReported {
            exchange.rttReported = true
            exchange.route?.onComplete?(error == nil ? elapsed(exchange) : nil)
        }
        endExchange(exchange)
        let closing = !isHTTP2Stream && (!exchange.keepAlive || !exchange.requestEnded)
        if !exchange.requestEnded {
            discardingRequest = true
            exchange.upstream?.abandon()
        }
        if closing {
            context.writeAndFlush(wrapOutboundOut(end)).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        } else {
            context.writeAndFlush(wrapOutboundOut(end), promise: nil)
        }
        resumeHeldRead()
    }

    private func reportRTT(_ exchange: Exchange) {
        guard !exchange.rttReported else { return }
        exchange.rttReported = true
        exchange.route?.onComplete?(elapsed(exchange))
    }

    private func elapsed(_ exchange: Exchange) -> UInt64 {
        let now = NIODeadline.now().uptimeNanoseconds
        return now &- exchange.startedAt.uptimeNanoseconds
    }

    private func recordResponse(_ exchange: Exchange, error: String?) {
        guard let metrics = exchange.route?.metrics else { return }
        let now = NIODeadline.now().uptimeNanoseconds
        let isFailure: Bool
        if let grpcStatus = exchange.grpcStatus {
            isFailure = error != nil || Self.grpcFailureCodes.contains(grpcStatus)
        } else {
            isFailure = error != nil || exchange.responseStatus >= 500
        }
        metrics.recordResponse(
            statusCode: exchange.responseStatus, grpcStatus: exchange.isGRPC ? (exchange.grpcStatus ?? 2) : nil,
            isFailure: isFailure, error: error, latencyNanoseconds: now &- exchange.startedAt.uptimeNanoseconds,
            now: now)
    }

    /// Removes the `grpc-status`, `grpc-message` and `grpc-status-details-bin` fields from `headers` and returns them.
    private static func takeGRPCStatus(from headers: inout HTTPHeaders) -> HTTPHeaders {
        var status = HTTPHeaders()
        for name in ["grpc-status", "grpc-message", "grpc-status-details-bin"] {
            for value in headers[name] {
                status.add(name: name, value: value)
            }
            headers.remove(name: name)
        }
        return status
    }

    /// gRPC codes classified as failures by default (§2.10): Unknown, DeadlineExceeded, PermissionDenied, Internal,
    /// Unavailable, DataLoss.
    private static let grpcFailureCodes: Set<Int> = [2, 4, 7, 13, 14, 15]

    private func failureLabel(_ failure: UpstreamFailure) -> String {
        switch failure {
        case .reset(let code): "h2(\(code))"
        case .connection: "i/o"
        }
    }

    /// Resets the client's HTTP/2 stream with `code`, written below the HTTP/1 codec, which has no reset of its own.
    private func resetStream(context: ChannelHandlerContext, code: HTTP2ErrorCode) {
        guard
            let codec = try? context.pipeline.syncOperations.context(
                handlerType: HTTP2FramePayloadToHTTP1ServerCodec.self)
        else {
            context.close(promise: nil)
            return
        }
        codec.writeAndFlush(NIOAny(HTTP2Frame.FramePayload.rstStream(code)), promise: nil)
    }

    /// Forgets the exchange in progress, releasing its place among the requests in flight.
    private func endExchange(_ exchange: Exchange) {
        if exchange.admitted {
            exchange.admitted = false
            inFlight.release()
        }
        if self.exchange === exchange {
            self.exchange = nil
        }
    }

    private func abandonUpstream() {
        guard let exchange else { return }
        endExchange(exchange)
        exchange.upstream?.abandon()
        exchange.upstream = nil
        if !exchange.rttReported {
            exchange.rttReported = true
            exchange.route?.onComplete?(nil)
        }
    }
}

@available(*, unavailable)
extension HTTPProxyServerHandler: Sendable {}
