import LinkerdProxyCore
import NIOCore
import Synchronization

/// Counts one listener's connections and the bytes they carry, for the TCP metrics (`tcp_open_total`,
/// `tcp_close_total`, `tcp_read_bytes_total`, `tcp_write_bytes_total` and the open-connection gauge).
///
/// Bytes are counted on the accepted connections, as they cross the socket: ciphertext where the proxy terminates
/// TLS. Bytes *read* came from the connecting peers; bytes *written* went to them. ``ConnectionMeter`` adds them once
/// per read burst and per flush; a reader may see the counters of one moment slightly out of step with each other.
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

/// The first handler of an accepted connection's pipeline: counts the bytes read from and written to the socket, and
/// passes everything on unchanged.
///
/// The counts are kept in the handler and added to the shared atomics (``ConnectionCounters``, and the connection's
/// ``TransportMetrics`` once ``attach(_:)`` gave it one) once per read burst and per flush, not per read or write, to
/// keep atomic traffic off the data path. At close it records the close, with the errno of a socket error.
final class ConnectionMeter: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = IOData

    private let counters: ConnectionCounters
    private var transport: TransportMetrics?
    private var unreportedRead = 0
    private var unreportedWritten = 0
    /// What was added to the shared counters before the transport metrics were attached.
    private var reportedRead = 0
    private var reportedWritten = 0
    private var closeErrno: Int32?

    init(counters: ConnectionCounters) {
        self.counters = counters
    }

    /// Starts reporting to `transport`, the connection's TCP metrics (known once its target is), counting it opened
    /// and crediting it with the bytes carried so far.
    func attach(_ transport: TransportMetrics) {
        self.transport = transport
        transport.recordOpened(now: NIODeadline.now().uptimeNanoseconds)
        transport.recordTransferred(read: reportedRead, written: reportedWritten)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        unreportedRead += unwrapInboundIn(data).readableBytes
        context.fireChannelRead(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        report()
        context.fireChannelReadComplete()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        unreportedWritten += unwrapOutboundIn(data).readableBytes
        context.write(data, promise: promise)
    }

    func flush(context: ChannelHandlerContext) {
        report()
        context.flush()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? IOError {
            closeErrno = error.errnoCode
        }
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        report()
        transport?.recordClosed(errno: closeErrno, now: NIODeadline.now().uptimeNanoseconds)
        context.fireChannelInactive()
    }

    private func report() {
        guard unreportedRead != 0 || unreportedWritten != 0 else { return }
        if unreportedRead != 0 {
            counters.recordRead(unreportedRead)
        }
        if unreportedWritten != 0 {
            counters.recordWritten(unreportedWritten)
        }
        if let transport {
            transport.recordTransferred(read: unreportedRead, written: unreportedWritten)
        } else {
            reportedRead += unreportedRead
            reportedWritten += unreportedWritten
        }
        unreportedRead = 0
        unreportedWritten = 0
    }
}

extension Channel {
    /// Gives the connection's meter its TCP metrics; call it on the channel's event loop.
    func attachTransportMetrics(_ transport: TransportMetrics) {
        try? pipeline.syncOperations.handler(type: ConnectionMeter.self).attach(transport)
    }
}

@available(*, unavailable)
extension ConnectionMeter: Sendable {}
