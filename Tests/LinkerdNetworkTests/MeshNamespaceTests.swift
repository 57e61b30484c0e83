import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import KubeModel
import KubeTestServer
import LinkerdNetworkTestSupport
import LinkerdProxyTestSupport
import LinkerdTestSupport
import NIOCore
import Testing

/// A real mesh in network namespaces: two pods set up by linkerd-proxy-init, each running the `linkerd-proxy`
/// executable as uid 2102, the identity service and a fake Destination service in the test's own namespace (reached
/// through an address on the lab's bridge). Clients that are not ours (curl, nghttp, h2load, Python's grpcio) in pod
/// `web` call pod `api`'s address; `api`'s applications (an HTTP/1 + HTTP/2 server, a grpcio server) report the
/// `l5d-client-id` they received; a packet capture on `api`'s `eth0` shows that only TLS crosses between the pods.
///
/// The control plane is reached at 198.18.0.254, an address the test gives the lab's bridge (the identity service
/// listens there; a relay there forwards to the fake Destination service, which listens on 127.0.0.1 only). Two
/// processes running this suite at the same time would both route 198.18.0.0/24 in the root namespace, so run one at a
/// time. `LINKERD_TEST_PROXY_EXECUTABLE` runs another `linkerd-proxy` (a release build, say) instead of the built one.
@Suite(
    "A real mesh in network namespaces",
    .enabled(if: NetworkLab.unavailableReason == nil, "\(NetworkLab.unavailableReason ?? "")"),
    .timeLimit(.minutes(3)))
struct MeshNamespaceTests {
    static let namespace = "emojivoto"
    static let webIdentity = "web.emojivoto.serviceaccount.identity.linkerd.cluster.local"
    static let apiIdentity = "api.emojivoto.serviceaccount.identity.linkerd.cluster.local"
    static let identityServiceName = "linkerd-identity.linkerd.serviceaccount.identity.linkerd.cluster.local"
    static let destinationServiceName = "linkerd-destination.linkerd.serviceaccount.identity.linkerd.cluster.local"
    /// The test's own address on the lab's bridge, where the pods reach the control plane.
    static let hostAddress = "198.18.0.254"
    static let httpPort = 80
    static let grpcPort = 8080
    static let proxyUID: UInt32 = 2102

    @Test(
        "curl, nghttp, h2load and a grpcio client in one pod reach the other's address over mTLS: its servers see the caller's identity and the wire between the pods carries only TLS"
    )
    func meshBetweenPods() async throws {
        try await Self.requireTools()
        let files = FileManager.default.temporaryDirectory.appendingPathComponent("l5d-mesh-\(UUID().uuidString)")
            .path
        try FileManager.default.createDirectory(atPath: files, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: files) }
        let pki = try MeshPKI(directory: files + "/pki")

