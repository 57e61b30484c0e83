import Foundation
import LinkerdCore
import NIOCore
import NIOPosix

/// One pod of a ``NetworkLab``: a network namespace with `lo` and `eth0` on the lab's bridge.
///
/// Its processes run under `ip netns exec`; its sockets are made in process, each on a new thread that joins the
/// namespace, makes the socket and ends (a socket stays in the namespace it was made in), and are then handed to
/// NIO. The pod is only usable while its lab runs.
public struct LabPod: Sendable, CustomStringConvertible {
    /// The pod's interface on the lab's bridge.
    public static let interfaceName = "eth0"

    /// The name given to ``NetworkLab/run(pods:ipv6:isolation:_:)``.
    public let name: String
    /// The `ip netns` name of the pod's namespace, for `ip netns exec` and `ip -n`.
    public let namespaceName: String
    /// The pod's IPv4 address on `eth0` (prefix length 24).
    public let ipv4: IPAddress
    /// The pod's IPv6 address on `eth0` (prefix length 64), or nil in a lab without IPv6.
    public let ipv6: IPAddress?
    let resources: LabResources

    init(name: String, namespaceName: String, ipv4: IPAddress, ipv6: IPAddress?, resources: LabResources) {
        self.name = name
        self.namespaceName = namespaceName
        self.ipv4 = ipv4
        self.ipv6 = ipv6
        self.resources = resources
    }

    /// The namespace's file, `/run/netns/<namespaceName>`, for `nsenter --net=` or `setns`.
    public var namespacePath: String { "/run/netns/\(namespaceName)" }

    /// The pod's addresses on `eth0`: IPv4, then IPv6 when the lab has it.
    public var addresses: [IPAddress] { [ipv4] + (ipv6.map { [$0] } ?? []) }

    /// `pod "a" (l5d-1234-0-a: 198.18.0.1, 2001:db8::1)`.
    public var description: String {
        "pod \"\(name)\" (\(namespaceName): \(addresses.map(\.description).joined(separator: ", ")))"
    }

    // MARK: - Processes

    /// Runs `argv` in the pod and returns what it did, whatever its exit status. The command run is
    /// `ip netns exec <namespace> [setpriv --reuid <uid> --regid <gid> --clear-groups --] argv...`: `argv[0]` is
    /// looked up in `PATH`; with `uid` or `gid`, the process runs as that user or group without supplementary
    /// groups. Cancelling the calling task kills the process.
    ///
    /// - Throws: ``NetworkLabError`` when `argv` is empty, the process cannot start, or the lab has ended.
    public func run(_ argv: [String], uid: UInt32? = nil, gid: UInt32? = nil) async throws -> LabProcessResult {
        let process = try spawn(argv, uid: uid, gid: gid)
        return await withTaskCancellationHandler {
            await process.waitForExit()
        } onCancel: {
            process.kill()
        }
    }

    /// Runs `argv` in the pod as ``run(_:uid:gid:)`` does and returns its standard output.
    ///
    /// - Throws: ``NetworkLabError/commandFailed(_:)`` (with the command, exit status and standard error) when it
    ///   does not exit with status 0, and what ``run(_:uid:gid:)`` throws.
    public func output(_ argv: [String], uid: UInt32? = nil, gid: UInt32? = nil) async throws -> String {
        try await run(argv, uid: uid, gid: gid).requireSuccess().standardOutput
    }

    /// Starts `argv` in the pod in the background, as ``run(_:uid:gid:)`` runs it. The lab kills it at teardown if
    /// it still runs; ``LabProcess/terminate()`` and ``LabProcess/waitForExit()`` end it earlier.
    ///
    /// - Throws: ``NetworkLabError`` when `argv` is empty, the process cannot start, or the lab has ended.
    public func spawn(_ argv: [String], uid: UInt32? = nil, gid: UInt32? = nil) throws(NetworkLabError) -> LabProcess {
        guard !argv.isEmpty else {
            throw .invalidArgument(reason: "the command to run in pod \"\(name)\" is empty")
        }
        var command = [resources.ip, "netns", "exec", namespaceName]
        if uid != nil || gid != nil {
            command.append("setpriv")
            command += uid.map { ["--reuid", "\($0)"] } ?? []
            command += gid.map { ["--regid", "\($0)"] } ?? []
            command += ["--clear-groups", "--"]
        }
        let process = try LabProcess.launch(command + argv)
        guard resources.adopt(process) else {
            throw .labEnded(pod: name)
        }
        return process
    }

