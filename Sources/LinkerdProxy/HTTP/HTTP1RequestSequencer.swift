import NIOCore
import NIOHTTP1

/// Keeps an HTTP/1 server connection to one exchange at a time, in place of NIO's `HTTPServerPipelineHandler`.
///
/// NIO's handler stops reading from the socket whenever a response is pending, so every keep-alive request costs two
/// extra `epoll_ctl` calls (read interest off, then on again). Pipelined requests are rare, so this handler keeps
/// reading and only buffers a request that arrives before the previous response has ended; reads pause while it
/// holds one (so the buffer is bounded by what one read decoded), and resume once it has been delivered.
///
/// Also like NIO's handler:
/// - parse errors and the client's half-close that arrive behind a buffered request wait for it, so that the
///   responses stay in order and the in-flight response is not cut short;
/// - on ``ChannelShouldQuiesceEvent`` (graceful shutdown) an idle connection closes at once; a busy one answers its
///   current request with `Connection: close`, drops what was pipelined behind it, and closes after the response.
///
/// Sits between the request decoder and the response header validator.
final class HTTP1RequestSequencer: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// Where the connection's current exchange stands.
    enum State: Equatable {
        /// No request or response in progress: the next head starts an exchange.
        case idle
        /// Request parts are arriving and the response has not ended.
        case exchanging
        /// The request ended; its response has not. A new request must wait.
        case awaitingResponseEnd
        /// The response ended before its request did (an early response); the rest of the request still passes.
        case awaitingRequestEnd
    }

    /// What arrived while a response was pending, in order.
    private enum Deferred {
        case part(HTTPServerRequestPart)
        case error(any Error)
        case inputClosed
    }

    private(set) var state = State.idle
    private var deferred = CircularBuffer<Deferred>(initialCapacity: 4)
    private var readHeld = false
    private var quiescing = false
    private var closed = false

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        guard deferred.isEmpty, state != .awaitingResponseEnd else {
            if !quiescing { deferred.append(.part(part)) }
            return
        }
        deliver(part, context: context)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if error is HTTPParserError, !deferred.isEmpty || state == .awaitingResponseEnd {
            deferred.append(.error(error))
        } else {
            context.fireErrorCaught(error)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case ChannelEvent.inputClosed where !deferred.isEmpty:
            deferred.append(.inputClosed)
        case is ChannelShouldQuiesceEvent:
            quiescing = true
            dropDeferredRequests()
            if state == .idle {
                close(context: context)
            }
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    // MARK: Outbound

    func read(context: ChannelHandlerContext) {
        if !deferred.isEmpty || (quiescing && state == .idle) {
            readHeld = true
        } else {
            context.read()
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(var head) where quiescing && head.status.code >= 200:
            head.headers.replaceOrAdd(name: "connection", value: "close")
            context.write(wrapOutboundOut(.head(head)), promise: promise)
        case .head, .body:
            context.write(data, promise: promise)
        case .end:
            responseEnded(context: context, write: data, promise: promise)
        }
    }

    // MARK: Internals

    private func deliver(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        switch (state, part) {
        case (.idle, .head):
            guard !quiescing else { return }
            state = .exchanging
        case (.idle, _):
            // Parts of a request whose exchange is over (the connection is closing): nobody reads them.
            return
        case (.exchanging, .end):
            state = .awaitingResponseEnd
        case (.awaitingRequestEnd, .end):
            state = .idle
        default:
            break
        }
        context.fireChannelRead(wrapInboundOut(part))
    }

    private func responseEnded(context: ChannelHandlerContext, write data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch state {
        case .exchanging:
            state = .awaitingRequestEnd
        case .awaitingResponseEnd:
            state = .idle
        case .idle, .awaitingRequestEnd:
            break
        }
        guard !quiescing || state != .idle else {
            let written = context.writeAndFlush(data)
            written.assumeIsolated().whenComplete { _ in self.close(context: context) }
            written.cascade(to: promise)
            return
        }
        context.write(data, promise: promise)
        if state == .idle {
            deliverDeferred(context: context)
        }
    }

    /// Delivers what waited behind the exchange that just ended, up to the end of the next request, then resumes
    /// reading if it had paused.
    private func deliverDeferred(context: ChannelHandlerContext) {
        var delivered = false
        while state != .awaitingResponseEnd, let next = deferred.popFirst() {
            switch next {
            case .part(let part):
                deliver(part, context: context)
                delivered = true
            case .error(let error):
                context.fireErrorCaught(error)
            case .inputClosed:
                context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
            }
        }
        if delivered {
            context.fireChannelReadComplete()
        }
        // A half-close right behind the request just delivered tells its handler that this response is the last.
        if case .inputClosed? = deferred.first {
            deferred.removeFirst()
            context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        }
        if deferred.isEmpty, readHeld, !closed {
            readHeld = false
            context.read()
        }
    }

    /// Forgets pipelined requests (on quiescing they will not be served), keeping errors and the half-close.
    private func dropDeferredRequests() {
        deferred.removeAll { if case .part = $0 { true } else { false } }
    }

    private func close(context: ChannelHandlerContext) {
        guard !closed else { return }
        closed = true
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension HTTP1RequestSequencer: Sendable {}
