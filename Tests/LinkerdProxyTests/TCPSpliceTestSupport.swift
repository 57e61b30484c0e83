import Crypto
import LinkerdProxy
import LinkerdTestSupport
import NIOCore
import NIOPosix
import Testing

// Loopback servers, clients and handlers for the data-path tests (TCPSplice, inbound, outbound, two proxies).

/// What one end of a test connection received, and how the connection ended.
final class ReceivedBytes: Sendable {
    private struct State {
        var bytes: [UInt8] = []
        var inputEnded = false
        var closed = false
    }

    private let state = Locked(State())

    var bytes: [UInt8] { state.value.bytes }
    var text: String { String(decoding: bytes, as: UTF8.self) }
    /// Whether the peer ended its output (a FIN) or the connection closed.
    var inputEnded: Bool { state.value.inputEnded }
    var closed: Bool { state.value.closed }

    func append(_ buffer: ByteBuffer) {
        state.withLock { $0.bytes += buffer.readableBytesView }
    }

    func markInputEnded() {
        state.withLock { $0.inputEnded = true }
    }

    func markClosed() {
        state.withLock { state in
            state.inputEnded = true
            state.closed = true
        }
    }

    /// Waits until `text` has arrived, or fails after `timeout`.
    func waitForText(_ expected: String, timeout: Duration = .seconds(10)) async throws {
        try await eventually("received \(expected.debugDescription), have \(text.debugDescription)", timeout: timeout) {
            text == expected
        }
    }

    /// Waits until the connection is closed, or fails after `timeout`.
    func waitUntilClosed(timeout: Duration = .seconds(10)) async throws {
        try await eventually("the connection closes", timeout: timeout) { closed }
    }

    /// Waits until the peer ended its output, or fails after `timeout`.
    func waitUntilInputEnded(timeout: Duration = .seconds(10)) async throws {
        try await eventually("the peer ends its output", timeout: timeout) { inputEnded }
    }
}

/// Records what the connection receives, and how it ends, in a ``ReceivedBytes``.
final class CollectingHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let received: ReceivedBytes

    init(_ received: ReceivedBytes) {
        self.received = received
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        received.append(unwrapInboundIn(data))
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            received.markInputEnded()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        received.markClosed()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// Echoes what it reads; when its input ends, ends its output once everything is written.
final class EchoHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.write(data, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
        context.fireChannelReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            closeOutputOnceWritten(context)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// Writes `greeting` as soon as the connection opens, as server-first protocols (SMTP, MySQL) do.
final class GreetingHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let greeting: String

    init(_ greeting: String) {
        self.greeting = greeting
    }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: greeting)), promise: nil)
        context.fireChannelActive()
    }
}

/// Writes `data` as soon as the connection opens, then ends its output once it is written.
final class SendingHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let data: ByteBuffer

    init(_ data: ByteBuffer) {
        self.data = data
    }

    func channelActive(context: ChannelHandlerContext) {
        context.write(wrapOutboundOut(data), promise: nil)
        closeOutputOnceWritten(context)
        context.fireChannelActive()
    }
}

/// Resets the connection (`SO_LINGER` 0, then close: an RST instead of a FIN) when it first reads.
final class ResettingHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        resetConnection(context.channel)
    }
}

/// Closes `channel` with an RST.
func resetConnection(_ channel: any Channel) {
    guard let provider = channel as? any SocketOptionProvider else {
        channel.close(promise: nil)
        return
    }
    provider.setSoLinger(linger(l_onoff: 1, l_linger: 0)).whenComplete { _ in
        channel.close(promise: nil)
    }
}

/// Writes nothing more (an empty write completes after every earlier one), then shuts the output down: closing the
/// output at once would drop the writes still queued when the input has ended too.
func closeOutputOnceWritten(_ context: ChannelHandlerContext) {
    context.writeAndFlush(NIOAny(ByteBuffer())).assumeIsolated().whenComplete { _ in
        context.close(mode: .output, promise: nil)
    }
}

/// The byte count and SHA-256 digest a ``SlowReadingHandler`` read, once its input ended.
final class ReadDigest: Sendable {
    private let result = Locked<(count: Int, digest: [UInt8])?>(nil)

    var value: (count: Int, digest: [UInt8])? { result.value }

