import NIOCore
import NIOHTTP1
import NIOHTTP2

/// What receives the upstream side of one forwarded request: the ``HTTPProxyServerHandler`` that asked for it. Every
/// call is made on the shared event loop.
protocol UpstreamResponseReceiver: AnyObject {
    /// A part of the upstream's response, in order.
    func upstreamResponse(_ part: HTTPClientResponsePart)
    /// The end of a burst of response parts: time to flush.
    func upstreamReadComplete()
    /// The upstream failed before the response ended; `error` says how. No further call follows.
    func upstreamFailed(_ error: UpstreamFailure)
    /// The upstream can take more request parts now.
    func upstreamBecameWritable()
    /// Whether the client can take more response parts now; while it cannot, the upstream stops reading.
    var canAcceptResponse: Bool { get }
}

/// How an upstream exchange failed.
enum UpstreamFailure: Error, CustomStringConvertible {
    /// The HTTP/2 peer reset the stream with `code`.
    case reset(HTTP2ErrorCode)
    /// The connection failed or closed before the response ended.
    case connection(String)

    var description: String {
        switch self {
        case .reset(let code): "the stream was reset (\(code))"
        case .connection(let reason): reason
        }
    }
}

/// The proxy's end of one upstream exchange: on an HTTP/1 connection (one request at a time, reused through
/// ``HTTPUpstreamPool`` once both messages are complete and the connection may be kept), or on an HTTP/2 stream (one
/// request, then the stream closes). Request parts go out through ``send(_:)``; response parts come in and go to the
/// ``UpstreamResponseReceiver``.
///
/// Backpressure: while the receiver cannot take more (its client's channel is not writable), reads are held back,
/// and resumed by ``resumeReads()``.
final class UpstreamExchangeHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    /// Whether the handler sits on a reusable HTTP/1 connection or a one-off HTTP/2 stream.
    enum Kind {
        /// An HTTP/1 connection: `onIdle` returns it to its pool when an exchange ends cleanly.
        case http1(onIdle: (UpstreamExchangeHandler) -> Void)
        case http2Stream
    }

    private let kind: Kind
    private var context: ChannelHandlerContext?
    private var receiver: (any UpstreamResponseReceiver)?
    private var requestEnded = false
    private var responseEnded = false
    /// Whether the connection may carry another exchange after this one.
    private var keepAlive = true
    private var heldRead = false
    private var failure: UpstreamFailure?
    private var detached = false

    init(kind: Kind) {
        self.kind = kind
    }

    /// The channel this handler is on; nil once removed.
    var channel: (any Channel)? { context?.channel }

    var isWritable: Bool { context?.channel.isWritable ?? false }

    /// Starts an exchange for `receiver`. The handler must be idle (new, or returned to its pool).
    func start(_ receiver: any UpstreamResponseReceiver, keepAlive: Bool) {
        self.receiver = receiver
        self.keepAlive = keepAlive
        requestEnded = false
        responseEnded = false
        failure = nil
    }

    /// Writes a request part; `.end` completes the request. Flush with ``flush()``.
    func send(_ part: HTTPClientRequestPart) {
        guard let context else { return }
        if case .end = part {
            requestEnded = true
        }
        context.write(wrapOutboundOut(part), promise: nil)
        if case .end = part {
            finishIfComplete()
        }
    }

    func flush() {
        context?.flush()
    }

    /// The client went away or the proxy gave up: the connection (HTTP/1) or stream (HTTP/2) is closed, since its
    /// state is unknown, and the receiver hears nothing more.
    func abandon() {
        receiver = nil
        keepAlive = false
        context?.close(promise: nil)
    }

    /// Hands the connection over to a splice (an accepted upgrade): nothing more is delivered, and the connection is
    /// neither pooled nor closed by this handler, which the splice's setup removes.
    func detach() {
        receiver = nil
        keepAlive = false
        detached = true
    }

    /// Reads again after ``UpstreamResponseReceiver/canAcceptResponse`` turned true.
    func resumeReads() {
        guard heldRead, let context else { return }
        heldRead = false
        context.read()
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch part {
        case .head(let head):
            if head.status.code >= 200 && !head.isKeepAlive {
                keepAlive = false
            }
        case .body:
            break
        case .end:
            responseEnded = true
        }
        receiver?.upstreamResponse(part)
        if case .end = part {
            finishIfComplete()
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        receiver?.upstreamReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        if let receiver, !receiver.canAcceptResponse {
            heldRead = true
        } else {
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            receiver?.upstreamBecameWritable()
        }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let closed = error as? NIOHTTP2Errors.StreamClosed {
            failure = .reset(closed.errorCode)
        } else if failure == nil {
            failure = .connection("\(error)")
        }
        context.close(promise: nil)
    }

    /// The upstream ended its output (it closes idle keep-alive connections so): an idle connection is closed, so
    /// that the pool never hands it out; a busy one is not reused.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            keepAlive = false
            if receiver == nil {
                context.close(promise: nil)
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let receiver, !responseEnded {
            self.receiver = nil
            receiver.upstreamFailed(failure ?? .connection("the connection closed before the response ended"))
        }
        receiver = nil
        context.fireChannelInactive()
    }

    /// Once both messages are complete: an HTTP/1 connection that may be kept goes back to its pool, one that may
    /// not is closed; an HTTP/2 stream closes by itself.
    private func finishIfComplete() {
        guard requestEnded, responseEnded, !detached else { return }
        receiver = nil
        guard case .http1(let onIdle) = kind else { return }
        if keepAlive {
            onIdle(self)
        } else {
            context?.close(promise: nil)
        }
    }
}

@available(*, unavailable)
extension UpstreamExchangeHandler: Sendable {}
