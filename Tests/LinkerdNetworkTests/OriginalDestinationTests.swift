import Foundation
import LinkerdCore
import LinkerdNetworkTestSupport
import LinkerdTransport
import NIOCore
import NIOPosix
import Testing

@Suite(
    "OriginalDestination of connections redirected by iptables",
    .enabled(if: NetworkLab.unavailableReason == nil, Comment(rawValue: NetworkLab.unavailableReason ?? "")),
    .timeLimit(.minutes(2))
)
struct OriginalDestinationTests {
    enum Family: String, CaseIterable, CustomTestStringConvertible {
        case ipv4, ipv6

        var testDescription: String { rawValue }

        var loopback: String {
            switch self {
            case .ipv4: "127.0.0.1"
            case .ipv6: "::1"
            }
        }

        func address(of pod: LabPod) throws -> IPAddress {
            switch self {
            case .ipv4: pod.ipv4
            case .ipv6: try #require(pod.ipv6)
            }
        }
    }

    @Test(arguments: Family.allCases)
    func redirectedConnectionTellsWhereItWasGoing(family: Family) async throws {
        try await NetworkLab.run(pods: ["app", "peer"]) { lab in
            let app = try lab.pod("app")
            let peer = try lab.pod("peer")
            try await redirectPort80(in: app, of: peer)
            let (destinations, continuation) = AsyncStream.makeStream(of: Result<SocketAddress, any Error>.self)
            let server = try await app.bind(reportingServer(to: continuation), host: family.loopback, port: 4140)
            var reports = destinations.makeAsyncIterator()

            let intended = try SocketAddress(ipAddress: "\(try family.address(of: peer))", port: 80)
            try await app.connect(ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton), to: intended).close()
            let redirected = try #require(await reports.next())
            #expect(try redirected.get() == intended)

            let local = try SocketAddress(ipAddress: family.loopback, port: 4140)
            try await app.connect(ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton), to: local).close()
            let direct = try #require(await reports.next())
            #expect(throws: OriginalDestinationError.notRedirected(localAddress: local)) { try direct.get() }
            let endpoint = family == .ipv4 ? "127.0.0.1:4140" : "[::1]:4140"
            #expect(
                (direct.failure as? OriginalDestinationError)?.description
                    == "the connection to \(endpoint) was not redirected by iptables (no original destination)")
            try await server.close()
        }
    }

    @Test func dualStackListenerTellsIPv4Destinations() async throws {
        try await NetworkLab.run(pods: ["app", "peer"]) { lab in
            let app = try lab.pod("app")
            let peer = try lab.pod("peer")
            try await redirectPort80(in: app, of: peer)
            let (destinations, continuation) = AsyncStream.makeStream(of: Result<SocketAddress, any Error>.self)
            let server = try await app.bind(reportingServer(to: continuation), host: "::", port: 4140)
            var reports = destinations.makeAsyncIterator()

            // The listener is IPv6, the connection IPv4: the child's local address is ::ffff:127.0.0.1.
            let intended = try SocketAddress(ipAddress: "\(peer.ipv4)", port: 80)
            try await app.connect(ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton), to: intended).close()
            let redirected = try #require(await reports.next())
            #expect(try redirected.get() == intended)
            try await server.close()
        }
    }

    @Test func connectionWithoutNATIsNotRedirected() async throws {
        try await NetworkLab.run(pods: ["app", "peer"]) { lab in
            let app = try lab.pod("app")
            let peer = try lab.pod("peer")
            let (destinations, continuation) = AsyncStream.makeStream(of: Result<SocketAddress, any Error>.self)
            let server = try await peer.bind(reportingServer(to: continuation), host: "\(peer.ipv4)", port: 8080)
            var reports = destinations.makeAsyncIterator()

            let address = try SocketAddress(ipAddress: "\(peer.ipv4)", port: 8080)
            try await app.connect(ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton), to: address).close()
            let report = try #require(await reports.next())
            let error = try #require(throws: OriginalDestinationError.self) { try report.get() }
            #expect(error == .notRedirected(localAddress: address))
            #expect(
                error.description
                    == "the connection to 198.18.0.2:8080 was not redirected by iptables (no original destination)")
            try await server.close()
        }
    }

    @Test func descriptorLookupOnAnAcceptedSocket() async throws {
        try await NetworkLab.run(pods: ["app", "peer"], ipv6: false) { lab in
            let app = try lab.pod("app")
            let peer = try lab.pod("peer")
            try await redirectPort80(in: app, of: peer)
            let listening = try SocketAddress(ipAddress: "127.0.0.1", port: 4140)
            let intended = try SocketAddress(ipAddress: "\(peer.ipv4)", port: 80)
            let (redirected, direct) = try await app.inNetworkNamespace {
                let listener = try RawSocket.listen(at: listening)
                defer { close(listener) }
                return (
                    try RawSocket.acceptOne(on: listener, connectingTo: intended, lookUpOriginalDestination),
                    try RawSocket.acceptOne(on: listener, connectingTo: listening, lookUpOriginalDestination)
                )
            }
            #expect(try redirected.get() == intended)
            #expect(throws: OriginalDestinationError.notRedirected(localAddress: listening)) { try direct.get() }
        }
    }
}

