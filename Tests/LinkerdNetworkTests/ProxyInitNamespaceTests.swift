import Foundation
import KubeModel
import LinkerdCore
import LinkerdInject
import LinkerdNetworkTestSupport
import LinkerdProxyInit
import LinkerdProxyInitCLI
import LinkerdTestSupport
import LinkerdTransport
import NIOCore
import NIOPosix
import Testing

/// linkerd-proxy-init against real iptables in real network namespaces: pods on a bridge, the rules installed in
/// one of them, and TCP connections that show where the kernel sends them. The proxy is stood in for by listeners
/// on its ports that answer with the connection's original destination; applications by listeners that answer
/// with their own name.
@Suite(
    "linkerd-proxy-init in network namespaces",
    .enabled(if: NetworkLab.unavailableReason == nil, "\(NetworkLab.unavailableReason ?? "")"),
    .timeLimit(.minutes(2)))
struct ProxyInitNamespaceTests {
    static let injectorArguments = LabPod.injectorProxyInitArguments

    @Test("outbound connections land on 127.0.0.1:4140 and inbound ones on 4143, original destinations intact")
    func redirection() async throws {
        try await NetworkLab.run(pods: ["a", "b"]) { lab in
            let (a, b) = (try lab.pod("a"), try lab.pod("b"))
            try await proxyInit(Self.injectorArguments, in: a)
            let group = MultiThreadedEventLoopGroup.singleton
            try await standInProxy(in: a, group: group)
            _ = try await application(named: "b-app", in: b, host: "0.0.0.0", port: 80, group: group)
            // Bound to B's own IPv6 address: a dual-stack [::]:80 would collide with 0.0.0.0:80.
            _ = try await application(named: "b-app6", in: b, host: "\(try #require(b.ipv6))", port: 80, group: group)

            // Outbound: A's client to B's address reaches A's own outbound listener.
            let outbound = try await request(from: a, to: try .init(ipAddress: "\(b.ipv4)", port: 80), group: group)
            #expect(outbound == "outbound to \(b.ipv4):80")
            let ipv6 = try #require(b.ipv6)
            let outbound6 = try await request(from: a, to: try .init(ipAddress: "\(ipv6)", port: 80), group: group)
            #expect(outbound6 == "outbound to [\(ipv6)]:80")

            // Inbound: B's client to A's port 80 reaches A's inbound listener.
            let inbound = try await request(from: b, to: try .init(ipAddress: "\(a.ipv4)", port: 80), group: group)
            #expect(inbound == "inbound to \(a.ipv4):80")
            let aIPv6 = try #require(a.ipv6)
            let inbound6 = try await request(from: b, to: try .init(ipAddress: "\(aIPv6)", port: 80), group: group)
            #expect(inbound6 == "inbound to [\(aIPv6)]:80")
        }
    }

    @Test("the proxy's own traffic, ignored ports and ignored subnets are not redirected")
    func exemptions() async throws {
        try await NetworkLab.run(pods: ["a", "b", "c"], ipv6: false) { lab in
            let (a, b, c) = (try lab.pod("a"), try lab.pod("b"), try lab.pod("c"))
            try await proxyInit(
                Self.injectorArguments + ["--ipv6=false", "--subnets-to-ignore", "\(c.ipv4)/32"], in: a)
            let group = MultiThreadedEventLoopGroup.singleton
            try await standInProxy(in: a, group: group, ipv6: false)
            _ = try await application(named: "a-app", in: a, host: "0.0.0.0", port: 80, group: group)
            _ = try await application(named: "a-admin", in: a, host: "0.0.0.0", port: 4191, group: group)
            _ = try await application(named: "b-app", in: b, host: "0.0.0.0", port: 80, group: group)
            _ = try await application(named: "b-4567", in: b, host: "0.0.0.0", port: 4567, group: group)

            // The proxy's user (2102) reaches B directly; root in the same pod is redirected.
            let asProxy = try await a.run(Self.shellClient("\(b.ipv4)", 80), uid: 2102, gid: 2102)
            #expect(asProxy.succeeded, "\(asProxy)")
            #expect(asProxy.standardOutput == "b-app")
            let asRoot = try await a.run(Self.shellClient("\(b.ipv4)", 80))
            #expect(asRoot.standardOutput == "outbound to \(b.ipv4):80", "\(asRoot)")

            // Outbound ignored port 4567, inbound ignored port 4191 (the proxy's admin port).
            let ignoredOut = try await request(from: a, to: try .init(ipAddress: "\(b.ipv4)", port: 4567), group: group)
            #expect(ignoredOut == "b-4567")
            let admin = try await request(from: b, to: try .init(ipAddress: "\(a.ipv4)", port: 4191), group: group)
            #expect(admin == "a-admin")

            // C's subnet is ignored inbound: C reaches A's application, B still lands on the proxy.
            let fromC = try await request(from: c, to: try .init(ipAddress: "\(a.ipv4)", port: 80), group: group)
            #expect(fromC == "a-app")
            let fromB = try await request(from: b, to: try .init(ipAddress: "\(a.ipv4)", port: 80), group: group)
            #expect(fromB == "inbound to \(a.ipv4):80")

            // Loopback stays loopback.
            let local = try await request(from: a, to: try .init(ipAddress: "127.0.0.1", port: 80), group: group)
            #expect(local == "a-app")
        }
    }

