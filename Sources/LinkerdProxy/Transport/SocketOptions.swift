import LinkerdProxyCore
import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// The TCP options the proxy sets on every connection it accepts or opens (reference proxy §1.1):
///
/// - `TCP_NODELAY`, always: the proxy forwards what it reads as soon as it has read it, so Nagle's algorithm would
///   only add latency;
/// - `SO_KEEPALIVE` with the idle time ``keepalive`` (`TCP_KEEPIDLE` on Linux, `TCP_KEEPALIVE` on Darwin), when
///   one is configured (`LINKERD2_PROXY_{INBOUND,OUTBOUND}_{ACCEPT,CONNECT}_KEEPALIVE`);
/// - `TCP_USER_TIMEOUT` to ``userTimeout``, when one is configured (`…_USER_TIMEOUT`); Linux only, as upstream.
///
/// Apply them with ``NIOPosix/ServerBootstrap/proxyChildSocketOptions(_:)`` or
/// ``NIOPosix/ClientBootstrap/proxySocketOptions(_:)``, which also allow remote half-closure, as ``TCPSplice`` needs.
public struct TCPSocketOptions: Hashable, Sendable {
    /// The keepalive idle time: how long a connection may stay silent before the kernel probes the peer. Set in
    /// whole seconds (what the option takes), at least one; nil leaves keepalive off.
    public var keepalive: Duration?
    /// How long sent data may stay unacknowledged before the kernel drops the connection. Set in whole
    /// milliseconds; nil leaves the system's behaviour. Ignored on systems other than Linux.
    public var userTimeout: Duration?

    public init(keepalive: Duration? = nil, userTimeout: Duration? = nil) {
        self.keepalive = keepalive
        self.userTimeout = userTimeout
    }

    /// The options for connections a listener accepts.
    public init(accept: ProxyConfiguration.Accept) {
        self.init(keepalive: accept.keepalive, userTimeout: accept.userTimeout)
    }

    /// The options for connections the proxy opens.
    public init(connect: ProxyConfiguration.Connect) {
        self.init(keepalive: connect.keepalive, userTimeout: connect.userTimeout)
    }

    /// The socket options to set, with their values, in the order they are set.
    var socketOptions: [(option: ChannelOptions.Types.SocketOption, value: SocketOptionValue)] {
        var options: [(option: ChannelOptions.Types.SocketOption, value: SocketOptionValue)] = [
            (ChannelOptions.Types.SocketOption(level: .tcp, name: .tcp_nodelay), 1)
        ]
        if let keepalive {
            options.append((ChannelOptions.Types.SocketOption(level: .socket, name: .so_keepalive), 1))
            options.append(
                (
                    ChannelOptions.Types.SocketOption(level: .tcp, name: Self.keepaliveIdleOption),
                    Self.clamped(keepalive.components.seconds, minimum: 1)
                ))
        }
        #if os(Linux)
            if let userTimeout {
                let milliseconds =
                    userTimeout.components.seconds * 1000
                    + userTimeout.components.attoseconds / 1_000_000_000_000_000
                options.append(
                    (
                        ChannelOptions.Types.SocketOption(
                            level: .tcp, name: NIOBSDSocket.Option(rawValue: CInt(TCP_USER_TIMEOUT))),
                        Self.clamped(milliseconds, minimum: 0)
                    ))
            }
        #endif
        return options
    }

    /// `TCP_KEEPIDLE` (Linux) or `TCP_KEEPALIVE` (Darwin): the idle time before the first keepalive probe.
    private static var keepaliveIdleOption: NIOBSDSocket.Option {
        #if canImport(Darwin)
            NIOBSDSocket.Option(rawValue: TCP_KEEPALIVE)
        #else
            NIOBSDSocket.Option(rawValue: CInt(TCP_KEEPIDLE))
        #endif
    }

    /// `value` within `minimum...CInt.max`: the options take a C `int`, and 0 is not a valid idle time.
    private static func clamped(_ value: Int64, minimum: Int64) -> SocketOptionValue {
        SocketOptionValue(min(max(value, minimum), Int64(CInt.max)))
    }
}

extension ServerBootstrap {
    /// Sets `options` and `allowRemoteHalfClosure` on every connection the bootstrap accepts.
    public func proxyChildSocketOptions(_ options: TCPSocketOptions) -> ServerBootstrap {
        var bootstrap = childChannelOption(.allowRemoteHalfClosure, value: true)
        for (option, value) in options.socketOptions {
            bootstrap = bootstrap.childChannelOption(option, value: value)
        }
        return bootstrap
    }
}

extension ClientBootstrap {
    /// Sets `options` and `allowRemoteHalfClosure` on the connections the bootstrap opens.
    public func proxySocketOptions(_ options: TCPSocketOptions) -> ClientBootstrap {
        var bootstrap = channelOption(.allowRemoteHalfClosure, value: true)
        for (option, value) in options.socketOptions {
            bootstrap = bootstrap.channelOption(option, value: value)
        }
        return bootstrap
    }
}
