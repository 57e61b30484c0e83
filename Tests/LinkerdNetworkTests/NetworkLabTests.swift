import Foundation
import LinkerdCore
import LinkerdNetworkTestSupport
import LinkerdTestSupport
import NIOCore
import NIOPosix
import Testing

@Suite(
    "NetworkLab: pods in network namespaces",
    .enabled(if: NetworkLab.unavailableReason == nil, Comment(rawValue: NetworkLab.unavailableReason ?? "")),
    .timeLimit(.minutes(2))
)
struct NetworkLabTests {
    enum Family: String, CaseIterable, CustomTestStringConvertible {
        case ipv4, ipv6

        var testDescription: String { rawValue }

        func address(of pod: LabPod) throws -> IPAddress {
            switch self {
            case .ipv4: pod.ipv4
            case .ipv6: try #require(pod.ipv6)
            }
        }
    }

    @Test(arguments: Family.allCases)
    func podsReachEachOtherOverTCP(family: Family) async throws {
        try await NetworkLab.run(pods: ["a", "b"]) { lab in
            let a = try lab.pod("a")
            let b = try lab.pod("b")
            let peers = Locked<[SocketAddress]>([])
            let server = try await b.bind(
                echoServer(recordingPeersIn: peers), host: "\(try family.address(of: b))", port: 7000)
            let reply = try await echo(
                "hello from a", from: a, to: try SocketAddress(ipAddress: "\(try family.address(of: b))", port: 7000))
            #expect(reply == "hello from a")
            #expect(peers.value.compactMap(\.ipAddress) == ["\(try family.address(of: a))"])
            try await server.close()
        }
    }