    @Test(
        "running twice leaves identical tables and cleanup leaves none of its rules",
        arguments: [IPTablesMode.nft, .legacy])
    func idempotenceAndCleanup(mode: IPTablesMode) async throws {
        try await NetworkLab.run(pods: ["a"]) { lab in
            let a = try lab.pod("a")
            let modeArguments = ["--iptables-mode", mode.rawValue]
            let pristine = try await tables(in: a, mode: mode)
            try await proxyInit(Self.injectorArguments + modeArguments, in: a)
            let first = try await tables(in: a, mode: mode)
            #expect(first.ipv4.contains("-j PROXY_INIT_REDIRECT") && first.ipv6.contains("-j PROXY_INIT_OUTPUT"))
            try await proxyInit(Self.injectorArguments + modeArguments, in: a)
            let second = try await tables(in: a, mode: mode)
            #expect(second == first)

            try await proxyInit(["cleanup"] + modeArguments, in: a)
            let cleaned = try await tables(in: a, mode: mode)
            #expect(cleaned == pristine)
            #expect(!cleaned.ipv4.contains("PROXY_INIT") && !cleaned.ipv4.contains("proxy-init"))
            #expect(!cleaned.ipv6.contains("PROXY_INIT") && !cleaned.ipv6.contains("proxy-init"))
            // Cleaning a clean table is not an error.
            try await proxyInit(["cleanup"] + modeArguments, in: a)
        }
    }

    @Test("a command that fails part-way, after the IPv4 rules are in, leaves both tables as they were: exit 1")
    func rollback() async throws {
        try await NetworkLab.run(pods: ["a"]) { lab in
            let a = try lab.pod("a")
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("l5d-failing-\(UUID())")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            // Programs in one directory, so that --firewall-bin-path's IPv6 counterpart is found there too:
            // iptables-nft as it is, and an ip6tables-nft that refuses the outbound redirect, the last but one
            // command of the whole run.
            try Self.script(
                "exec iptables-nft \"$@\"", at: directory.appendingPathComponent("iptables-nft").path)
            try Self.script(
                """
                case "$*" in *"--to-port 4140"*) echo "refused by the test" >&2; exit 4;; esac
                exec ip6tables-nft "$@"
                """, at: directory.appendingPathComponent("ip6tables-nft").path)
            let pristine = try await tables(in: a, mode: .nft)

            let arguments = Self.injectorArguments.map {
                $0 == "iptables-nft" ? directory.appendingPathComponent("iptables-nft").path : $0
            }
            let result = await a.runProxyInit(arguments)
            #expect(result.status == 1, "\(result)")
            #expect(result.output.contains("exit status 4: refused by the test"), "\(result)")
            #expect(result.output.contains("the nat table was restored to how it was before"), "\(result)")
            #expect(try await tables(in: a, mode: .nft) == pristine)
        }
    }

