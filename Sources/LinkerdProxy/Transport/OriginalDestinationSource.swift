import LinkerdTransport
import NIOCore

/// Where a listener learns the address an accepted connection was going to before it was sent to the proxy.
///
/// In a pod, iptables redirects connections to the proxy and the kernel keeps their original destination
/// (``socket``). Tests on loopback have no redirection, so they say where connections were going themselves
/// (``fixed(_:)`` or ``custom(_:)``).
public enum OriginalDestinationSource: Sendable {
    /// `SO_ORIGINAL_DST` (or `IP6T_SO_ORIGINAL_DST`) on the accepted socket, through
    /// `Channel.originalDestination()`: what the proxy uses in a pod. A connection that iptables did not redirect
    /// has none, and is refused.
    case socket
    /// The same address for every connection.
    case fixed(SocketAddress)
    /// The address the closure gives for the accepted channel; nil refuses the connection as not redirected. Called
    /// on the channel's event loop, so it must not block.
    case custom(@Sendable (any Channel) -> SocketAddress?)

    /// The original destination of `channel`, an accepted connection. Call it on the channel's event loop: the future
    /// is then already complete for every source, so callbacks chained on it run at once.
    ///
    /// The future fails with an `OriginalDestinationError`: the kernel's (see `Channel.originalDestination()`), or
    /// `notRedirected` when a ``custom(_:)`` closure gives nil.
    public func originalDestination(of channel: any Channel) -> EventLoopFuture<SocketAddress> {
        switch self {
        case .socket:
            return channel.originalDestination()
        case .fixed(let address):
            return channel.eventLoop.makeSucceededFuture(address)
        case .custom(let lookup):
            if let address = lookup(channel) {
                return channel.eventLoop.makeSucceededFuture(address)
            }
            guard let local = channel.localAddress else {
                return channel.eventLoop.makeFailedFuture(
                    OriginalDestinationError.unsupportedSocket(
                        reason: "the channel has no local address (it is closed or not bound)"))
            }
            return channel.eventLoop.makeFailedFuture(OriginalDestinationError.notRedirected(localAddress: local))
        }
    }
}