@Suite("OriginalDestination errors")
struct OriginalDestinationErrorTests {
    @Test func badDescriptorIsASystemCallFailure() throws {
        let error = try #require(throws: OriginalDestinationError.self) {
            try OriginalDestination.of(acceptedSocket: -1)
        }
        #expect(error == .systemCallFailed(function: "getsockname", errno: EBADF))
        #expect(error.description == "getsockname failed: errno \(EBADF) (Bad file descriptor)")
    }

    @Test func unixSocketIsUnsupported() throws {
        var pair: [CInt] = [-1, -1]
        try #require(socketpair(AF_UNIX, CInt(SOCK_STREAM.rawValue), 0, &pair) == 0)
        defer {
            close(pair[0])
            close(pair[1])
        }
        let error = try #require(throws: OriginalDestinationError.self) {
            try OriginalDestination.of(acceptedSocket: pair[0])
        }
        #expect(
            error.description
                == "cannot read the original destination: the socket's address family \(AF_UNIX) is neither AF_INET "
                + "nor AF_INET6")
    }

    @Test func missingConntrackIsExplained() {
        let error = OriginalDestinationError.systemCallFailed(
            function: "getsockopt(SOL_IP, SO_ORIGINAL_DST)", errno: ENOPROTOOPT)
        #expect(
            error.description
                == "getsockopt(SOL_IP, SO_ORIGINAL_DST) failed: errno \(ENOPROTOOPT) (Protocol not available); the "
                + "kernel answers so when connection tracking (nf_conntrack) is not loaded for the socket's address "
                + "family")
    }
}

// MARK: - Helpers

/// Makes `app` send its TCP traffic for `peer` port 80 to its own port 4140, as proxy-init's outbound rules do, with
/// iptables-nft and ip6tables-nft (when the lab has IPv6).
private func redirectPort80(in app: LabPod, of peer: LabPod) async throws {
    let rule = ["-t", "nat", "-A", "OUTPUT", "-p", "tcp", "--dport", "80", "-j", "REDIRECT", "--to-ports", "4140"]
    _ = try await app.output(["iptables-nft"] + rule + ["-d", "\(peer.ipv4)"])
    if let ipv6 = peer.ipv6 {
        _ = try await app.output(["ip6tables-nft"] + rule + ["-d", "\(ipv6)"])
    }
}

/// A server that reports, for each accepted connection, what ``Channel/originalDestination()`` answers, read in the
/// child channel initializer as the proxy reads it.
private func reportingServer(
    to reports: AsyncStream<Result<SocketAddress, any Error>>.Continuation
) -> ServerBootstrap {
    ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .childChannelInitializer { channel in
            channel.originalDestination()
                .map { reports.yield(.success($0)) }
                .flatMapError { error in
                    reports.yield(.failure(error))
                    return channel.eventLoop.makeSucceededVoidFuture()
                }
        }
}

/// The descriptor lookup's answer for `descriptor`, as a value.
@Sendable private func lookUpOriginalDestination(_ descriptor: CInt) -> Result<SocketAddress, OriginalDestinationError>
{
    Result { () throws(OriginalDestinationError) in try OriginalDestination.of(acceptedSocket: descriptor) }
}

extension Result {
    fileprivate var failure: Failure? {
        guard case .failure(let error) = self else {
            return nil
        }
        return error
    }
}

/// Blocking IPv4 sockets for the descriptor-level test, used on a pod's namespace thread.
private enum RawSocket {
    struct Failure: Error, CustomStringConvertible {
        let function: String
        let errno: Int32

        var description: String { "\(function) failed: errno \(errno)" }
    }

    static func listen(at address: SocketAddress) throws -> CInt {
        let descriptor = try make()
        guard address.withSockAddr({ Foundation.bind(descriptor, $0, socklen_t($1)) }) == 0,
            Foundation.listen(descriptor, 8) == 0
        else {
            let failure = Failure(function: "bind/listen", errno: errno)
            close(descriptor)
            throw failure
        }
        return descriptor
    }

    /// Connects a new socket to `address`, accepts it on `listener`, and returns `inspect` of the accepted socket.
    static func acceptOne<Value>(
        on listener: CInt,
        connectingTo address: SocketAddress,
        _ inspect: (CInt) -> Value
    ) throws -> Value {
        let client = try make()
        defer { close(client) }
        guard address.withSockAddr({ Foundation.connect(client, $0, socklen_t($1)) }) == 0 else {
            throw Failure(function: "connect", errno: errno)
        }
        let accepted = Foundation.accept(listener, nil, nil)
        guard accepted >= 0 else {
            throw Failure(function: "accept", errno: errno)
        }
        defer { close(accepted) }
        return inspect(accepted)
    }

    private static func make() throws -> CInt {
        let descriptor = socket(AF_INET, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else {
            throw Failure(function: "socket", errno: errno)
        }
        return descriptor
    }
}
