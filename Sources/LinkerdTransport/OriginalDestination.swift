import LinkerdCore
import NIOCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// The address a TCP connection was sent to before iptables redirected it to this proxy.
///
/// linkerd-proxy-init installs `nat` rules (`REDIRECT` or `DNAT`) that send a pod's TCP traffic to the proxy's
/// ports. The kernel's connection tracking (`nf_conntrack`) remembers each connection's destination before the
/// rewrite, and Linux exposes it on the accepted socket as the socket option `SO_ORIGINAL_DST` (level `SOL_IP`, a
/// `sockaddr_in`) for IPv4 and `IP6T_SO_ORIGINAL_DST` (level `SOL_IPV6`, a `sockaddr_in6`) for IPv6. Both need
/// conntrack for the family, which the kernel turns on in a network namespace with its first `nat` rule of that
/// family.
///
/// An IPv6 socket that accepted an IPv4 connection (its local address is IPv4-mapped, `::ffff:a.b.c.d`) is asked
/// with the IPv4 option, and the answer is an IPv4 address.
///
/// On other systems than Linux every lookup fails with ``OriginalDestinationError/unsupportedSocket(reason:)``.
public enum OriginalDestination {
    /// The original destination of the connection accepted as `descriptor`, a connected TCP socket.
    ///
    /// Reads the socket's local address (`getsockname`) to choose the option, then reads the option. The descriptor
    /// is only read, never closed or changed.
    ///
    /// - Throws: ``OriginalDestinationError/notRedirected(localAddress:)`` when no `nat` rule rewrote the connection;
    ///   ``OriginalDestinationError/systemCallFailed(function:errno:)`` when a call fails otherwise (for example
    ///   `EBADF`, `ENOTSOCK`, or `ENOPROTOOPT` without conntrack);
    ///   ``OriginalDestinationError/unsupportedSocket(reason:)`` for a socket that is neither IPv4 nor IPv6.
    public static func of(acceptedSocket descriptor: CInt) throws(OriginalDestinationError) -> SocketAddress {
        let local = try localAddress(of: descriptor)
        let query = try OriginalDestinationQuery(localAddress: local)
        // A `sockaddr_storage` holds either answer; the length asks for exactly the structure of the family.
        var answer = sockaddr_storage()
        var length = socklen_t(query.answerSize)
        guard getsockopt(descriptor, query.level, OriginalDestinationQuery.optionName, &answer, &length) == 0 else {
            throw query.failure(errno: errno, localAddress: local)
        }
        return try query.checked(socketAddress(answer, family: query.family), localAddress: local)
    }

    private static func localAddress(of descriptor: CInt) throws(OriginalDestinationError) -> SocketAddress {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let status = withUnsafeMutablePointer(to: &storage) { storagePointer in
            storagePointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        guard status == 0 else {
            throw .systemCallFailed(function: "getsockname", errno: errno)
        }
        let family = CInt(storage.ss_family)
        guard family == AF_INET || family == AF_INET6 else {
            throw .unsupportedSocket(reason: "the socket's address family \(family) is neither AF_INET nor AF_INET6")
        }
        return socketAddress(storage, family: family)
    }

    /// The `sockaddr_in` (for `AF_INET`) or `sockaddr_in6` (for `AF_INET6`) at the start of `storage`.
    private static func socketAddress(_ storage: sockaddr_storage, family: CInt) -> SocketAddress {
        withUnsafeBytes(of: storage) { bytes in
            family == AF_INET
                ? SocketAddress(bytes.loadUnaligned(as: sockaddr_in.self))
                : SocketAddress(bytes.loadUnaligned(as: sockaddr_in6.self))
        }
    }
}

/// Which socket option holds the original destination, chosen from the accepted socket's local address; shared by
/// the descriptor lookup and the channel lookup so that both answer alike.
enum OriginalDestinationQuery {
    /// `SO_ORIGINAL_DST` at `SOL_IP`, a `sockaddr_in`: IPv4 sockets, and IPv6 sockets with an IPv4-mapped address.
    case ipv4
    /// `IP6T_SO_ORIGINAL_DST` at `SOL_IPV6`, a `sockaddr_in6`.
    case ipv6