    func set(count: Int, digest: [UInt8]) {
        result.withLock { $0 = $0 ?? (count, digest) }
    }

    /// Waits for the input to end, or fails after `timeout`.
    func wait(timeout: Duration = .seconds(30)) async throws -> (count: Int, digest: [UInt8]) {
        try await eventually("the slow reader's input ends", timeout: timeout) { value != nil }
        return try #require(value)
    }
}

/// Reads at a limited pace: at most `chunkSize` bytes every `interval`, hashing them, and reports the count and
/// digest in `digest` once the input ends. Sets its channel's read options itself (no automatic reads).
final class SlowReadingHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let interval: TimeAmount
    private let chunkSize: Int
    private let digest: ReadDigest
    private var count = 0
    private var hasher = SHA256()
    private var isPaused: Bool
    private var isFinished = false
    private var ticker: Scheduled<Void>?

    /// - Parameter paused: whether to wait for ``resume(_:)`` before reading at all.
    init(interval: TimeAmount, chunkSize: Int, paused: Bool = false, digest: ReadDigest) {
        self.interval = interval
        self.chunkSize = chunkSize
        self.isPaused = paused
        self.digest = digest
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let options = context.channel.syncOptions
        try? options?.setOption(ChannelOptions.autoRead, value: false)
        try? options?.setOption(ChannelOptions.maxMessagesPerRead, value: 1)
        try? options?.setOption(
            ChannelOptions.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: chunkSize))
    }

    func channelActive(context: ChannelHandlerContext) {
        scheduleRead(context)
        context.fireChannelActive()
    }

    /// Starts reading, on the channel's event loop.
    static func resume(_ channel: any Channel) {
        channel.eventLoop.execute {
            let pipeline = channel.pipeline.syncOperations
            guard let handler = try? pipeline.handler(type: SlowReadingHandler.self),
                let context = try? pipeline.context(handlerType: SlowReadingHandler.self)
            else { return }
            handler.isPaused = false
            handler.scheduleRead(context)
        }
    }

    private func scheduleRead(_ context: ChannelHandlerContext) {
        guard !isPaused, !isFinished, ticker == nil else { return }
        ticker = context.eventLoop.assumeIsolated().scheduleTask(in: interval) {
            self.ticker = nil
            context.read()
            self.scheduleRead(context)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        count += buffer.readableBytes
        buffer.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            finish()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish()
        context.fireChannelInactive()
    }

    private func finish() {
        guard !isFinished else { return }
        isFinished = true
        ticker?.cancel()
        ticker = nil
        digest.set(count: count, digest: Array(hasher.finalize()))
    }
}

/// `count` random bytes.
func randomBytes(_ count: Int) -> ByteBuffer {
    var generator = SystemRandomNumberGenerator()
    var buffer = ByteBufferAllocator().buffer(capacity: count)
    while buffer.readableBytes + 8 <= count {
        buffer.writeInteger(generator.next() as UInt64)
    }
    while buffer.readableBytes < count {
        buffer.writeInteger(UInt8.random(in: .min ... .max, using: &generator))
    }
    return buffer
}

/// The SHA-256 digest of `buffer`'s readable bytes.
func sha256(_ buffer: ByteBuffer) -> [UInt8] {
    var hasher = SHA256()
    buffer.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
    return Array(hasher.finalize())
}

/// A TCP server on 127.0.0.1 whose connections get the handlers `makeHandlers` gives; it allows half-closure.
final class TestTCPServer: Sendable {
    private let listener: any Channel
    private let acceptedChannels: Locked<[any Channel]>
    let port: Int

    private init(listener: any Channel, accepted: Locked<[any Channel]>) {
        self.listener = listener
        self.acceptedChannels = accepted
        port = listener.localAddress?.port ?? 0
    }

