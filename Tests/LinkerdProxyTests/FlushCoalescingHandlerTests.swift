import NIOCore
import NIOEmbedded
import Testing

@testable import LinkerdProxy

/// ``FlushCoalescingHandler`` in an `EmbeddedChannel` above a flush counter (standing for the socket): the embedded
/// event loop's `run()` ends the tick.
@Suite struct FlushCoalescingHandlerTests {
    @Test func flushesWithinATickBecomeOneAfterIt() throws {
        let pipe = try CoalescingPipe()
        for part in ["a", "b", "c"] {
            pipe.channel.write(ByteBuffer(string: part), promise: nil)
            pipe.channel.flush()
        }
        #expect(pipe.counter.flushes == 0, "nothing reaches the socket before the tick ends")
        #expect(try pipe.channel.readOutbound(as: ByteBuffer.self) == nil)

        pipe.channel.embeddedEventLoop.run()
        #expect(pipe.counter.flushes == 1)
        #expect(try pipe.written() == "abc")

        pipe.channel.writeAndFlush(ByteBuffer(string: "d"), promise: nil)
        pipe.channel.embeddedEventLoop.run()
        #expect(pipe.counter.flushes == 2, "the next tick's flush is not swallowed")
        #expect(try pipe.written() == "d")
    }

    @Test func aWriteIsCompletedOnlyOnceItsFlushWentOut() throws {
        let pipe = try CoalescingPipe()
        let written = pipe.channel.writeAndFlush(ByteBuffer(string: "x"))
        var completed = false
        written.assumeIsolated().whenComplete { _ in completed = true }
        #expect(!completed)
        pipe.channel.embeddedEventLoop.run()
        #expect(completed)
    }

    @Test func aCloseFlushesWhatIsPendingFirst() throws {
        let pipe = try CoalescingPipe()
        pipe.channel.write(ByteBuffer(string: "last words"), promise: nil)
        pipe.channel.flush()
        let closed = pipe.channel.close()
        #expect(pipe.counter.flushes == 1)
        #expect(pipe.counter.flushedBeforeClose)
        pipe.channel.embeddedEventLoop.run()
        try closed.wait()
        #expect(pipe.counter.flushes == 1, "the scheduled flush finds nothing left to do")
    }

    @Test func removalFlushesWhatIsPending() throws {
        let pipe = try CoalescingPipe()
        pipe.channel.writeAndFlush(ByteBuffer(string: "y"), promise: nil)
        try pipe.channel.pipeline.syncOperations.removeHandler(pipe.coalescer).wait()
        #expect(pipe.counter.flushes == 1)
        #expect(try pipe.written() == "y")
        pipe.channel.embeddedEventLoop.run()
        #expect(pipe.counter.flushes == 1)
        _ = try pipe.channel.finish()
    }
}

private struct CoalescingPipe {
    let channel = EmbeddedChannel()
    let counter = FlushCounter()
    let coalescer = FlushCoalescingHandler()

    init() throws {
        try channel.pipeline.syncOperations.addHandlers([counter, coalescer])
    }

    /// What reached the socket, as one string.
    func written() throws -> String {
        var text = ""
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) {
            text += String(buffer: buffer)
        }
        return text
    }
}

/// Counts the flushes that reach it, and whether one came before a close.
private final class FlushCounter: ChannelOutboundHandler {
    typealias OutboundIn = NIOAny

    var flushes = 0
    var flushedBeforeClose = false

    func flush(context: ChannelHandlerContext) {
        flushes += 1
        context.flush()
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        flushedBeforeClose = flushes > 0
        context.close(mode: mode, promise: promise)
    }
}