        try await NetworkLab.run(pods: ["web", "api"]) { lab in
            let (web, api) = (try lab.pod("web"), try lab.pod("api"))
            let added = try await runOnHost(["ip", "address", "add", "\(Self.hostAddress)/24", "dev", lab.bridgeName])
            try #require(added.status == 0, "giving the bridge an address: \(added.output)")

            try await withMeshIdentityService(pki, host: Self.hostAddress) { identityPort, kube in
                for pod in [web, api] {
                    kube.registerServiceAccountToken(
                        "\(pod.name)-token",
                        user: UserInfo(username: "system:serviceaccount:\(Self.namespace):\(pod.name)"),
                        audiences: ["identity.l5d.io"])
                }
                let serving = try pki.anchor.issue(
                    commonName: Self.destinationServiceName, dnsNames: [Self.destinationServiceName])
                let security = HTTP2ServerTransport.Posix.TransportSecurity.tls(
                    certificateChain: [.bytes(Array(serving.certificatePEM.utf8), format: .pem)],
                    privateKey: .bytes(Array(serving.privateKeyPEM.utf8), format: .pem))
                try await withFakeDestinationServer(transportSecurity: security, unexpectedCallCode: .invalidArgument) {
                    destination in
                    let relay = try await startRelay(
                        host: Self.hostAddress, to: try SocketAddress(ipAddress: "127.0.0.1", port: destination.port))
                    do {
                        let mesh = Mesh(
                            web: web, api: api, files: files, pki: pki, identityPort: identityPort,
                            destination: destination, destinationPort: relay.localAddress?.port ?? 0)
                        try await mesh.run()
                    } catch {
                        try? await relay.close()
                        throw error
                    }
                    try await relay.close()
                }
            }
        }
    }

    /// Fails with what to install when a program the test runs is missing.
    static func requireTools() async throws {
        var missing: [String] = []
        for tool in ["tcpdump", "curl", "nghttp", "h2load", "python3"] {
            let found = try await runOnHost(["sh", "-c", "command -v \(tool)"])
            if found.status != 0 { missing.append(tool) }
        }
        let grpc = try await runOnHost(["python3", "-c", "import grpc"])
        if grpc.status != 0 { missing.append("python3's grpc") }
        try #require(missing.isEmpty, "missing \(missing.joined(separator: ", ")): run `make deps`")
    }
}

/// One run of the scenario, with everything it started.
private struct Mesh {
    let web: LabPod
    let api: LabPod
    let files: String
    let pki: MeshPKI
    let identityPort: Int
    let destination: FakeDestinationServer
    let destinationPort: Int

    typealias Tests = MeshNamespaceTests

    var apiHTTP: String { "\(api.ipv4):\(Tests.httpPort)" }
    var apiGRPC: String { "\(api.ipv4):\(Tests.grpcPort)" }

