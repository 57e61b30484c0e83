import LinkerdProxy
import LinkerdProxyCore
import NIOCore
import NIOEmbedded
import Testing

@Suite struct DetectionHandlerTests {
    /// `curl --tlsv1.2 --tls-max 1.2 --resolve web.emojivoto.svc.cluster.local:18444:127.0.0.1 https://…:18444/`.
    private static let clientHello: [UInt8] = {
        let hex = """
            16030100ed010000e903039807bb097b171282869fcdc1fa70797bd8a8ae451d23e717a9901473ee57f6ec000038c02c
            c030009fcca9cca8ccaac02bc02f009ec024c028006bc023c0270067c00ac0140039c009c0130033009d009c003d003c
            0035002f00ff0100008800000024002200001f7765622e656d6f6a69766f746f2e7376632e636c75737465722e6c6f63
            616c000b000403000102000a000c000a001d0017001e001900180010000e000c02683208687474702f312e3100160000
            00170000000d002a0028040305030603080708080809080a080b08040805080604010501060103030301030204020502
            0602
            """
        let digits = hex.compactMap(\.hexDigitValue)
        return stride(from: 0, to: digits.count - 1, by: 2).map { UInt8(digits[$0] << 4 | digits[$0 + 1]) }
    }()
    private static let serverName = "web.emojivoto.svc.cluster.local"
    private static let request = Array("GET /ready HTTP/1.1\r\nHost: example\r\n\r\n".utf8)
    private static let timeout = TimeAmount.seconds(10)

    // MARK: Deciding and replaying

    @Test func clientHelloArrivingOneByteAtATimeIsReplayedWhole() throws {
        let pipe = try DetectionPipe(mode: .tlsThenHTTP)
        for byte in Self.clientHello.dropLast() {
            try pipe.write([byte])
            #expect(pipe.configurator.results.isEmpty)
        }
        #expect(pipe.recorder.events.isEmpty)
        #expect(pipe.hasDetectionHandler)

        try pipe.write([Self.clientHello[Self.clientHello.count - 1]])
        #expect(pipe.configurator.results == [.tls(serverName: Self.serverName)])
        #expect(pipe.recorder.events == [.read(Self.clientHello), .readComplete])
        #expect(!pipe.hasDetectionHandler)

        try pipe.write([0x17, 0x03])
        #expect(pipe.recorder.reads == [Self.clientHello, [0x17, 0x03]])
        #expect(pipe.configurator.results.count == 1)
    }

    @Test(arguments: [1, 3, 64, 241, 242, 1000])
    func replayEqualsTheInputWhateverTheReadSizes(chunkSize: Int) throws {
        let pipe = try DetectionPipe(mode: .tls)
        let input = Self.clientHello + (0..<500).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        var written = 0
        while pipe.configurator.results.isEmpty {
            let chunk = Array(input[written..<min(written + chunkSize, input.count)])
            try pipe.write(chunk)
            written += chunk.count
        }
        #expect(written >= Self.clientHello.count)
        #expect(pipe.configurator.results == [.tls(serverName: Self.serverName)])
        #expect(pipe.recorder.reads == [Array(input.prefix(written))])
        if written < input.count {
            try pipe.write(Array(input[written...]))
        }
        #expect(pipe.recorder.reads.flatMap { $0 } == input)
    }

    @Test(arguments: [DetectionMode.http, .tlsThenHTTP])
    func http1RequestIsDetectedOnItsFirstRead(mode: DetectionMode) throws {
        let pipe = try DetectionPipe(mode: mode)
        try pipe.write(Self.request)
        #expect(pipe.configurator.results == [.http1])
        #expect(pipe.recorder.reads == [Self.request])
        #expect(!pipe.hasDetectionHandler)
    }

    @Test(arguments: [DetectionMode.http, .tlsThenHTTP])
    func http2PrefaceIsDetected(mode: DetectionMode) throws {
        let pipe = try DetectionPipe(mode: mode)
        let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
        try pipe.write(preface)
        #expect(pipe.configurator.results == [.http2])
        #expect(pipe.recorder.reads == [preface])
    }

    /// Upstream decides HTTP on a single read: a request whose first read is one byte is opaque.
    @Test(arguments: [DetectionMode.http, .tlsThenHTTP])
    func shortFirstReadIsOpaque(mode: DetectionMode) throws {
        let pipe = try DetectionPipe(mode: mode)
        try pipe.write(Array(Self.request.prefix(1)))
        #expect(pipe.configurator.results == [.opaque])
        try pipe.write(Array(Self.request.dropFirst()))
        #expect(pipe.recorder.reads == [Array(Self.request.prefix(1)), Array(Self.request.dropFirst())])
    }