    /// `SO_ORIGINAL_DST` and `IP6T_SO_ORIGINAL_DST` are both 80 (`linux/netfilter_ipv4.h`,
    /// `linux/netfilter_ipv6/ip6_tables.h`); no C module here exports them.
    static let optionName: CInt = 80

    init(localAddress: SocketAddress) throws(OriginalDestinationError) {
        #if !os(Linux)
            throw .unsupportedSocket(reason: "original destinations are kept only by Linux's connection tracking")
        #endif
        guard let endpoint = Endpoint(localAddress) else {
            throw .unsupportedSocket(reason: "the socket's local address \(localAddress) is neither IPv4 nor IPv6")
        }
        switch endpoint.unmapped {
        case .v4: self = .ipv4
        case .v6: self = .ipv6
        }
    }

    /// `SOL_IP` (0) or `SOL_IPV6` (41), the Linux values of `IPPROTO_IP` and `IPPROTO_IPV6`.
    var level: CInt {
        switch self {
        case .ipv4: CInt(IPPROTO_IP)
        case .ipv6: CInt(IPPROTO_IPV6)
        }
    }

    /// `AF_INET` or `AF_INET6`: the family of the answer.
    var family: CInt {
        switch self {
        case .ipv4: AF_INET
        case .ipv6: AF_INET6
        }
    }

    /// The size of the answer: a `sockaddr_in` or a `sockaddr_in6`.
    var answerSize: Int {
        switch self {
        case .ipv4: MemoryLayout<sockaddr_in>.size
        case .ipv6: MemoryLayout<sockaddr_in6>.size
        }
    }

    var functionText: String {
        switch self {
        case .ipv4: "getsockopt(SOL_IP, SO_ORIGINAL_DST)"
        case .ipv6: "getsockopt(SOL_IPV6, IP6T_SO_ORIGINAL_DST)"
        }
    }

    /// The error for a failed `getsockopt`: `ENOENT` means conntrack has no entry, so no rule redirected the
    /// connection.
    func failure(errno: CInt, localAddress: SocketAddress) -> OriginalDestinationError {
        errno == ENOENT
            ? .notRedirected(localAddress: localAddress) : .systemCallFailed(function: functionText, errno: errno)
    }

    /// `destination`, unless it is the socket's own address: conntrack tracks connections that no rule rewrote too,
    /// and answers with the address they were sent to, which is then where they arrived.
    func checked(
        _ destination: SocketAddress,
        localAddress: SocketAddress
    ) throws(OriginalDestinationError) -> SocketAddress {
        guard let found = Endpoint(destination), let local = Endpoint(localAddress),
            found.unmapped != local.unmapped || found.port != local.port
        else {
            throw .notRedirected(localAddress: localAddress)
        }
        return destination
    }
}

/// An IP socket address as a LinkerdCore address and a port, for comparing and printing.
struct Endpoint {
    var address: IPAddress
    var port: Int

    /// Nil for a Unix-domain address.
    ///
    /// The address is read from the C structure's bytes at the offsets the socket ABI fixes on Linux and the BSDs
    /// alike (the IPv4 address at byte 4 of `sockaddr_in`, the IPv6 address at byte 8 of `sockaddr_in6`): in this
    /// target the structures' fields are not visible by name, as the C module that declares them is NIO's own.
    init?(_ socketAddress: SocketAddress) {
        guard let port = socketAddress.port else {
            return nil
        }
        switch socketAddress {
        case .v4(let v4):
            address = withUnsafeBytes(of: v4.address) { bytes in
                .v4(bytes[4..<8].reduce(0) { $0 << 8 | UInt32($1) })
            }
        case .v6(let v6):
            address = withUnsafeBytes(of: v6.address) { bytes in
                .v6(bytes[8..<24].reduce(0) { $0 << 8 | UInt128($1) })
            }
        case .unixDomainSocket:
            return nil
        }
        self.port = port
    }

    /// The address with an IPv4-mapped IPv6 address (`::ffff:10.0.0.1`) taken as the IPv4 address it carries.
    var unmapped: IPAddress {
        if case .v6(let value) = address, value >> 32 == 0xFFFF {
            return .v4(UInt32(truncatingIfNeeded: value))
        }
        return address
    }
}