    @Test func runsCommandsInThePodAsTheGivenUser() async throws {
        try await NetworkLab.run(pods: ["a", "b"]) { lab in
            let b = try lab.pod("b")
            #expect(try await b.output(["id", "-u"], uid: 2102, gid: 2102) == "2102\n")
            #expect(try await b.output(["id", "-G"], uid: 2102, gid: 2103) == "2103\n")
            #expect(try await b.output(["id", "-u"]) == "0\n")
            let addresses = try await b.output(["ip", "-o", "address", "show", "eth0"])
            #expect(addresses.contains("inet 198.18.0.2/24"))
            #expect(addresses.contains("inet6 2001:db8::2/64"))
            #expect(!addresses.contains("198.18.0.1"))
            let loopback = try await b.output(["ip", "-o", "link", "show", "lo"])
            #expect(loopback.contains("LOWER_UP"))

            let failed = try await b.run(["ls", "/nonexistent-lab-path"])
            #expect(failed.termination == .exit(2))
            #expect(failed.standardError.contains("No such file or directory"))
            let error = try await #require(throws: NetworkLabError.self) {
                _ = try await b.output(["ls", "/nonexistent-lab-path"])
            }
            #expect(
                "\(error)".hasPrefix(
                    "`\(try #require(failed.command.first)) netns exec \(b.namespaceName) ls "
                        + "/nonexistent-lab-path` ended with exit status 2: ls: cannot access"))
        }
    }

    @Test func podsAreUnreachableFromTheRootNamespace() async throws {
        try await NetworkLab.run(pods: ["a", "b"]) { lab in
            let a = try lab.pod("a")
            let b = try lab.pod("b")
            let peers = Locked<[SocketAddress]>([])
            let server = try await a.bind(echoServer(recordingPeersIn: peers), host: "0.0.0.0", port: 7001)
            let target = try SocketAddress(ipAddress: "\(a.ipv4)", port: 7001)
            // The root namespace has no route into the lab: its route to the pod's address (if any) is not the
            // bridge. Some hosts accept every outbound connection (a sandbox's egress proxy), so a connection
            // attempt may even succeed; what matters is that it never reaches the pod's server.
            let route = try await rootCommand(["ip", "route", "get", "\(a.ipv4)"], allowingFailure: true)
            #expect(!route.contains(lab.bridgeName))
            if let outside = try? await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.milliseconds(300)).connect(to: target).get()
            {
                try? await outside.writeAndFlush(ByteBuffer(string: "outside"))
                try? await outside.close()
            }
            // The server answers from inside the lab, so its silence towards the root namespace is the isolation.
            #expect(try await echo("inside", from: b, to: target) == "inside")
            #expect(peers.value.compactMap(\.ipAddress) == ["\(b.ipv4)"])
            try await server.close()
        }
    }

    @Test func teardownRemovesEverythingWhenTheBodyThrows() async throws {
        struct BodyFailure: Error, Equatable {}
        let made = Locked<(namespaces: [String], bridge: String, processes: [Int32])>(([], "", []))
        await #expect(throws: BodyFailure()) {
            try await NetworkLab.run(pods: ["a", "b"]) { lab in
                let a = try lab.pod("a")
                let sleeper = try a.spawn(["sleep", "600"])
                // A process the lab did not start itself: a background job left by a shell that has exited. The
                // shell first closes the descriptors it inherited beyond the standard ones, as Foundation sees a
                // process end only when every holder of one of them has (bash: dash cannot close descriptor 10+).
                let orphan = try await a.output([
                    "bash", "-c",
                    "for fd in $(ls /proc/$$/fd); do [ \"$fd\" -gt 2 ] && eval \"exec $fd>&-\"; done; "
                        + "sleep 600 >/dev/null 2>&1 & echo $!",
                ])
                let orphanID = try #require(Int32(orphan.trimmingCharacters(in: .whitespacesAndNewlines)))
                _ = try await a.bind(echoServer(), host: "0.0.0.0", port: 7002)
                made.withLock {
                    $0 = (lab.pods.map(\.namespaceName), lab.bridgeName, [sleeper.processIdentifier, orphanID])
                }
                throw BodyFailure()
            }
        }
        let (namespaces, bridge, processes) = made.value
        #expect(namespaces.count == 2)
        let namespaceList = try await rootCommand(["ip", "netns", "list"])
        let linkList = try await rootCommand(["ip", "-o", "link", "show"])
        for namespace in namespaces {
            #expect(!namespaceList.contains(namespace))
        }
        #expect(!linkList.contains(bridge))
        #expect(!linkList.contains("l5v" + bridge.dropFirst(3)))
        for process in processes {
            #expect(!isRunning(process), "process \(process) survived the teardown")
        }
    }

    @Test func concurrentLabsDoNotCollide() async throws {
        let bridges = Locked<Set<String>>([])
        let namespaces = Locked<Set<String>>([])
        @Sendable func exercise() async throws {
            try await NetworkLab.run(pods: ["a", "b"]) { lab in
                bridges.withLock { _ = $0.insert(lab.bridgeName) }
                namespaces.withLock { $0.formUnion(lab.pods.map(\.namespaceName)) }
                // Both labs exist at once before either talks, so that their pods share addresses at the same time.
                let deadline = ContinuousClock.now + .seconds(10)
                while bridges.value.count < 2, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(5))
                }
                let b = try lab.pod("b")
                let server = try await b.bind(echoServer(), host: "\(b.ipv4)", port: 7003)
                let message = "through \(lab.bridgeName)"
                let reply = try await echo(message, from: try lab.pod("a"), to: try #require(server.localAddress))
                #expect(reply == message)
                try await server.close()
            }
        }
        async let first: Void = exercise()
        async let second: Void = exercise()
        _ = try await (first, second)
        #expect(bridges.value.count == 2)
        #expect(namespaces.value.count == 4)
        let linkList = try await rootCommand(["ip", "-o", "link", "show"])
        let namespaceList = try await rootCommand(["ip", "netns", "list"])
        for bridge in bridges.value {
            #expect(!linkList.contains(bridge))
        }
        for namespace in namespaces.value {
            #expect(!namespaceList.contains(namespace))
        }
    }

    @Test func sweepsWhatDeadProcessesLeftBehind() async throws {
        let dead = try await deadProcessID()
        let hex = String(dead, radix: 16)
        let paddedPID = String(repeating: "0", count: 6 - hex.count) + hex
        let leftoverNamespace = "l5d-\(dead)-7-a"
        let leftoverBridge = "l5b\(paddedPID)0007"
        _ = try await rootCommand(["ip", "netns", "add", leftoverNamespace])
        _ = try await rootCommand(["ip", "link", "add", leftoverBridge, "type", "bridge"])
        try await NetworkLab.run(pods: ["a"]) { _ in }
        #expect(!(try await rootCommand(["ip", "netns", "list"])).contains(leftoverNamespace))
        #expect(!(try await rootCommand(["ip", "-o", "link", "show"])).contains(leftoverBridge))
    }

    @Test func rejectsBadPodListsAndNames() async throws {
        let invalid = try await #require(throws: NetworkLabError.self) {
            try await NetworkLab.run(pods: ["a", "Web"]) { _ in }
        }
        #expect(
            "\(invalid)"
                == "invalid network lab argument: the pod name \"Web\" is not 1 to 32 lowercase letters, digits and "
                + "\"-\" starting with a letter or digit")
        let duplicate = try await #require(throws: NetworkLabError.self) {
            try await NetworkLab.run(pods: ["a", "a"]) { _ in }
        }
        #expect("\(duplicate)" == "invalid network lab argument: the pod name \"a\" is given more than once")
        try await NetworkLab.run(pods: ["a"], ipv6: false) { lab in
            let a = try lab.pod("a")
            #expect(a.ipv6 == nil)
            #expect(a.addresses == [try IPAddress(parsing: "198.18.0.1")])
            #expect(!(try await a.output(["ip", "-o", "address", "show", "eth0"])).contains("2001:db8"))
            let unknown = try #require(throws: NetworkLabError.self) { try lab.pod("c") }
            #expect("\(unknown)" == "the lab has no pod \"c\"; its pods are \"a\"")
        }
    }
}

