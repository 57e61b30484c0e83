import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import LinkerdProxy

/// ``HTTP1RequestSequencer`` in an `EmbeddedChannel` between a read counter (standing for the socket) and a recorder
/// (standing for the proxy's handler), fed decoded request parts: no sockets.
@Suite struct HTTP1RequestSequencerTests {
    @Test func readsKeepFlowingWhileAKeepAliveResponseIsPending() throws {
        let pipe = try SequencerPipe()
        try pipe.receive(request("/a"))
        #expect(pipe.recorder.uris == ["/a"])
        #expect(pipe.sequencer.state == .awaitingResponseEnd)

        pipe.channel.read()
        #expect(pipe.reads.count == 1, "NIO's pipelining handler would hold this read until the response ends")
        try pipe.respond()
        #expect(pipe.sequencer.state == .idle)
        pipe.channel.read()
        #expect(pipe.reads.count == 2)
        try pipe.receive(request("/b"))
        #expect(pipe.recorder.uris == ["/a", "/b"])
    }

    @Test func aPipelinedRequestWaitsForTheResponseAheadOfIt() throws {
        let pipe = try SequencerPipe()
        try pipe.receive(request("/a") + request("/b") + request("/c"))
        #expect(pipe.recorder.uris == ["/a"])
        #expect(pipe.recorder.ends == 1)

        pipe.channel.read()
        #expect(pipe.reads.count == 0, "reads pause while a pipelined request waits")

        try pipe.respond()
        #expect(pipe.recorder.uris == ["/a", "/b"])
        #expect(pipe.recorder.readCompletes == 2, "the delivered request is followed by a read-complete (flush)")
        #expect(pipe.reads.count == 0, "/c still waits")

        try pipe.respond()
        #expect(pipe.recorder.uris == ["/a", "/b", "/c"])
        #expect(pipe.reads.count == 1, "the held read goes out once nothing waits")
        #expect(pipe.sequencer.state == .awaitingResponseEnd)
    }

    @Test func bodyPartsOfTheCurrentRequestPassAtOnce() throws {
        let pipe = try SequencerPipe()
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/upload")
        head.headers.add(name: "content-length", value: "6")
        try pipe.channel.writeInbound(HTTPServerRequestPart.head(head))
        try pipe.channel.writeInbound(HTTPServerRequestPart.body(ByteBuffer(string: "abc")))
        #expect(pipe.recorder.bodies == ["abc"])
        #expect(pipe.sequencer.state == .exchanging)
        try pipe.channel.writeInbound(HTTPServerRequestPart.body(ByteBuffer(string: "def")))
        try pipe.channel.writeInbound(HTTPServerRequestPart.end(nil))
        #expect(pipe.recorder.bodies == ["abc", "def"])
        #expect(pipe.recorder.ends == 1)
    }

    @Test func theRestOfARequestAnsweredEarlyStillPasses() throws {
        let pipe = try SequencerPipe()
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/upload")
        head.headers.add(name: "content-length", value: "3")
        try pipe.channel.writeInbound(HTTPServerRequestPart.head(head))
        try pipe.respond()
        #expect(pipe.sequencer.state == .awaitingRequestEnd)
        try pipe.channel.writeInbound(HTTPServerRequestPart.body(ByteBuffer(string: "abc")))
        try pipe.channel.writeInbound(HTTPServerRequestPart.end(nil))
        #expect(pipe.recorder.bodies == ["abc"])
        #expect(pipe.sequencer.state == .idle)
        try pipe.receive(request("/next"))
        #expect(pipe.recorder.uris == ["/upload", "/next"])
    }

    @Test func aParseErrorBehindAPendingResponseWaitsForIt() throws {
        let pipe = try SequencerPipe()
        try pipe.receive(request("/a"))
        pipe.channel.pipeline.syncOperations.fireErrorCaught(HTTPParserError.invalidHeaderToken)
        #expect(pipe.recorder.errors.isEmpty, "the 400 must not overtake /a's response")
        try pipe.respond()
        #expect(pipe.recorder.errors.count == 1)
    }

