import LinkerdCore
import NIOCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Why the original destination of an accepted connection could not be read.
public enum OriginalDestinationError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The connection reached the socket without a NAT rewrite: the kernel has no connection-tracking entry for it
    /// (`ENOENT`), or the entry's original destination is the socket's own local address. The associated value is
    /// that local address.
    case notRedirected(localAddress: SocketAddress)
    /// A system call on the socket failed; `function` names the call and option, `errno` is the error number.
    case systemCallFailed(function: String, errno: CInt)
    /// The socket cannot have an original destination: it is not an IPv4 or IPv6 socket, or the channel gives no
    /// access to one. The associated value says which.
    case unsupportedSocket(reason: String)

    /// One line, such as `the connection to 127.0.0.1:4140 was not redirected by iptables (no original
    /// destination)` or `getsockopt(SOL_IP, SO_ORIGINAL_DST) failed: errno 92 (Protocol not available) ...`.
    public var description: String {
        switch self {
        case .notRedirected(let localAddress):
            return "the connection to \(Self.endpointText(localAddress)) was not redirected by iptables (no original "
                + "destination)"
        case .systemCallFailed(let function, let errno):
            let text = "\(function) failed: errno \(errno) (\(String(cString: strerror(errno))))"
            guard errno == ENOPROTOOPT else {
                return text
            }
            return text + "; the kernel answers so when connection tracking (nf_conntrack) is not loaded for the "
                + "socket's address family"
        case .unsupportedSocket(let reason):
            return "cannot read the original destination: \(reason)"
        }
    }

    /// `address:port`, with an IPv6 address in brackets: `127.0.0.1:4140`, `[::1]:4140`.
    static func endpointText(_ address: SocketAddress) -> String {
        guard let endpoint = Endpoint(address) else {
            return "\(address)"
        }
        switch endpoint.address {
        case .v4: return "\(endpoint.address):\(endpoint.port)"
        case .v6: return "[\(endpoint.address)]:\(endpoint.port)"
        }
    }
}
