import Logging
import NIOCore
import NIOHTTP1

/// Serves the requests of one HTTP/1.1 connection, one at a time, with an `HTTPResponder`.
///
/// It sits after NIO's HTTP decoder and `HTTPServerPipelineHandler` (which holds back pipelined requests until the
/// current response is written), so it sees one request's head, body parts and end, then the next request's:
///
/// ```
/// idle ──head──▶ route ──readBody──▶ reading ──end──▶ responding ──response written──▶ idle (or close)
///                  │                    │ over the limit: 413
///                  └──respond───────────┴───────────▶ discarding ──end──▶ idle (or close)
/// ```
///
/// A request answered before its end (an early answer, a 413) has the rest of its body read and dropped, so the
/// client sees the answer rather than a reset. Dropping is bounded by `discardLimit` bytes, past which the
/// connection is closed at once. After a 413 the connection is always closed. The timeouts of the connection
/// (`ConnectionTimeouts`) are told when a request's head arrives, when it is complete and when its answer is out.
final class HTTPConnectionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        /// Waiting for a request head.
        case idle
        /// Reading an accepted request's body.
        case reading(HTTPRequestHead, body: ByteBuffer, maximumBytes: Int)
        /// The request is complete; the responder is working on it.
        case responding(HTTPRequestHead)
        /// The request has been answered; the rest of it is dropped, up to `budget` more bytes.
        case discarding(budget: Int, closeAtEnd: Bool)
        /// The connection is closing; everything is ignored.
        case closing
    }

    private var state = State.idle
    private let responder: any HTTPResponder
    private let timeouts: ConnectionTimeouts
    private let discardLimit: Int
    private let logger: Logger
    /// The last response's write, so a close waits for the answer to be out.
    private var lastWrite: EventLoopFuture<Void>?

    init(responder: any HTTPResponder, timeouts: ConnectionTimeouts, discardLimit: Int, logger: Logger) {
        self.responder = responder
        self.timeouts = timeouts
        self.discardLimit = discardLimit
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            received(head, context: context)
        case .body(var chunk):
            switch state {
            case .reading(let head, var body, let maximumBytes):
                guard body.readableBytes + chunk.readableBytes <= maximumBytes else {
                    answerEarly(Self.tooLarge(maximumBytes), version: head.version, close: true, context: context)
                    return
                }
                state = .closing  // Not a transition: lets `body` be appended to without a copy.
                body.writeBuffer(&chunk)
                state = .reading(head, body: body, maximumBytes: maximumBytes)
            case .discarding(let budget, let closeAtEnd):
                guard chunk.readableBytes <= budget else {
                    close(context: context)
                    return
                }
                state = .discarding(budget: budget - chunk.readableBytes, closeAtEnd: closeAtEnd)
            case .idle, .responding, .closing:
                break
            }
        case .end:
            switch state {
            case .reading(let head, let body, _):
                state = .responding(head)
                timeouts.requestComplete()
                dispatch(head, body: body, context: context)
            case .discarding(_, let closeAtEnd):
                if closeAtEnd {
                    close(context: context)
                } else {
                    state = .idle
                    timeouts.responseSent()
                }
            case .idle, .responding, .closing:
                break
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("closing an HTTP connection after an error", metadata: ["error": "\(error)"])
        state = .closing
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        state = .closing
        context.fireChannelInactive()
    }

    private func received(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        guard case .idle = state else { return }
        timeouts.headReceived()
        switch responder.route(head, from: context.channel.remoteAddress) {
        case .respond(let response):
            answerEarly(response, version: head.version, close: !head.isKeepAlive, context: context)
        case .readBody(let maximumBytes):
            let declared = head.headers.first(name: "Content-Length").flatMap { Int($0) }
            if let declared, declared > maximumBytes {
                answerEarly(Self.tooLarge(maximumBytes), version: head.version, close: true, context: context)
                return
            }
            let body = context.channel.allocator.buffer(capacity: min(declared ?? 0, maximumBytes))
            state = .reading(head, body: body, maximumBytes: maximumBytes)
        }
    }

    /// Answers before the request's end, then drops the rest of the request.
    private func answerEarly(
        _ response: HTTPResponse, version: HTTPVersion, close: Bool, context: ChannelHandlerContext
    ) {
        write(response, version: version, close: close, context: context)
        state = .discarding(budget: discardLimit, closeAtEnd: close)
    }

    private func dispatch(_ head: HTTPRequestHead, body: ByteBuffer, context: ChannelHandlerContext) {
        responder.respond(to: head, body: body, on: context.eventLoop).hop(to: context.eventLoop)
            .assumeIsolated()
            .whenComplete { result in
                guard case .responding = self.state else { return }
                let response: HTTPResponse
                switch result {
                case .success(let answer):
                    response = answer
                case .failure(let error):
                    self.logger.error("the request handler failed", metadata: ["error": "\(error)"])
                    response = .text(.internalServerError, "internal error\n")
                }
                let close = !head.isKeepAlive
                // The state moves on before the write: writing the response's end makes `HTTPServerPipelineHandler`
                // hand over a pipelined request at once, from inside the write, and it must find us idle.
                if close {
                    self.state = .closing
                } else {
                    self.state = .idle
                    self.timeouts.responseSent()
                }
                self.write(response, version: head.version, close: close, context: context)
                if close {
                    self.close(context: context)
                }
            }
    }

    private func write(_ response: HTTPResponse, version: HTTPVersion, close: Bool, context: ChannelHandlerContext) {
        var headers = response.headers
        headers.replaceOrAdd(name: "Content-Length", value: String(response.body.readableBytes))
        if close {
            headers.replaceOrAdd(name: "Connection", value: "close")
        } else if version.major == 1, version.minor == 0 {
            headers.replaceOrAdd(name: "Connection", value: "keep-alive")
        }
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: version, status: response.status, headers: headers))),
            promise: nil)
        if response.body.readableBytes > 0 {
            context.write(wrapOutboundOut(.body(.byteBuffer(response.body))), promise: nil)
        }
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: written)
        lastWrite = written.futureResult
    }

    /// Closes once the last response is written (at once if there is none).
    private func close(context: ChannelHandlerContext) {
        state = .closing
        timeouts.stop()
        guard let lastWrite else {
            context.close(promise: nil)
            return
        }
        lastWrite.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    private static func tooLarge(_ maximumBytes: Int) -> HTTPResponse {
        .text(.payloadTooLarge, "request body larger than \(maximumBytes) bytes\n")
    }
}