    func run() async throws {
        // The Destination service describes pod api's ports as the real one describes a meshed pod's IP: an endpoint
        // profile with the pod's identity and the HTTP/2 hint. An answer stays cached while connections use it, then
        // is asked for again: a few spare expectations per port.
        for port in [Tests.httpPort, Tests.grpcPort] {
            let endpoint = try FakeDestinationServer.weightedAddr(
                "\(api.ipv4):\(port)", identity: Tests.apiIdentity, hint: .h2)
            for _ in 0..<20 {
                destination.expectProfile(path: "\(api.ipv4):\(port)").send(
                    FakeDestinationServer.profile(endpoint: endpoint))
            }
        }

        // Pod api's applications, started before its proxy and firewall.
        let app = try await MeshEchoApp.start(in: api, port: Tests.httpPort)
        try Self.writeGRPCScripts(in: files)
        let grpcServer = try spawnLogged(
            in: api, ["python3", "\(files)/grpc_server.py", "\(Tests.grpcPort)"], log: "\(files)/grpc-server.log")
        try await eventually("the grpcio server listens in pod api", timeout: .seconds(30)) {
            try await api.run(["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/\(Tests.grpcPort)"]).succeeded
                || grpcServer.hasExited
        }
        try #require(!grpcServer.hasExited, "the grpcio server exited: \(log("grpc-server.log"))")

        // The proxies, as uid 2102, then linkerd-proxy-init in both pods.
        let proxies = try [web, api].map { try startProxy(in: $0) }
        defer {
            for proxy in proxies { proxy.terminate() }
        }
        for pod in [web, api] {
            let lastAnswer = Locked("")
            do {
                try await eventually("the proxy of pod \(pod.name) is ready", timeout: .seconds(30)) {
                    let ready = try await pod.run([
                        "curl", "-sS", "--noproxy", "*", "--max-time", "2", "http://127.0.0.1:4191/ready",
                    ])
                    lastAnswer.withLock { $0 = "\(ready): \(ready.standardOutput)" }
                    return ready.standardOutput == "ready\n"
                }
            } catch {
                Issue.record("\(error); last answer: \(lastAnswer.value)\n\(diagnostics())")
                throw error
            }
        }
        for pod in [web, api] {
            try await pod.installProxyInit()
        }

        // Everything between the two pods, as pod api's eth0 sees it.
        let capture = try await Capture.start(in: api, between: web, and: api, file: "\(files)/mesh.pcap")
        let calls: (http1: String, http2: String, nghttp: String, h2load: String, grpc: String)
        do {
            calls = try await callFromWeb()
        } catch {
            Issue.record("\(error)\n\(diagnostics())")
            throw error
        }
        let captured = try await capture.stop()

        // What each client got back: pod api's servers saw pod web's identity.
        #expect(calls.http1.contains("HTTP/1.1 200"), "\(calls.http1)\n\(diagnostics())")
        #expect(
            calls.http1.contains("client-id=\(Tests.webIdentity) version=1.1 uri=/curl-http1"),
            "\(calls.http1)\n\(diagnostics())")
        #expect(calls.http2.contains("HTTP/2 200"), "\(calls.http2)\n\(diagnostics())")
        #expect(
            calls.http2.contains("client-id=\(Tests.webIdentity) version=2.0 uri=/curl-http2"),
            "\(calls.http2)\n\(diagnostics())")
        #expect(
            calls.nghttp.contains("client-id=\(Tests.webIdentity) version=2.0 uri=/nghttp"),
            "\(calls.nghttp)\n\(diagnostics())")
        #expect(
            calls.h2load.contains("100 succeeded, 0 failed, 0 errored, 0 timeout")
                && calls.h2load.contains("status codes: 100 2xx"),
            "\(calls.h2load)\n\(diagnostics())")
        #expect(
            calls.grpc == "client-id=\(Tests.webIdentity) method=/test.Echo/Say message=hello from web\n",
            "\(calls.grpc)\n\(diagnostics())")

        // What pod api's HTTP application recorded: every request, each with pod web's identity.
        let seen = app.requests
        #expect(seen.filter { $0.uri == "/h2load" }.count == 100, "\(seen)")
        #expect(
            Set(seen.map(\.uri)) == ["/curl-http1", "/curl-http2", "/nghttp", "/h2load"]
                && seen.allSatisfy { $0.clientID == Tests.webIdentity },
            "\(seen.filter { $0.clientID != Tests.webIdentity })")

        // The proxies looked pod api's ports up and asked nothing else.
        let profiles = Set(destination.calls.filter { $0.method == .getProfile }.map(\.path))
        #expect(profiles == [apiHTTP, apiGRPC], "\(destination.calls)")
        #expect(destination.unexpectedCalls.isEmpty, "\(destination.unexpectedCalls)")

        // The wire: TLS only, from web's proxy to api's ports 80 and 8080 (which api's firewall sends to its proxy).
        try await checkOnlyTLS(captured)

        // Control: a client as the proxy's user bypasses web's proxy, so its request crosses in plaintext, arrives
        // without an identity (api's proxy drops the forged header), and the same analysis sees it.
        let control = try await Capture.start(in: api, between: web, and: api, file: "\(files)/control.pcap")
        let plaintext = try await web.output(
            [
                "curl", "-sS", "-i", "--noproxy", "*", "--max-time", "15", "--http1.1", "-H",
                "l5d-client-id: forged.example", "http://\(apiHTTP)/plaintext",
            ], uid: Tests.proxyUID, gid: Tests.proxyUID)
        let controlCapture = try await control.stop()
        #expect(plaintext.contains("client-id=none version=1.1 uri=/plaintext"), "\(plaintext)\n\(diagnostics())")
        let controlStreams = controlCapture.streams.filter { $0.flow.destinationPort == Tests.httpPort }
        #expect(
            controlStreams.contains { $0.tlsRecordProblem != nil && $0.contains("GET /plaintext HTTP/1.1") },
            "the plaintext request is not seen in the capture: \(controlStreams.map(\.summary))")
    }

    /// The clients, in pod web as root (so that its firewall sends them to its proxy).
    private func callFromWeb() async throws -> (
        http1: String, http2: String, nghttp: String, h2load: String, grpc: String
    ) {
        let curl = ["curl", "-sS", "-i", "--noproxy", "*", "--max-time", "15"]
        let http1 = try await web.output(curl + ["--http1.1", "http://\(apiHTTP)/curl-http1"])
        let http2 = try await web.output(curl + ["--http2-prior-knowledge", "http://\(apiHTTP)/curl-http2"])
        let nghttp = try await web.output(["nghttp", "--timeout=15", "http://\(apiHTTP)/nghttp"])
        let h2load = try await web.output([
            "h2load", "-N", "15s", "-n", "100", "-c", "2", "-m", "10", "http://\(apiHTTP)/h2load",
        ])
        let grpc = try await web.output(["python3", "\(files)/grpc_client.py", apiGRPC, "hello from web"])
        return (http1, http2, nghttp, h2load, grpc)
    }

    /// Every byte between the pods is in TLS records, each connection opens with a ClientHello for api's identity,
    /// and nothing the clients or servers sent appears in clear.
    private func checkOnlyTLS(_ capture: PacketCapture) async throws {
        let streams = capture.streams.filter { !$0.bytes.isEmpty || $0.missingBytes > 0 }
        let toAPI = streams.filter { $0.flow.source == "\(web.ipv4)" && $0.flow.destination == "\(api.ipv4)" }
        let summaries = streams.map(\.summary).joined(separator: "\n")
        let explanation = "streams between the pods:\n\(summaries)\n\(await capture.text(in: api))"
        // At least one connection to each port; nothing else between the pods.
        #expect(
            Set(toAPI.map(\.flow.destinationPort)) == [UInt16(Tests.httpPort), UInt16(Tests.grpcPort)], "\(explanation)"
        )
        #expect(
            streams.allSatisfy {
                [UInt16(Tests.httpPort), UInt16(Tests.grpcPort)].contains(
                    $0.flow.source == "\(web.ipv4)" ? $0.flow.destinationPort : $0.flow.sourcePort)
            }, "\(explanation)")
        for stream in streams {
            #expect(stream.sawSYN && stream.missingBytes == 0, "incomplete capture of \(stream.summary)")
            #expect(stream.tlsRecordProblem == nil, "\(stream.flow): \(stream.tlsRecordProblem ?? "")")
            let fromWeb = stream.flow.source == "\(web.ipv4)"
            // A handshake record (0x16, legacy version 3.1) holding a ClientHello (1) or a ServerHello (2).
            let opening = Array(stream.bytes.prefix(6))
            #expect(
                opening.count == 6 && opening[0] == 0x16 && opening[1] == 3 && opening[5] == (fromWeb ? 1 : 2)
                    && (!fromWeb || opening[2] == 1),
                "\(stream.summary)")
            if fromWeb {
                #expect(stream.contains(Tests.apiIdentity), "no SNI for api's identity: \(stream.summary)")
            }
            for plaintext in [
                "HTTP/1.1", "PRI * HTTP/2.0", "GET /", "curl", "nghttp", "h2load", "/test.Echo/Say", "hello from web",
                "l5d-client-id", "client-id=", "application/grpc", Tests.webIdentity,
            ] {
                #expect(!stream.contains(plaintext), "\(stream.flow) carries \"\(plaintext)\" in clear")
            }
        }
    }

    // MARK: - Processes

    /// Starts `linkerd-proxy` in `pod` as uid 2102 with the injector's listeners, the control plane at the host's
    /// bridge address, and its identity files in a directory of its own. Its output goes to `<files>/<pod>-proxy.log`.
    private func startProxy(in pod: LabPod) throws -> LabProcess {
        let directory = "\(files)/\(pod.name)"
        try FileManager.default.createDirectory(atPath: "\(directory)/identity", withIntermediateDirectories: true)
        try "\(pod.name)-token".write(toFile: "\(directory)/token", atomically: true, encoding: .utf8)
        for path in [directory, "\(directory)/identity", "\(directory)/token"] {
            try FileManager.default.setAttributes(
                [.ownerAccountID: Tests.proxyUID, .groupOwnerAccountID: Tests.proxyUID], ofItemAtPath: path)
        }
        let identity = "\(pod.name).\(Tests.namespace).serviceaccount.identity.linkerd.cluster.local"
        let environment = [
            "LINKERD2_PROXY_LOG": "warn,linkerd=debug",
            "LINKERD2_PROXY_DESTINATION_SVC_ADDR": "\(Tests.hostAddress):\(destinationPort)",
            "LINKERD2_PROXY_DESTINATION_SVC_NAME": Tests.destinationServiceName,
            "LINKERD2_PROXY_DESTINATION_CONTEXT":
                #"{"ns":"\#(Tests.namespace)","nodeName":"lab","pod":"\#(pod.name)"}"#,
            "LINKERD2_PROXY_DESTINATION_PROFILE_NETWORKS": "198.18.0.0/24",
            "LINKERD2_PROXY_POLICY_SVC_ADDR": "\(Tests.hostAddress):\(destinationPort)",
            "LINKERD2_PROXY_POLICY_SVC_NAME": Tests.destinationServiceName,
            "LINKERD2_PROXY_POLICY_WORKLOAD": #"{"ns":"\#(Tests.namespace)","pod":"\#(pod.name)"}"#,
            "LINKERD2_PROXY_INBOUND_IPS": "\(pod.ipv4)",
            "LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS": pki.anchor.certificatePEM,
            "LINKERD2_PROXY_IDENTITY_LOCAL_NAME": identity,
            "LINKERD2_PROXY_IDENTITY_SVC_ADDR": "\(Tests.hostAddress):\(identityPort)",
            "LINKERD2_PROXY_IDENTITY_SVC_NAME": Tests.identityServiceName,
            "LINKERD2_PROXY_IDENTITY_DIR": "\(directory)/identity",
            "LINKERD2_PROXY_IDENTITY_TOKEN_FILE": "\(directory)/token",
            "LINKERD2_PROXY_INBOUND_LISTEN_ADDR": "0.0.0.0:4143",
            "LINKERD2_PROXY_OUTBOUND_LISTEN_ADDRS": "127.0.0.1:4140",
            "LINKERD2_PROXY_ADMIN_LISTEN_ADDR": "0.0.0.0:4191",
            "LINKERD2_PROXY_CONTROL_LISTEN_ADDR": "0.0.0.0:4190",
        ]
        let command = ["env", "-i"] + environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        return try spawnLogged(
            in: pod, command + [try Self.proxyExecutable()], log: "\(directory)/proxy.log", uid: Tests.proxyUID)
    }

    /// Starts `argv` in `pod` with its standard output and error appended to `log`, which can be read while it runs.
    private func spawnLogged(in pod: LabPod, _ argv: [String], log: String, uid: UInt32? = nil) throws -> LabProcess {
        try pod.spawn(
            ["/bin/sh", "-c", "exec \"$@\" >>\"\(log)\" 2>&1", "sh"] + argv, uid: uid, gid: uid)
    }

    /// The end of a log file, or why it cannot be read.
    private func log(_ name: String, lines: Int = 150) -> String {
        guard let text = try? String(contentsOfFile: "\(files)/\(name)", encoding: .utf8) else {
            return "--- \(name): not written"
        }
        let all = text.split(separator: "\n", omittingEmptySubsequences: false)
        return "--- \(name) (last \(min(lines, all.count)) of \(all.count) lines):\n"
            + all.suffix(lines).joined(separator: "\n")
    }

    /// The proxies' and the grpcio server's logs, for failure messages.
    private func diagnostics() -> String {
        [log("web/proxy.log"), log("api/proxy.log"), log("grpc-server.log", lines: 40)].joined(separator: "\n")
    }

    /// The `linkerd-proxy` to run: `LINKERD_TEST_PROXY_EXECUTABLE` when set (a release build, say), or else the built
    /// one, next to the test bundle or in this package's `.build/debug`.
    static func proxyExecutable() throws -> String {
        if let chosen = ProcessInfo.processInfo.environment["LINKERD_TEST_PROXY_EXECUTABLE"], !chosen.isEmpty {
            guard FileManager.default.isExecutableFile(atPath: chosen) else {
                throw MeshTestFailure("LINKERD_TEST_PROXY_EXECUTABLE=\(chosen) is not an executable file")
            }
            return chosen
        }
        let bundleDirectory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let packageRoot = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let candidates = [
            bundleDirectory.appendingPathComponent("linkerd-proxy").path,
            packageRoot.appendingPathComponent(".build/debug/linkerd-proxy").path,
        ]
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw MeshTestFailure("linkerd-proxy is not built (swift build --build-tests); searched \(candidates)")
        }
        return found
    }

    /// A grpcio server whose `/test.Echo/Say` answers with the `l5d-client-id` it received, and a client that calls it
    /// once and prints the answer.
    static func writeGRPCScripts(in directory: String) throws {
        try """
        import sys
        from concurrent import futures
        import grpc

        def say(request, context):
            metadata = dict(context.invocation_metadata())
            client_id = metadata.get("l5d-client-id", "none")
            return ("client-id=%s method=/test.Echo/Say message=%s\\n" % (client_id, request.decode())).encode()

        handler = grpc.method_handlers_generic_handler(
            "test.Echo", {"Say": grpc.unary_unary_rpc_method_handler(say)})
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        server.add_generic_rpc_handlers((handler,))
        server.add_insecure_port("0.0.0.0:" + sys.argv[1])
        server.start()
        print("serving", flush=True)
        server.wait_for_termination()
        """.write(toFile: "\(directory)/grpc_server.py", atomically: true, encoding: .utf8)
        try """
        import sys
        import grpc

        target, message = sys.argv[1], sys.argv[2]
        with grpc.insecure_channel(target, options=[("grpc.enable_http_proxy", 0)]) as channel:
            say = channel.unary_unary("/test.Echo/Say")
            reply = say(message.encode(), timeout=15, metadata=(("x-test", "mesh"),))
            sys.stdout.write(reply.decode())
        """.write(toFile: "\(directory)/grpc_client.py", atomically: true, encoding: .utf8)
    }
}

