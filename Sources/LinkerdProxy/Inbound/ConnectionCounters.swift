import NIOCore
import Synchronization

/// Counts one listener's connections and the bytes they carry, for the TCP metrics (`tcp_open_total`,
/// `tcp_close_total`, `tcp_read_bytes_total`, `tcp_write_bytes_total` and the open-connection gauge).
///
/// Bytes are counted on the accepted connections, as they cross the socket: ciphertext where the proxy terminates
/// TLS. Bytes *read* came from the connecting peers; bytes *written* went to them. Updates are relaxed atomic
/// additions, cheap enough for every read and write; a reader may see the counters of one moment slightly out of
/// step with each other.
public final class ConnectionCounters: Sendable {
    private let opened = Atomic<Int>(0)
    private let closed = Atomic<Int>(0)
    private let read = Atomic<Int>(0)
    private let written = Atomic<Int>(0)

    public init() {}

    /// Connections accepted since the start.
    public var openedTotal: Int { opened.load(ordering: .relaxed) }
    /// Accepted connections closed since the start.
    public var closedTotal: Int { closed.load(ordering: .relaxed) }
    /// Connections open now: accepted and not yet closed. Never negative.
    public var openConnections: Int {
        // Closed first: a connection counted as closed was counted as opened before.
        let closedCount = closed.load(ordering: .acquiring)
        return opened.load(ordering: .acquiring) - closedCount
    }
    /// Bytes read from the accepted connections.
    public var bytesRead: Int { read.load(ordering: .relaxed) }
    /// Bytes written to the accepted connections.
    public var bytesWritten: Int { written.load(ordering: .relaxed) }

    func recordOpened() {
        opened.wrappingAdd(1, ordering: .releasing)
    }

    func recordClosed() {
        closed.wrappingAdd(1, ordering: .releasing)
    }

    func recordRead(_ count: Int) {
        read.wrappingAdd(count, ordering: .relaxed)
    }

    func recordWritten(_ count: Int) {
        written.wrappingAdd(count, ordering: .relaxed)
    }
}

/// The first handler of an accepted connection's pipeline: counts the bytes read from and written to the socket in
/// ``ConnectionCounters``, and passes everything on unchanged.
final class ConnectionMeter: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = IOData

    private let counters: ConnectionCounters

    init(counters: ConnectionCounters) {
        self.counters = counters
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        counters.recordRead(unwrapInboundIn(data).readableBytes)
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        counters.recordWritten(unwrapOutboundIn(data).readableBytes)
        context.write(data, promise: promise)
    }
}

@available(*, unavailable)
extension ConnectionMeter: Sendable {}