    @Test func plaintextIsOpaqueInTLSMode() throws {
        let pipe = try DetectionPipe(mode: .tls)
        try pipe.write(Self.request)
        #expect(pipe.configurator.results == [.opaque])
        #expect(pipe.recorder.reads == [Self.request])
    }

    @Test func emptyReadsAreNotAFirstRead() throws {
        let pipe = try DetectionPipe(mode: .http)
        try pipe.write([])
        #expect(pipe.configurator.results.isEmpty)
        try pipe.write(Self.request)
        #expect(pipe.configurator.results == [.http1])
        #expect(pipe.recorder.reads == [Self.request])
    }

    /// A record announcing a ClientHello longer than the 8192-byte buffer is given up on once 8192 bytes arrived.
    @Test func oversizedClientHelloIsOpaqueOnceTheBufferIsFull() throws {
        let pipe = try DetectionPipe(mode: .tlsThenHTTP)
        let start: [UInt8] = [0x16, 0x03, 0x01, 0x20, 0x00, 0x01, 0x00, 0x1F, 0xFC, 0x03, 0x03]
        let input =
            start + Array(repeating: 0x5A, count: 32) + [0x00, 0x1F, 0xD5] + Array(repeating: 0x13, count: 8954)
        for chunk in stride(from: 0, to: 8000, by: 1000) {
            try pipe.write(Array(input[chunk..<chunk + 1000]))
        }
        #expect(pipe.configurator.results.isEmpty)
        try pipe.write(Array(input[8000...]))
        #expect(pipe.configurator.results == [.opaque])
        #expect(pipe.recorder.reads == [input])
    }

    // MARK: Timeout

    @Test func timeoutHandsOverWhateverWasBuffered() throws {
        let pipe = try DetectionPipe(mode: .tls)
        let partial = Array(Self.clientHello.prefix(10))
        try pipe.write(partial)
        pipe.channel.embeddedEventLoop.advanceTime(by: Self.timeout - .nanoseconds(1))
        #expect(pipe.configurator.results.isEmpty)
        pipe.channel.embeddedEventLoop.advanceTime(by: .nanoseconds(1))
        #expect(pipe.configurator.results == [.timedOut])
        #expect(pipe.recorder.events == [.read(partial), .readComplete])
        #expect(!pipe.hasDetectionHandler)
    }

    @Test func timeoutWithNothingReadReplaysNothing() throws {
        let pipe = try DetectionPipe(mode: .http)
        pipe.channel.embeddedEventLoop.advanceTime(by: Self.timeout)
        #expect(pipe.configurator.results == [.timedOut])
        #expect(pipe.recorder.events.isEmpty)
        #expect(!pipe.hasDetectionHandler)
        try pipe.write(Self.request)
        #expect(pipe.recorder.reads == [Self.request])
    }

    @Test func decisionCancelsTheTimeout() throws {
        let pipe = try DetectionPipe(mode: .http)
        try pipe.write(Self.request)
        pipe.channel.embeddedEventLoop.advanceTime(by: .hours(1))
        #expect(pipe.configurator.results == [.http1])
    }

    // MARK: End of input

    @Test func halfCloseBeforeDecidingFailsAndCloses() throws {
        let pipe = try DetectionPipe(mode: .tls)
        try pipe.write(Array(Self.clientHello.prefix(3)))
        pipe.channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        #expect(pipe.configurator.results.isEmpty)
        #expect(pipe.recorder.errors == [.closedBeforeDetection(bufferedBytes: 3)])
        #expect(!pipe.recorder.events.contains(.inputClosed))
        #expect(pipe.recorder.reads.isEmpty)
        #expect(!pipe.channel.isActive)
        pipe.channel.embeddedEventLoop.advanceTime(by: .hours(1))
        #expect(pipe.configurator.results.isEmpty)
    }