/// tcpdump in a pod, on its `eth0`, keeping the TCP segments between two pods.
private struct Capture {
    let process: LabProcess
    let file: String

    static func start(in pod: LabPod, between first: LabPod, and second: LabPod, file: String) async throws -> Capture {
        let process = try pod.spawn([
            "tcpdump", "-i", LabPod.interfaceName, "-nn", "-U", "--immediate-mode", "-s", "0", "-Z", "root", "-w", file,
            "tcp and host \(first.ipv4) and host \(second.ipv4)",
        ])
        // tcpdump writes the file's header once it captures.
        try await eventually("tcpdump captures in pod \(pod.name)", timeout: .seconds(15)) {
            let size = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? 0
            return size >= 24 || process.hasExited
        }
        guard !process.hasExited else {
            throw MeshTestFailure("tcpdump exited: \(await process.waitForExit())")
        }
        return Capture(process: process, file: file)
    }

    /// Stops tcpdump and reads what it captured.
    func stop() async throws -> PacketCapture {
        // Let the last segments (acknowledgements, closes) arrive.
        try await Task.sleep(for: .milliseconds(300))
        guard !process.hasExited else {
            throw MeshTestFailure("tcpdump ended early: \(await process.waitForExit())")
        }
        // SIGKILL: processes the lab starts inherit the blocked signals of the thread that started them, SIGTERM
        // among them, and tcpdump does not unblock it. With --immediate-mode and -U, every packet captured is already
        // in the file.
        process.kill()
        _ = await process.waitForExit()
        return try PacketCapture(contentsOf: file)
    }
}