    /// `lo` up, the addresses on `eth0`, `eth0` up.
    func configureInterfaces() async throws {
        var commands = ["link set lo up", "address add \(ipv4)/24 dev \(Self.interfaceName)"]
        if let ipv6 {
            commands.append("address add \(ipv6)/64 dev \(Self.interfaceName) nodad")
        }
        commands.append("link set \(Self.interfaceName) up")
        try await resources.ipBatch(commands, namespace: namespaceName).requireSuccess()
    }

    // MARK: - Sockets

    /// Runs `body` on a new thread that has joined the pod's network namespace, and returns its result. Sockets
    /// `body` makes belong to the pod; they keep belonging to it on any thread afterwards. The thread ends with
    /// `body`, so the namespace never leaks to other work; `body` must not start asynchronous work expecting to be
    /// in the pod.
    ///
    /// - Throws: ``NetworkLabError/systemCallFailed(pod:function:target:errno:)`` when the namespace cannot be
    ///   entered (the lab has ended, or not Linux), and what `body` throws.
    public func inNetworkNamespace<Value: Sendable>(
        _ body: @escaping @Sendable () throws -> Value
    ) async throws -> Value {
        #if os(Linux)
            let path = namespacePath
            let pod = name
            return try await withCheckedThrowingContinuation { continuation in
                let thread = Thread {
                    let descriptor = open(path, O_RDONLY | O_CLOEXEC)
                    guard descriptor >= 0 else {
                        continuation.resume(
                            throwing: NetworkLabError.systemCallFailed(
                                pod: pod, function: "open", target: path, errno: errno))
                        return
                    }
                    defer { close(descriptor) }
                    guard Self.joinNetworkNamespace(descriptor) == 0 else {
                        continuation.resume(
                            throwing: NetworkLabError.systemCallFailed(
                                pod: pod, function: "setns(CLONE_NEWNET)", target: path, errno: errno))
                        return
                    }
                    continuation.resume(with: Result { try body() })
                }
                thread.name = "lab namespace \(pod)"
                thread.start()
            }
        #else
            throw NetworkLabError.systemCallFailed(pod: name, function: "setns", target: namespacePath, errno: ENOSYS)
        #endif
    }

    #if os(Linux)
        /// `setns(descriptor, CLONE_NEWNET)`. Glibc declares `setns` only for `_GNU_SOURCE`, which Swift's Glibc
        /// module does not define, so the function is looked up in the C library; `-1` with `ENOSYS` without it.
        private static func joinNetworkNamespace(_ descriptor: CInt) -> CInt {
            typealias SetNamespace = @convention(c) (CInt, CInt) -> CInt
            let newNetworkNamespace: CInt = 0x4000_0000  // CLONE_NEWNET, linux/sched.h
            guard let symbol = dlsym(nil, "setns") else {
                errno = ENOSYS
                return -1
            }
            return unsafeBitCast(symbol, to: SetNamespace.self)(descriptor, newNetworkNamespace)
        }
    #endif

