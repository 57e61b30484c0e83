import NIOCore

/// Forwards bytes between two connected channels in both directions, byte for byte, until both directions end: the
/// opaque-TCP path of the proxy, and what an upgraded HTTP connection becomes after its 101.
///
/// Per direction:
/// - What one side reads is written to the other and flushed when the read burst ends (`channelReadComplete`), so
///   small exchanges are not delayed and large ones are written in batches.
/// - Backpressure: while the receiving side is not writable, the sending side stops reading (`autoRead` off); it
///   reads again once the receiver drains. Memory per connection stays bounded by the channels' write buffer
///   water marks, whatever the peers' speeds.
/// - Half-close: when one side's input ends (`ChannelEvent.inputClosed`, which needs `allowRemoteHalfClosure` on
///   the channel), the other side's output is shut down, so a client that sends a request and shuts down its
///   output still gets the whole answer. When a channel closes, its partner is closed too.
///
/// Both handlers sit at the end of their pipelines, after any TLS handler, so the bytes spliced are plaintext on a
/// terminated side and ciphertext on a passed-through one.
public enum TCPSplice {
    /// Splices `first` and `second`, adding a handler at the end of each pipeline. Both must be on the same event
    /// loop (connect the outgoing channel with `ClientBootstrap(group: accepted.eventLoop)`), and this must be
    /// called on it: the two ends then call each other directly, without locks or hops. The future completes when
    /// both channels are closed.
    public static func splice(_ first: any Channel, _ second: any Channel) -> EventLoopFuture<Void> {
        precondition(first.eventLoop === second.eventLoop, "spliced channels must share an event loop")
        first.eventLoop.preconditionInEventLoop()
        let (firstHandler, secondHandler) = SpliceHandler.matchedPair()
        do {
            try first.pipeline.syncOperations.addHandler(firstHandler)
            try second.pipeline.syncOperations.addHandler(secondHandler)
        } catch {
            first.close(promise: nil)
            second.close(promise: nil)
            return first.eventLoop.makeFailedFuture(error)
        }
        return first.closeFuture.and(second.closeFuture).map { _ in () }
    }
}

/// One end of a splice; the two ends call each other directly, on their shared event loop.
///
/// Reads are paced through the outbound `read` operation, which NIO issues after every read burst while
/// `autoRead` is on: while the partner is not writable it is held back, and issued when the partner becomes
/// writable again.
final class SpliceHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    typealias OutboundIn = NIOAny
    typealias OutboundOut = NIOAny

    private var partner: SpliceHandler?
    private var context: ChannelHandlerContext?
    private var pendingRead = false

    static func matchedPair() -> (SpliceHandler, SpliceHandler) {
        let first = SpliceHandler()
        let second = SpliceHandler()
        first.partner = second
        second.partner = first
        return (first, second)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        partner = nil
    }

    // MARK: Calls from the partner.

    private func partnerWrite(_ data: NIOAny) {
        context?.write(data, promise: nil)
    }

    private func partnerFlush() {
        context?.flush()
    }

    private func partnerBecameWritable() {
        guard pendingRead, let context else { return }
        pendingRead = false
        context.read()
    }

    /// Shuts this side's output once every byte already written to it has gone out: an empty write completes only
    /// after the writes before it, whereas closing at once could turn into a full close (when this side's input
    /// has ended too) that drops them.
    private func partnerInputClosed() {
        guard let context else { return }
        let channel = context.channel
        context.writeAndFlush(NIOAny(ByteBuffer())).whenComplete { _ in
            channel.close(mode: .output, promise: nil)
        }
    }

    /// Closes this side once what was written to it has gone out, for the same reason.
    private func partnerClosed() {
        guard let context else { return }
        let channel = context.channel
        context.writeAndFlush(NIOAny(ByteBuffer())).whenComplete { _ in
            channel.close(promise: nil)
        }
    }

    private var partnerIsWritable: Bool {
        partner?.context?.channel.isWritable ?? false
    }

    // MARK: Events on this channel.

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        partner?.partnerWrite(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.partnerFlush()
    }

    func read(context: ChannelHandlerContext) {
        if partnerIsWritable {
            context.read()
        } else {
            pendingRead = true
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            partner?.partnerBecameWritable()
        }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            partner?.partnerInputClosed()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        partner?.partnerClosed()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