    @Test func otherErrorsAndErrorsOfAnIdleConnectionPassAtOnce() throws {
        let pipe = try SequencerPipe()
        pipe.channel.pipeline.syncOperations.fireErrorCaught(HTTPParserError.invalidHeaderToken)
        try pipe.receive(request("/a"))
        pipe.channel.pipeline.syncOperations.fireErrorCaught(ChannelError.inappropriateOperationForState)
        #expect(pipe.recorder.errors.count == 2)
    }

    @Test func aHalfCloseBehindAPipelinedRequestComesAfterIt() throws {
        let pipe = try SequencerPipe()
        try pipe.receive(request("/a") + request("/b"))
        pipe.channel.pipeline.syncOperations.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        #expect(pipe.recorder.inputClosed == 0)
        try pipe.respond()
        #expect(pipe.recorder.uris == ["/a", "/b"])
        #expect(pipe.recorder.inputClosed == 1)
    }

    @Test func aHalfCloseWithNothingWaitingPassesAtOnce() throws {
        let pipe = try SequencerPipe()
        try pipe.receive(request("/a"))
        pipe.channel.pipeline.syncOperations.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        #expect(pipe.recorder.inputClosed == 1)
    }

    @Test func quiescingAnIdleConnectionClosesIt() throws {
        let pipe = try SequencerPipe()
        pipe.channel.pipeline.syncOperations.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        #expect(!pipe.channel.isActive)
    }

    @Test func quiescingABusyConnectionFinishesTheResponseWithConnectionCloseThenCloses() throws {
        let pipe = try SequencerPipe()
        try pipe.receive(request("/a") + request("/b"))
        pipe.channel.pipeline.syncOperations.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        #expect(pipe.channel.isActive)

        try pipe.channel.writeOutbound(HTTPServerResponsePart.head(.init(version: .http1_1, status: .ok)))
        guard case .head(let head)? = try pipe.channel.readOutbound(as: HTTPServerResponsePart.self) else {
            Issue.record("expected the response head")
            return
        }
        #expect(head.headers["connection"] == ["close"])
        try pipe.channel.writeOutbound(HTTPServerResponsePart.end(nil))
        #expect(!pipe.channel.isActive)
        #expect(pipe.recorder.uris == ["/a"], "the pipelined /b is dropped")
    }
}

// MARK: - Support

private func request(_ uri: String) -> [HTTPServerRequestPart] {
    var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: uri)
    head.headers.add(name: "host", value: "example")
    return [.head(head), .end(nil)]
}

/// Records the `read()` calls that reach the socket end of the pipeline.
private final class ReadCounter: ChannelOutboundHandler {
    typealias OutboundIn = NIOAny
    var count = 0

    func read(context: ChannelHandlerContext) {
        count += 1
        context.read()
    }
}

/// Stands for the proxy's handler: records what the sequencer passes on.
private final class PartRecorder: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    var uris: [String] = []
    var bodies: [String] = []
    var ends = 0
    var readCompletes = 0
    var errors: [any Error] = []
    var inputClosed = 0

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): uris.append(head.uri)
        case .body(let body): bodies.append(String(buffer: body))
        case .end: ends += 1
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        readCompletes += 1
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        errors.append(error)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { inputClosed += 1 }
    }
}

private struct SequencerPipe {
    let channel = EmbeddedChannel()
    let reads = ReadCounter()
    let sequencer = HTTP1RequestSequencer()
    let recorder = PartRecorder()

    init() throws {
        try channel.pipeline.syncOperations.addHandlers([reads, sequencer, recorder])
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 80)).wait()
        reads.count = 0
    }

    /// Delivers `parts` as one read would: each part, then one read-complete.
    func receive(_ parts: [HTTPServerRequestPart]) throws {
        for part in parts {
            channel.pipeline.syncOperations.fireChannelRead(NIOAny(part))
        }
        channel.pipeline.syncOperations.fireChannelReadComplete()
        try channel.throwIfErrorCaught()
    }

    /// Writes a whole 200 response and drains it from the outbound side.
    func respond() throws {
        try channel.writeOutbound(HTTPServerResponsePart.head(.init(version: .http1_1, status: .ok)))
        try channel.writeOutbound(HTTPServerResponsePart.end(nil))
        while try channel.readOutbound(as: HTTPServerResponsePart.self) != nil {}
    }
}