    /// A listening socket at `host:port` in the pod, as a channel of `bootstrap` (its options, child initializer and
    /// event loop group apply; NIO listens with its backlog option). The socket has `SO_REUSEADDR`; port 0 picks a
    /// free port, which the channel's `localAddress` tells. The lab closes the channel at teardown if it is open.
    ///
    /// - Parameter host: an IP address, such as `0.0.0.0`, `::`, `127.0.0.1` or one of ``addresses``.
    /// - Throws: ``NetworkLabError`` for a bad address or port, a failed `socket` or `bind`, or an ended lab; NIO's
    ///   error when it cannot take the socket.
    public func bind(_ bootstrap: ServerBootstrap, host: String, port: Int) async throws -> any Channel {
        let address = try Self.socketAddress(host: host, port: port)
        let pod = name
        let descriptor = try await inNetworkNamespace { () throws(NetworkLabError) -> CInt in
            let descriptor = try Self.makeSocket(for: address, pod: pod, nonBlocking: false)
            var one: CInt = 1
            let reuse = setsockopt(
                descriptor, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<CInt>.size))
            let bound = reuse == 0 ? address.withSockAddr { Foundation.bind(descriptor, $0, socklen_t($1)) } : reuse
            guard bound == 0 else {
                let failure = errno
                close(descriptor)
                throw .systemCallFailed(
                    pod: pod, function: reuse == 0 ? "bind" : "setsockopt(SO_REUSEADDR)",
                    target: Self.text(address), errno: failure)
            }
            return descriptor
        }
        // From here NIO owns the descriptor, and closes it with the channel.
        return try await adopt(bootstrap.withBoundSocket(descriptor).get())
    }

    /// A TCP connection from the pod to `address`, as a channel of `bootstrap` (its options, initializer and event
    /// loop group apply). The connection is established in the namespace before NIO gets it, so an unreachable or
    /// refused address fails here. The lab closes the channel at teardown if it is open.
    ///
    /// - Throws: ``NetworkLabError/connectTimedOut(pod:address:timeout:)`` when it takes longer than `timeout`,
    ///   `systemCallFailed` when refused or unreachable, `labEnded`; NIO's error when it cannot take the socket.
    public func connect(
        _ bootstrap: ClientBootstrap,
        to address: SocketAddress,
        timeout: Duration = .seconds(5)
    ) async throws -> any Channel {
        let pod = name
        let (seconds, attoseconds) = timeout.components
        // poll(2) waits forever for a negative timeout; a zero or negative `timeout` gives up at once instead.
        let milliseconds = Int32(clamping: max(0, seconds * 1000 + attoseconds / 1_000_000_000_000_000))
        let descriptor = try await inNetworkNamespace { () throws(NetworkLabError) -> CInt in
            let descriptor = try Self.makeSocket(for: address, pod: pod, nonBlocking: true)
            do throws(NetworkLabError) {
                try Self.finishConnecting(
                    descriptor, to: address, pod: pod, milliseconds: milliseconds, timeout: timeout)
            } catch {
                close(descriptor)
                throw error
            }
            return descriptor
        }
        return try await adopt(bootstrap.withConnectedSocket(descriptor).get())
    }

    private func adopt(_ channel: any Channel) async throws -> any Channel {
        guard resources.adopt(channel) else {
            try? await channel.close()
            throw NetworkLabError.labEnded(pod: name)
        }
        return channel
    }

    private static func socketAddress(host: String, port: Int) throws -> SocketAddress {
        let ip = try IPAddress(parsing: host)
        guard (0...65_535).contains(port) else {
            throw NetworkLabError.invalidArgument(reason: "the port \(port) is not from 0 to 65535")
        }
        return try SocketAddress(ipAddress: "\(ip)", port: port)
    }

    private static func makeSocket(
        for address: SocketAddress,
        pod: String,
        nonBlocking: Bool
    ) throws(NetworkLabError) -> CInt {
        var type = CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue)
        if nonBlocking {
            type |= CInt(SOCK_NONBLOCK.rawValue)
        }
        let descriptor = socket(address.protocol.rawValue, type, 0)
        guard descriptor >= 0 else {
            throw .systemCallFailed(pod: pod, function: "socket", target: text(address), errno: errno)
        }
        return descriptor
    }

    /// Connects the non-blocking `descriptor` and waits up to `milliseconds` for the outcome.
    private static func finishConnecting(
        _ descriptor: CInt,
        to address: SocketAddress,
        pod: String,
        milliseconds: Int32,
        timeout: Duration
    ) throws(NetworkLabError) {
        let started = address.withSockAddr { Foundation.connect(descriptor, $0, socklen_t($1)) }
        guard started != 0 else {
            return
        }
        guard errno == EINPROGRESS else {
            throw .systemCallFailed(pod: pod, function: "connect", target: text(address), errno: errno)
        }
        var poll = pollfd(fd: descriptor, events: Int16(POLLOUT), revents: 0)
        let ready = Foundation.poll(&poll, 1, milliseconds)
        guard ready != 0 else {
            throw .connectTimedOut(pod: pod, address: text(address), timeout: timeout)
        }
        var failure: CInt = 0
        var length = socklen_t(MemoryLayout<CInt>.size)
        if ready < 0 {
            failure = errno
        } else if getsockopt(descriptor, SOL_SOCKET, SO_ERROR, &failure, &length) != 0 {
            failure = errno
        }
        guard failure == 0 else {
            throw .systemCallFailed(pod: pod, function: "connect", target: text(address), errno: failure)
        }
    }

    /// `198.18.0.2:80` or `[2001:db8::2]:80`.
    static func text(_ address: SocketAddress) -> String {
        let host = address.ipAddress ?? "\(address)"
        let port = address.port.map { ":\($0)" } ?? ""
        return host.contains(":") ? "[\(host)]\(port)" : host + port
    }
}
