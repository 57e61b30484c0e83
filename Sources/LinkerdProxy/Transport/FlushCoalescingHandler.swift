import NIOCore

/// Turns the flushes a connection receives during one event-loop tick into one, issued after the tick's I/O events
/// have been handled (NIO has no flush consolidation of its own, unlike Netty's `FlushConsolidationHandler`).
///
/// For a multiplexed HTTP/2 connection: every stream flushes it when its request or response part is written, and
/// the parts of many streams arrive together (one read of the client's connection carries the HEADERS of many
/// requests; one read of the upstream's, many responses). Without this handler each stream's flush is a `writev`
/// (and, behind TLS, its own records); with it, one per connection per tick. The delay is the rest of the current
/// tick, not a timer.
///
/// Placed right above the socket or TLS handler, below the HTTP/2 handler. A close, or the handler's removal,
/// flushes what is pending first, so no write is dropped.
final class FlushCoalescingHandler: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = NIOAny

    private var context: ChannelHandlerContext?
    private var flushPending = false
    private var flushScheduled = false
    /// The end-of-tick flush, made once per connection rather than a closure per scheduled flush (at a low rate,
    /// every request is a tick of its own). It holds the handler until removal breaks the cycle.
    private var deferredFlush: (() -> Void)?

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        deferredFlush = { [self] in
            flushScheduled = false
            if let context = self.context {
                flushIfPending(context)
            }
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        flushIfPending(context)
        self.context = nil
        deferredFlush = nil
    }

    func flush(context: ChannelHandlerContext) {
        flushPending = true
        guard !flushScheduled, let deferredFlush else { return }
        flushScheduled = true
        // A task submitted on the event loop runs after the I/O events of the current tick.
        context.eventLoop.assumeIsolated().execute(deferredFlush)
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        flushIfPending(context)
        context.close(mode: mode, promise: promise)
    }

    private func flushIfPending(_ context: ChannelHandlerContext) {
        guard flushPending else { return }
        flushPending = false
        context.flush()
    }
}

@available(*, unavailable)
extension FlushCoalescingHandler: Sendable {}