// MARK: - Helpers

/// A server bootstrap whose connections echo what they receive, recording each peer's address.
private func echoServer(recordingPeersIn peers: Locked<[SocketAddress]>? = nil) -> ServerBootstrap {
    ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .childChannelInitializer { channel in
            if let peers, let remote = channel.remoteAddress {
                peers.withLock { $0.append(remote) }
            }
            return channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(EchoHandler())
            }
        }
}

/// Sends `message` from `pod` to `address` and returns the reply: as many bytes as were sent, or fewer when the
/// server closes first.
private func echo(_ message: String, from pod: LabPod, to address: SocketAddress) async throws -> String {
    let collector = ReplyCollector(expectedBytes: message.utf8.count)
    let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(collector) }
        }
    let channel = try await pod.connect(bootstrap, to: address, timeout: .seconds(5))
    try await channel.writeAndFlush(ByteBuffer(string: message))
    let reply = try await #require(collector.reply).get()
    try await channel.close()
    return reply
}

/// Runs `argv` in the root namespace and returns its standard output; fails the test when it fails, unless
/// `allowingFailure`.
private func rootCommand(_ argv: [String], allowingFailure: Bool = false) async throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = argv
    let output = Pipe()
    process.standardOutput = output
    process.standardError = FileHandle.nullDevice
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        process.terminationHandler = { _ in continuation.resume() }
        do {
            try process.run()
        } catch {
            continuation.resume()
        }
    }
    try #require(allowingFailure || process.terminationStatus == 0, "`\(argv.joined(separator: " "))` failed")
    // The listings are far below a pipe's capacity, so the process never waited for this read.
    return String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
}

/// Whether `pid` is a live process (neither gone nor a zombie waiting for its parent).
private func isRunning(_ pid: Int32) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let end = stat.lastIndex(of: ")")
    else {
        return false
    }
    return !stat[end...].hasPrefix(") Z")
}

/// The id of a process that has exited and been reaped.
private func deadProcessID() async throws -> Int32 {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["true"]
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        process.terminationHandler = { _ in continuation.resume() }
        do {
            try process.run()
        } catch {
            continuation.resume()
        }
    }
    try #require(process.terminationStatus == 0)
    return process.processIdentifier
}

private final class EchoHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.writeAndFlush(data, promise: nil)
    }
}

/// Collects inbound bytes until `expectedBytes` arrived or the channel closes, then completes ``reply``.
private final class ReplyCollector: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer

    private let expectedBytes: Int
    private let state = Locked<
        (received: ByteBuffer, promise: EventLoopPromise<String>?, reply: EventLoopFuture<String>?)
    >(
        (ByteBuffer(), nil, nil))

    init(expectedBytes: Int) {
        self.expectedBytes = expectedBytes
    }

    /// The reply, once the handler is in a pipeline.
    var reply: EventLoopFuture<String>? {
        state.value.reply
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let promise = context.eventLoop.makePromise(of: String.self)
        state.withLock { $0 = ($0.received, promise, promise.futureResult) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        let received = state.withLock { state in
            state.received.writeBuffer(&buffer)
            return state.received
        }
        if received.readableBytes >= expectedBytes {
            finish(.success(String(buffer: received)))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(.success(String(buffer: state.value.received)))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        finish(.failure(error))
        context.close(promise: nil)
    }

    /// Completes the reply the first time only.
    private func finish(_ result: Result<String, any Error>) {
        let promise = state.withLock { state in
            defer { state.promise = nil }
            return state.promise
        }
        promise?.completeWith(result)
    }
}
