import NIOCore
import NIOPosix

/// A plain TCP connection that records what it receives and whether the peer closed it.
public final class RawConnection: Sendable {
    private let channel: any Channel
    private let inbound = Locked("")
    private let isClosed = Locked(false)

    /// Connects to `host:port`.
    public init(host: String = "127.0.0.1", port: Int) async throws {
        let inbound = inbound
        channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Collector(text: inbound))
                }
            }
            .connect(host: host, port: port).get()
        let isClosed = isClosed
        channel.closeFuture.whenComplete { _ in isClosed.withLock { $0 = true } }
    }

    /// Everything received so far, as UTF-8.
    public var received: String { inbound.value }
    /// Whether the connection is closed.
    public var closed: Bool { isClosed.value }

    public func send(_ text: String) async throws {
        try await channel.writeAndFlush(ByteBuffer(string: text)).get()
    }

    public func close() async throws {
        try await channel.close()
    }

    private final class Collector: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let text: Locked<String>

        init(text: Locked<String>) {
            self.text = text
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let bytes = unwrapInboundIn(data)
            text.withLock { $0 += String(buffer: bytes) }
        }
    }
}