    @Test("--timeout-close-wait-secs sets the pod's conntrack CLOSE_WAIT timeout, not the host's")
    func closeWaitTimeout() async throws {
        let setting = "net.netfilter.nf_conntrack_tcp_timeout_close_wait"
        try await NetworkLab.run(pods: ["a"], ipv6: false) { lab in
            let a = try lab.pod("a")
            let host = try String(
                contentsOfFile: "/proc/sys/net/netfilter/nf_conntrack_tcp_timeout_close_wait", encoding: .utf8)
            try await proxyInit(Self.injectorArguments + ["--ipv6=false", "--timeout-close-wait-secs", "7"], in: a)
            #expect(try await a.output(["sysctl", "-n", setting]) == "7\n")
            #expect(
                try String(
                    contentsOfFile: "/proc/sys/net/netfilter/nf_conntrack_tcp_timeout_close_wait", encoding: .utf8)
                    == host)
        }
    }

    @Test("the arguments the injector writes for linkerd-init install working rules")
    func injectorArguments() async throws {
        let configuration = try MeshConfiguration(valuesYAML: "disableIPv6: false", trustAnchorsPEM: "")
        let pod: JSONValue = [
            "apiVersion": "v1", "kind": "Pod",
            "metadata": ["name": "web", "namespace": "shop", "annotations": ["linkerd.io/inject": "enabled"]],
            "spec": ["containers": [["name": "web", "image": "nginx", "ports": [["containerPort": 80]]]]],
        ]
        let result = ProxyInjector(configuration: configuration).inject(
            InjectionRequest(object: pod, kind: "Pod", namespace: "shop"))
        let injected = try #require(try result.patch?.apply(to: pod))
        let initContainer = try #require(
            injected["spec"]?["initContainers"]?.arrayValue?.first { $0["name"]?.stringValue == "linkerd-init" })
        let argumentValues = try #require(initContainer["args"]?.arrayValue)
        let arguments = argumentValues.compactMap(\.stringValue)
        #expect(arguments.contains("--proxy-uid"))

        try await NetworkLab.run(pods: ["a", "b"]) { lab in
            let (a, b) = (try lab.pod("a"), try lab.pod("b"))
            try await proxyInit(arguments, in: a)
            let group = MultiThreadedEventLoopGroup.singleton
            try await standInProxy(in: a, group: group)
            let outbound = try await request(from: a, to: try .init(ipAddress: "\(b.ipv4)", port: 80), group: group)
            #expect(outbound == "outbound to \(b.ipv4):80")
            let inbound = try await request(from: b, to: try .init(ipAddress: "\(a.ipv4)", port: 8080), group: group)
            #expect(inbound == "inbound to \(a.ipv4):8080")
        }
    }

    @Test("the linkerd-proxy-init executable installs the rules inside the pod without --netns")
    func executable() async throws {
        let executable = try Self.executable()
        try await NetworkLab.run(pods: ["a"], ipv6: false) { lab in
            let a = try lab.pod("a")
            let result = try await a.run([executable] + Self.injectorArguments + ["--ipv6=false"])
            #expect(result.succeeded, "\(result)")
            #expect(
                result.standardError.contains("iptables-nft-save -t nat: # Generated by iptables-nft-save"), "\(result)"
            )
            let table = try await tables(in: a, mode: .nft)
            #expect(
                table.ipv4.contains(
                    "-A PROXY_INIT_OUTPUT -p tcp -m comment --comment \"proxy-init/redirect-all-outgoing-to-proxy-port\" -j REDIRECT --to-ports 4140"
                ))
        }
    }

    // MARK: - Helpers

    /// Writes an executable shell script with `body`.
    static func script(_ body: String, at path: String) throws {
        try "#!/bin/sh\n\(body)\n".write(toFile: path, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
    }

    /// Runs proxy-init against `pod` and requires it to succeed.
    func proxyInit(_ arguments: [String], in pod: LabPod) async throws {
        let result = await pod.runProxyInit(arguments)
        try #require(result.status == 0, "\(result)")
    }

    /// Both nat tables of `pod` as `mode`'s save programs print them, without comments and counters.
    func tables(in pod: LabPod, mode: IPTablesMode) async throws -> NATTables {
        func read(_ family: IPFamily) async throws -> String {
            let save = FirewallBinaries.named(mode, family: family).save
            let result = try await pod.run([save, "-t", "nat"])
            try #require(result.succeeded, "\(result)")
            return result.standardOutput.split(separator: "\n")
                .filter { !$0.hasPrefix("#") }
                .map { $0.replacing(/\[\d+:\d+\]/, with: "[0:0]") }
                .joined(separator: "\n")
        }
        return NATTables(ipv4: try await read(.ipv4), ipv6: try await read(.ipv6))
    }

    struct NATTables: Equatable {
        var ipv4: String
        var ipv6: String
    }

    /// Listeners on the proxy's ports in `pod` that answer each connection with where it was going: "outbound to
    /// <address>" on 127.0.0.1:4140 (and [::1]:4140), "inbound to <address>" on 0.0.0.0:4143 (and the pod's IPv6
    /// address, port 4143, where ip6tables' REDIRECT sends inbound connections).
    func standInProxy(in pod: LabPod, group: any EventLoopGroup, ipv6: Bool = true) async throws {
        var listeners = [("127.0.0.1", 4140, "outbound"), ("0.0.0.0", 4143, "inbound")]
        if ipv6 {
            listeners += [("::1", 4140, "outbound"), ("\(try #require(pod.ipv6))", 4143, "inbound")]
        }
        for (host, port, direction) in listeners {
            _ = try await serve(in: pod, host: host, port: port, group: group) { channel in
                channel.originalDestination().map { "\(direction) to \(Self.text($0))" }
                    .flatMapErrorThrowing { "\(direction): \($0)" }
            }
        }
    }

    /// A listener in `pod` that answers each connection with `name`.
    func application(
        named name: String, in pod: LabPod, host: String, port: Int, group: any EventLoopGroup
    ) async throws -> any Channel {
        try await serve(in: pod, host: host, port: port, group: group) { $0.eventLoop.makeSucceededFuture(name) }
    }

    func serve(
        in pod: LabPod, host: String, port: Int, group: any EventLoopGroup,
        answer: @escaping @Sendable (any Channel) -> EventLoopFuture<String>
    ) async throws -> any Channel {
        let bootstrap = ServerBootstrap(group: group).childChannelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(AnswerHandler(answer: answer))
            }
        }
        return try await pod.bind(bootstrap, host: host, port: port)
    }

    /// Connects from `pod` to `address` and returns everything the server wrote before closing.
    func request(from pod: LabPod, to address: SocketAddress, group: any EventLoopGroup) async throws -> String {
        let received = group.next().makePromise(of: String.self)
        let bootstrap = ClientBootstrap(group: group).channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(ReadAllHandler(received: received))
            }
        }
        _ = try await pod.connect(bootstrap, to: address, timeout: .seconds(5))
        return try await received.futureResult.get()
    }

    /// `1.2.3.4:80` or `[2001:db8::1]:80`.
    static func text(_ address: SocketAddress) -> String {
        guard let ip = address.ipAddress, let port = address.port else { return "\(address)" }
        return address.protocol == .inet6 ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }

    /// A client that prints what the server at `host:port` answers, with bash's `/dev/tcp` and `cat`, which any
    /// user can run (unlike a python3 installed under root's home).
    static func shellClient(_ host: String, _ port: Int) -> [String] {
        ["/bin/bash", "-c", "exec 3<>/dev/tcp/\(host)/\(port) && exec cat <&3"]
    }

    /// The built `linkerd-proxy-init`, next to the test bundle or in this package's `.build/debug`.
    static func executable() throws -> String {
        let bundleDirectory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let packageRoot = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let candidates = [
            bundleDirectory.appendingPathComponent("linkerd-proxy-init").path,
            packageRoot.appendingPathComponent(".build/debug/linkerd-proxy-init").path,
        ]
        return try #require(
            candidates.first { FileManager.default.isExecutableFile(atPath: $0) },
            "linkerd-proxy-init is not built (swift build --build-tests); searched \(candidates)")
    }
}

/// Writes one answer to each connection and closes it.
private final class AnswerHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let answer: @Sendable (any Channel) -> EventLoopFuture<String>

    init(answer: @escaping @Sendable (any Channel) -> EventLoopFuture<String>) {
        self.answer = answer
    }

    func channelActive(context: ChannelHandlerContext) {
        let channel = context.channel
        answer(channel).whenComplete { result in
            let text = (try? result.get()) ?? "no answer"
            channel.writeAndFlush(ByteBuffer(string: text)).whenComplete { _ in channel.close(promise: nil) }
        }
        context.fireChannelActive()
    }
}

/// Collects what the server writes until it closes the connection.
private final class ReadAllHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let received: EventLoopPromise<String>
    private var buffer = ByteBuffer()

    init(received: EventLoopPromise<String>) {
        self.received = received
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var chunk = unwrapInboundIn(data)
        buffer.writeBuffer(&chunk)
    }

    func channelInactive(context: ChannelHandlerContext) {
        received.succeed(String(buffer: buffer))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        received.fail(error)
        context.close(promise: nil)
    }
}
