import LinkerdCore
import LinkerdHTTPServer
import LinkerdProxyCore
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// The accept loop shared by the inbound and outbound proxies: binds a TCP listener, sets the proxy's socket options
/// on every accepted connection, counts it, puts a ``ConnectionMeter`` first on its pipeline and hands it to
/// `serve`, which sets up the rest on the connection's event loop.
///
/// ``run()`` binds and accepts until cancelled or gracefully shut down, and returns once every connection it accepted
/// is closed. On graceful shutdown it stops accepting and lets the open connections end on their own (the process's
/// shutdown grace period bounds that, by cancelling); on cancellation it closes them at once.
final class ProxyListener: Sendable {
    private struct Connections {
        var open: [ObjectIdentifier: any Channel] = [:]
        var stopping = false
    }

    private let address: SocketAddress
    private let backlog: Int?
    private let options: TCPSocketOptions
    private let autoRead: Bool
    private let group: any EventLoopGroup
    private let logger: Logger
    let counters: ConnectionCounters
    private let serve: @Sendable (any Channel) -> EventLoopFuture<Void>
    private let acceptsAfter: (@Sendable () async throws -> Void)?
    private let connections = Mutex(Connections())
    private let bound = BindSignal()

    /// - Parameters:
    ///   - name: names the listener in logs (`inbound`, `outbound`).
    ///   - backlog: the listen backlog; nil keeps the system's default.
    ///   - autoRead: whether accepted connections start reading at once; `serve` turns reading on itself otherwise.
    ///   - acceptsAfter: awaited after binding and before the first accept: connections arriving meanwhile wait in
    ///     the listen backlog (the proxy binds at start but serves only once certified, as upstream does). Nil
    ///     accepts at once.
    ///   - serve: called on the connection's event loop, as the last step of its initialization; a failed future
    ///     closes the connection (say why in the log first).
    init(
        name: String, address: SocketAddress, backlog: Int?, options: TCPSocketOptions, autoRead: Bool,
        counters: ConnectionCounters, group: any EventLoopGroup, logger: Logger,
        acceptsAfter: (@Sendable () async throws -> Void)? = nil,
        serve: @escaping @Sendable (any Channel) -> EventLoopFuture<Void>
    ) {
        self.address = address
        self.backlog = backlog
        self.options = options
        self.autoRead = autoRead
        self.counters = counters
        self.group = group
        var logger = logger
        logger[metadataKey: "listener"] = "\(name)"
        self.logger = logger
        self.acceptsAfter = acceptsAfter
        self.serve = serve
    }

    /// The bound port, once ``run()`` has bound; throws the bind error when binding failed.
    func waitUntilBound() async throws -> Int {
        try await bound.wait()
    }

    func run() async throws {
        let listener: any Channel
        do {
            listener = try await makeBootstrap().bind(to: address).get()
        } catch {
            logger.error("cannot listen", metadata: ["address": "\(address.endpointText)", "error": "\(error)"])
            bound.resolve(.failure(error))
            throw error
        }
        guard let port = listener.localAddress?.port else {
            listener.close(promise: nil)
            bound.resolve(.failure(ChannelError.unknownLocalAddress))
            throw ChannelError.unknownLocalAddress
        }
        bound.resolve(.success(port))
        logger.info("listening", metadata: ["address": "\((listener.localAddress ?? address).endpointText)"])
        if let acceptsAfter {
            do {
                try await cancelWhenGracefulShutdown { try await acceptsAfter() }
                try await listener.setOption(ChannelOptions.autoRead, value: true)
            } catch {
                try? await listener.close()
                logger.info("stopped before accepting", metadata: ["reason": "\(error)"])
                return
            }
        }
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                try? await listener.closeFuture.get()
            } onGracefulShutdown: {
                self.stop(listener, closingConnections: false)
            }
        } onCancel: {
            self.stop(listener, closingConnections: true)
        }
        // The listener may also have closed on its own (a socket error): no connection is accepted after that.
        let (open, stopRequested) = connections.withLock { state in
            defer { state.stopping = true }
            return (Array(state.open.values), state.stopping)
        }
        await withTaskCancellationHandler {
            for channel in open {
                try? await channel.closeFuture.get()
            }
        } onCancel: {
            for channel in open { channel.close(promise: nil) }
        }
        guard stopRequested else {
            logger.error("the listening socket closed unexpectedly")
            throw ProxyListenerClosed()
        }
        logger.info("stopped")
    }

    /// Stops accepting; then either closes the open connections (`closingConnections`), or asks them to finish
    /// (`ChannelShouldQuiesceEvent`): an HTTP/1 connection closes after its in-flight response (at once when idle),
    /// an HTTP/2 connection sends GOAWAY and closes once its streams are done; spliced connections ignore it and
    /// stay until they close.
    private func stop(_ listener: any Channel, closingConnections: Bool) {
        let open = connections.withLock { state in
            state.stopping = true
            return Array(state.open.values)
        }
        listener.close(promise: nil)
        for channel in open {
            if closingConnections {
                channel.close(promise: nil)
            } else {
                channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
            }
        }
    }

    private func makeBootstrap() -> ServerBootstrap {
        var bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.autoRead, value: acceptsAfter == nil)
        if let backlog {
            bootstrap = bootstrap.serverChannelOption(.backlog, value: Int32(clamping: backlog))
        }
        return
            bootstrap
            .proxyChildSocketOptions(options)
            .childChannelOption(.autoRead, value: autoRead)
            .childChannelInitializer { channel in
                do {
                    try self.admit(channel)
                } catch {
                    return channel.eventLoop.makeFailedFuture(error)
                }
                return self.serve(channel)
            }
    }

    /// Counts and tracks an accepted connection and adds its meter; refuses it while stopping.
    private func admit(_ channel: any Channel) throws {
        let id = ObjectIdentifier(channel)
        let admitted = connections.withLock { state in
            guard !state.stopping else { return false }
            state.open[id] = channel
            return true
        }
        guard admitted else { throw ListenerStopping() }
        counters.recordOpened()
        channel.closeFuture.whenComplete { _ in
            _ = self.connections.withLock { $0.open.removeValue(forKey: id) }
            self.counters.recordClosed()
        }
        try channel.pipeline.syncOperations.addHandler(ConnectionMeter(counters: counters))
    }
}

/// The listening socket closed without a stop being asked for.
struct ProxyListenerClosed: Error, CustomStringConvertible {
    var description: String { "the listening socket closed unexpectedly" }
}

/// A connection accepted while the listener stops; it is closed.
private struct ListenerStopping: Error {}

extension SocketAddress {
    /// The socket address of a listen address from the configuration.
    ///
    /// - Throws: NIO's `SocketAddressError` when the system cannot parse the address back.
    init(_ address: IPSocketAddress) throws {
        try self.init(ipAddress: address.ip.description, port: Int(address.port))
    }
}