    @Test func closeBeforeAnyByteFails() throws {
        let pipe = try DetectionPipe(mode: .http)
        pipe.channel.pipeline.fireChannelInactive()
        #expect(pipe.recorder.errors == [.closedBeforeDetection(bufferedBytes: 0)])
        #expect(pipe.recorder.events.last == .inactive)
        #expect(
            ProtocolDetectionError.closedBeforeDetection(bufferedBytes: 0).description.hasPrefix(
                "socket closed before protocol detection"
            ))
        pipe.channel.embeddedEventLoop.advanceTime(by: .hours(1))
        #expect(pipe.configurator.results.isEmpty)
    }

    // MARK: Asynchronous configuration

    @Test func readsAndHalfCloseWhileConfiguringFollowTheReplay() throws {
        let pipe = try DetectionPipe(mode: .tlsThenHTTP, deferConfiguration: true)
        try pipe.write(Self.request)
        try pipe.write([0x41, 0x42])
        pipe.channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        #expect(pipe.configurator.results == [.http1])
        #expect(pipe.recorder.events.isEmpty)
        #expect(pipe.hasDetectionHandler)

        try #require(pipe.configurator.pending).succeed()
        #expect(pipe.recorder.events == [.read(Self.request + [0x41, 0x42]), .readComplete, .inputClosed])
        #expect(!pipe.hasDetectionHandler)
    }

    @Test func failedConfigurationClosesTheChannel() throws {
        let pipe = try DetectionPipe(mode: .http, deferConfiguration: true)
        try pipe.write(Self.request)
        try #require(pipe.configurator.pending).fail(ConfigurationFailure())
        #expect(pipe.recorder.reads.isEmpty)
        #expect(pipe.recorder.events.contains(.error))
        #expect(!pipe.channel.isActive)
    }

    @Test func configuratorSeesTheChannelAndCanAddTheNextHandler() throws {
        let channel = EmbeddedChannel()
        let recorder = EventRecorder()
        let handler = ProtocolDetectionHandler(mode: .http, timeout: Self.timeout) { result, channel in
            #expect(result == .http1)
            do {
                try channel.pipeline.syncOperations.addHandler(recorder)
                return channel.eventLoop.makeSucceededVoidFuture()
            } catch {
                return channel.eventLoop.makeFailedFuture(error)
            }
        }
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.writeInbound(ByteBuffer(bytes: Self.request))
        #expect(recorder.reads == [Self.request])
        #expect(throws: (any Error).self) {
            try channel.pipeline.syncOperations.handler(type: ProtocolDetectionHandler.self)
        }
    }

    @Test func removingTheHandlerEarlyPassesOnWhatItBuffered() throws {
        let pipe = try DetectionPipe(mode: .tls)
        try pipe.write(Array(Self.clientHello.prefix(20)))
        let handler = try pipe.channel.pipeline.syncOperations.handler(type: ProtocolDetectionHandler.self)
        try pipe.channel.pipeline.syncOperations.removeHandler(handler).wait()
        #expect(pipe.recorder.reads == [Array(Self.clientHello.prefix(20))])
        pipe.channel.embeddedEventLoop.advanceTime(by: .hours(1))
        #expect(pipe.configurator.results.isEmpty)
    }
}

/// An embedded channel with a detection handler followed by an ``EventRecorder``.
private struct DetectionPipe {
    let channel = EmbeddedChannel()
    let recorder = EventRecorder()
    let configurator: Configurator

    init(mode: DetectionMode, deferConfiguration: Bool = false) throws {
        configurator = Configurator(deferConfiguration: deferConfiguration)
        let handler = ProtocolDetectionHandler(mode: mode, timeout: .seconds(10), configure: configurator.configure)
        try channel.pipeline.syncOperations.addHandlers([handler, recorder])
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 4143)).wait()
    }

    var hasDetectionHandler: Bool {
        (try? channel.pipeline.syncOperations.handler(type: ProtocolDetectionHandler.self)) != nil
    }

    func write(_ bytes: [UInt8]) throws {
        try channel.writeInbound(ByteBuffer(bytes: bytes))
    }
}

/// Records the results handed to the configurator, and completes their futures now or on demand.
private final class Configurator {
    private let deferConfiguration: Bool
    private(set) var results: [DetectedProtocol] = []
    private(set) var pending: EventLoopPromise<Void>?

    init(deferConfiguration: Bool) {
        self.deferConfiguration = deferConfiguration
    }

    func configure(_ result: DetectedProtocol, _ channel: any Channel) -> EventLoopFuture<Void> {
        results.append(result)
        guard deferConfiguration else { return channel.eventLoop.makeSucceededVoidFuture() }
        let promise = channel.eventLoop.makePromise(of: Void.self)
        pending = promise
        return promise.futureResult
    }
}

private struct ConfigurationFailure: Error {}

/// Records what reaches it: reads, read completions, half-closure, inactivity and errors. Passes nothing on.
private final class EventRecorder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    enum Event: Equatable {
        case read([UInt8])
        case readComplete
        case inputClosed
        case inactive
        case error
    }

    private(set) var events: [Event] = []
    private(set) var errors: [ProtocolDetectionError] = []

    var reads: [[UInt8]] {
        events.compactMap { event in
            if case .read(let bytes) = event { bytes } else { nil }
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        events.append(.read(Array(unwrapInboundIn(data).readableBytesView)))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        events.append(.readComplete)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .inputClosed = event as? ChannelEvent {
            events.append(.inputClosed)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        events.append(.inactive)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        events.append(.error)
        if let error = error as? ProtocolDetectionError {
            errors.append(error)
        }
    }
}