/// The deadlines of one connection, kept by `HTTPServer`:
///
/// - from the connection's start (including the TLS handshake) to its first request's complete head, and from the
///   first byte of each later request to its complete head: `headerReadTimeout` (Go's `ReadHeaderTimeout`);
/// - from a complete head to the request's end: `bodyReadTimeout`;
/// - between a response and the next request's first byte: `idleTimeout`, longer than the idle timeout of the
///   clients' connection pools (Go's is 90 s) so that a client, not this server, retires an idle connection and
///   never sends a request on a connection the server is closing;
/// - none while the responder works.
///
/// When a deadline passes the connection is closed without an answer. Confined to the channel's event loop.
final class ConnectionTimeouts {
    struct Limits: Sendable {
        var headerRead: TimeAmount
        var bodyRead: TimeAmount
        var idle: TimeAmount
    }

    private enum Phase {
        case awaitingRequest
        case readingHead
        case readingBody
        case handling
        case stopped
    }

    private let limits: Limits
    private let channel: any Channel
    private let logger: Logger
    private var phase = Phase.readingHead
    private var timer: Scheduled<Void>?

    init(limits: Limits, channel: any Channel, logger: Logger) {
        self.limits = limits
        self.channel = channel
        self.logger = logger
    }

    /// The connection is open: its first request's head (and the TLS handshake) must arrive in time.
    func start() {
        phase = .readingHead
        arm(limits.headerRead, reason: "no complete request head in time")
    }

    /// Bytes arrived; when they start a request, its head must be complete in time.
    func bytesReceived() {
        guard case .awaitingRequest = phase else { return }
        phase = .readingHead
        arm(limits.headerRead, reason: "no complete request head in time")
    }

    /// A request's head is complete. A pipelined request's head may come straight after the previous response,
    /// without new bytes (they arrived with an earlier request), so it is taken in `awaitingRequest` too.
    func headReceived() {
        switch phase {
        case .awaitingRequest, .readingHead: break
        case .readingBody, .handling, .stopped: return
        }
        phase = .readingBody
        arm(limits.bodyRead, reason: "no complete request body in time")
    }

    func requestComplete() {
        guard case .readingBody = phase else { return }
        phase = .handling
        timer?.cancel()
        timer = nil
    }

    func responseSent() {
        guard phase != .stopped else { return }
        phase = .awaitingRequest
        arm(limits.idle, reason: "idle")
    }

    func stop() {
        phase = .stopped
        timer?.cancel()
        timer = nil
    }

    private func arm(_ timeout: TimeAmount, reason: String) {
        timer?.cancel()
        let channel = channel
        let logger = logger
        timer = channel.eventLoop.scheduleTask(in: timeout) {
            logger.debug("closing an HTTP connection", metadata: ["reason": "\(reason)"])
            channel.close(promise: nil)
        }
    }
}

/// Tells the connection's `ConnectionTimeouts` when bytes arrive, so a request's header deadline starts with its
/// first byte. Sits before the HTTP decoder (after TLS).
final class RequestStartDetector: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let timeouts: ConnectionTimeouts

    init(timeouts: ConnectionTimeouts) {
        self.timeouts = timeouts
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive {
            timeouts.start()
        }
    }

    func channelActive(context: ChannelHandlerContext) {
        timeouts.start()
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        timeouts.bytesReceived()
        context.fireChannelRead(data)
    }

    func channelInactive(context: ChannelHandlerContext) {
        timeouts.stop()
        context.fireChannelInactive()
    }
}