    /// - Parameter socketBufferSize: `SO_RCVBUF` and `SO_SNDBUF` for the accepted sockets; nil keeps the
    ///   system's (auto-tuned) sizes.
    static func start(
        socketBufferSize: Int? = nil, _ makeHandlers: @escaping @Sendable () -> [any ChannelHandler]
    ) async throws -> TestTCPServer {
        let accepted = Locked<[any Channel]>([])
        var bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
        if let socketBufferSize {
            let size = SocketOptionValue(socketBufferSize)
            bootstrap = bootstrap.serverChannelOption(.socketOption(.so_rcvbuf), value: size)
                .childChannelOption(.socketOption(.so_rcvbuf), value: size)
                .childChannelOption(.socketOption(.so_sndbuf), value: size)
        }
        let listener = try await bootstrap.childChannelInitializer { channel in
            accepted.withLock { $0.append(channel) }
            return channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandlers(makeHandlers())
            }
        }
        .bind(host: "127.0.0.1", port: 0).get()
        return TestTCPServer(listener: listener, accepted: accepted)
    }

    /// The server's address.
    var address: SocketAddress {
        get throws { try SocketAddress(ipAddress: "127.0.0.1", port: port) }
    }

    /// The connections accepted so far, in order.
    var accepted: [any Channel] { acceptedChannels.value }

    /// Stops listening and closes the accepted connections.
    func close() async {
        try? await listener.close()
        for channel in accepted {
            try? await channel.close()
        }
    }
}

/// A TCP client connection to 127.0.0.1 that allows half-closure and records what it receives.
struct TestClient: Sendable {
    let channel: any Channel
    let received: ReceivedBytes

    /// Connects to `port`. `makeHandlers` gives handlers to put before the collecting one (TLS, for example).
    static func connect(
        port: Int, socketBufferSize: Int? = nil,
        _ makeHandlers: @escaping @Sendable () throws -> [any ChannelHandler] = { [] }
    ) async throws -> TestClient {
        let received = ReceivedBytes()
        let channel = try await clientBootstrap(socketBufferSize: socketBufferSize)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    try pipeline.addHandlers(makeHandlers())
                    try pipeline.addHandler(CollectingHandler(received))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return TestClient(channel: channel, received: received)
    }

    /// A client bootstrap that allows half-closure, with the socket buffer sizes given.
    static func clientBootstrap(
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, socketBufferSize: Int? = nil
    ) -> ClientBootstrap {
        var bootstrap = ClientBootstrap(group: group)
            .channelOption(.allowRemoteHalfClosure, value: true)
        if let socketBufferSize {
            let size = SocketOptionValue(socketBufferSize)
            bootstrap = bootstrap.channelOption(.socketOption(.so_rcvbuf), value: size)
                .channelOption(.socketOption(.so_sndbuf), value: size)
        }
        return bootstrap
    }

    func send(_ text: String) async throws {
        try await channel.writeAndFlush(ByteBuffer(string: text)).get()
    }

    func send(_ bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(ByteBuffer(bytes: bytes)).get()
    }

    /// Ends the client's output (a FIN), keeping its input open.
    func shutdownOutput() async throws {
        try await channel.close(mode: .output).get()
    }

    func close() async {
        try? await channel.close()
    }
}

/// Splices every connection it accepts with a new connection to a backend, as the proxies do but with nothing
/// else in between: the bench for ``TCPSplice`` itself.
final class SpliceBench: Sendable {
    private let listener: any Channel
    let port: Int

    private init(listener: any Channel) {
        self.listener = listener
        port = listener.localAddress?.port ?? 0
    }

    /// - Parameter socketBufferSize: `SO_RCVBUF` and `SO_SNDBUF` of both spliced sockets.
    static func start(backendPort: Int, socketBufferSize: Int? = nil) async throws -> SpliceBench {
        var bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
        if let socketBufferSize {
            let size = SocketOptionValue(socketBufferSize)
            bootstrap = bootstrap.serverChannelOption(.socketOption(.so_rcvbuf), value: size)
                .childChannelOption(.socketOption(.so_rcvbuf), value: size)
                .childChannelOption(.socketOption(.so_sndbuf), value: size)
        }
        let listener = try await bootstrap.childChannelInitializer { accepted in
            // The accepted connection is registered, and reads, only once this future completes: after the splice.
            TestClient.clientBootstrap(group: accepted.eventLoop, socketBufferSize: socketBufferSize)
                .connect(host: "127.0.0.1", port: backendPort)
                .map { upstream in
                    _ = TCPSplice.splice(accepted, upstream)
                }
        }
        .bind(host: "127.0.0.1", port: 0).get()
        return SpliceBench(listener: listener)
    }

    func close() async {
        try? await listener.close()
    }
}
