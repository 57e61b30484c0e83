import LinkerdProxyCore
import NIOCore

/// Classifies a connection by its first bytes (TLS ClientHello and SNI, HTTP/1, HTTP/2 or opaque), lets the caller
/// set up the pipeline for that protocol, and then gets out of the way, replaying the bytes it read.
///
/// Put it first on an accepted connection's pipeline (or right after the TLS handler, for HTTP detection on the
/// decrypted stream). It:
///
/// 1. arms the detect timeout when it is added;
/// 2. buffers every inbound read, passing nothing on, until ``DetectionMode/decide(buffered:)`` decides (at most
///    8192 bytes for TLS; HTTP decides on the first read) or the timeout fires (``DetectedProtocol/timedOut``);
/// 3. calls `configure` with the result and the channel, once. `configure` adds the handlers for the protocol after
///    this one (or closes the channel) and returns a future that completes when the pipeline is ready; reads that
///    arrive meanwhile are buffered too;
/// 4. when the future succeeds, passes all the buffered bytes on as one read, unchanged, so the next handler sees the
///    stream from its first byte, then removes itself. When it fails, it fires the error and closes the channel.
///
/// If the peer closes the connection, or half-closes it, before the bytes decide, the handler fires
/// ``ProtocolDetectionError/closedBeforeDetection(bufferedBytes:)`` and closes the channel; `configure` is not
/// called. (Upstream treats a truncated ClientHello followed by end of input as plaintext and forwards it; here the
/// connection ends, since no server could make sense of it.) A half-closure after the decision is passed on after the
/// replayed bytes.
///
/// The handler allocates nothing per read beyond growing its one buffer, and never examines more than
/// ``DetectionMode/bufferLimit`` bytes. It must run on its channel's event loop, as every handler does.
public final class ProtocolDetectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer
    public typealias OutboundIn = NIOAny
    public typealias OutboundOut = NIOAny

    private var stateMachine: ProtocolDetectionStateMachine
    private let timeout: TimeAmount
    private let configure: (DetectedProtocol, any Channel) -> EventLoopFuture<Void>
    private var timeoutTask: Scheduled<Void>?
    /// Whether a read is being handled: a replay then needs no read-complete of its own, as the channel's follows.
    private var isReading = false
    /// A read asked for while the next stage was being configured, held back so that a client cannot fill memory
    /// while the proxy connects upstream (the bytes read by then are at most the detection buffer and one read);
    /// issued when the handler is removed.
    private var heldRead = false

    /// Creates a handler that runs `mode` detection for at most `timeout`, then hands the result to `configure`.
    ///
    /// - Parameters:
    ///   - mode: Which protocols to look for.
    ///   - timeout: The detect timeout, counted from when the handler is added to the pipeline: upstream uses 10 s
    ///     for inbound TLS detection, the policy's timeout for HTTP detection and 1 s on the admin server.
    ///   - configure: Called once on the event loop with the result; it must not remove this handler. Its future may
    ///     complete on any event loop.
    public init(
        mode: DetectionMode,
        timeout: TimeAmount,
        configure: @escaping (DetectedProtocol, any Channel) -> EventLoopFuture<Void>
    ) {
        self.stateMachine = ProtocolDetectionStateMachine(mode: mode)
        self.timeout = timeout
        self.configure = configure
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        timeoutTask = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) {
            self.timeoutFired(context: context)
        }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        cancelTimeout()
        if let buffered = stateMachine.handlerRemoved() {
            context.fireChannelRead(wrapInboundOut(buffered))
            context.fireChannelReadComplete()
        }
        if heldRead {
            heldRead = false
            context.read()
        }
    }

    public func read(context: ChannelHandlerContext) {
        if stateMachine.isConfiguring {
            heldRead = true
        } else {
            context.read()
        }
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        isReading = true
        defer { isReading = false }
        switch stateMachine.channelRead(unwrapInboundIn(data)) {
        case .wait:
            break
        case .configure(let result):
            cancelTimeout()
            startConfiguring(context: context, result: result)
        case .forward:
            context.fireChannelRead(data)
        }
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        if stateMachine.forwardsReadComplete {
            context.fireChannelReadComplete()
        }
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard case .inputClosed = event as? ChannelEvent else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        switch stateMachine.inputClosed() {
        case .wait:
            break
        case .failAndClose(let error):
            cancelTimeout()
            context.fireErrorCaught(error)
            context.close(promise: nil)
        case .forward:
            context.fireUserInboundEventTriggered(event)
        }
    }

    public func channelInactive(context: ChannelHandlerContext) {
        cancelTimeout()
        if let error = stateMachine.channelInactive() {
            context.fireErrorCaught(error)
        }
        context.fireChannelInactive()
    }

    private func timeoutFired(context: ChannelHandlerContext) {
        timeoutTask = nil
        if let result = stateMachine.timedOut() {
            startConfiguring(context: context, result: result)
        }
    }

    private func startConfiguring(context: ChannelHandlerContext, result: DetectedProtocol) {
        configure(result, context.channel)
            .hop(to: context.eventLoop)
            .assumeIsolated()
            .whenComplete { outcome in
                self.configured(context: context, outcome: outcome)
            }
    }

    private func configured(context: ChannelHandlerContext, outcome: Result<Void, any Error>) {
        switch stateMachine.configured(outcome) {
        case .replayAndRemove(let buffered, let inputClosed):
            if let buffered {
                context.fireChannelRead(wrapInboundOut(buffered))
                if !isReading {
                    context.fireChannelReadComplete()
                }
            }
            if inputClosed {
                context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
            }
            context.pipeline.syncOperations.removeHandler(self, promise: nil)
        case .failAndClose(let error):
            context.fireErrorCaught(error)
            context.close(promise: nil)
        case .none:
            break
        }
    }

    private func cancelTimeout() {
        timeoutTask?.cancel()
        timeoutTask = nil
    }
}

@available(*, unavailable)
extension ProtocolDetectionHandler: Sendable {}
