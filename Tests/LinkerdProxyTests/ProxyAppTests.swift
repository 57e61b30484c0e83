import Foundation
import LinkerdCore
import LinkerdIdentityServer
import LinkerdProxy
import LinkerdProxyCore
import LinkerdTestSupport
import Logging
import ServiceLifecycle
import Testing

/// The assembled proxy against the real identity service: not ready until certified, then ready with the
/// certificate's expiry in `/metrics`, and `POST /shutdown` ends every service.
@Suite("ProxyApp", .timeLimit(.minutes(1)))
struct ProxyAppTests {
    @Test("certifies, turns ready, exports the expiry, and stops on POST /shutdown")
    func lifecycle() async throws {
        let pki = try IdentityTestPKI()
        try await withIdentityServer(pki, configure: { $0.plaintext = true }) { server in
            let localName = meshIdentity("web", "shop")
            server.registerToken("web-token", serviceAccount: "web", namespace: "shop")
            let directory = try IdentityTemporaryDirectory()
            try directory.write(Array("web-token".utf8), to: "token")
            let environment = DictionaryEnvironment([
                "LINKERD2_PROXY_DESTINATION_SVC_ADDR": "127.0.0.1:8086",
                "LINKERD2_PROXY_POLICY_SVC_ADDR": "127.0.0.1:8090",
                "LINKERD2_PROXY_POLICY_WORKLOAD": #"{"ns":"shop","pod":"web-0"}"#,
                "LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS": pki.anchor.certificatePEM,
                "LINKERD2_PROXY_IDENTITY_LOCAL_NAME": localName,
                "LINKERD2_PROXY_IDENTITY_SVC_ADDR": "127.0.0.1:\(server.port)",
                "LINKERD2_PROXY_IDENTITY_DIR": try directory.directory("identity"),
                "LINKERD2_PROXY_IDENTITY_TOKEN_FILE": directory.file("token"),
                "LINKERD2_PROXY_ADMIN_LISTEN_ADDR": "127.0.0.1:0",
                "LINKERD2_PROXY_INBOUND_LISTEN_ADDR": "127.0.0.1:0",
                "LINKERD2_PROXY_OUTBOUND_LISTEN_ADDRS": "127.0.0.1:0",
                "LINKERD2_PROXY_SHUTDOWN_ENDPOINT_ENABLED": "true",
            ])
            let configuration = try ProxyConfiguration(environment: environment)
            let app = try ProxyApp(configuration: configuration, logger: Logger(label: "test.proxy"))
            let group = Locked<ServiceGroup?>(nil)
            let services = app.services {
                Task { await group.value?.triggerGracefulShutdown() }
            }
            let serviceGroup = ServiceGroup(services: services, logger: Logger(label: "test.proxy"))
            group.withLock { $0 = serviceGroup }
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await serviceGroup.run() }
                let port = try await app.admin.waitUntilBound()
                try await eventually("the proxy is ready") { app.readiness.isReady }
                let metrics = try await httpText("http://127.0.0.1:\(port)/metrics")
                let expiry = try #require(app.credentials.expiry)
                #expect(
                    metrics.contains(
                        "identity_cert_expiration_timestamp_seconds \(Int64(expiry.timeIntervalSince1970))"))
                #expect(metrics.contains("process_start_time_seconds "))
                #expect(metrics.hasSuffix("# EOF\n"))
                #expect(try await httpText("http://127.0.0.1:\(port)/ready") == "ready\n")
                // The data-path listeners serve once certified.
                #expect(try await app.inbound.waitUntilBound() > 0)
                #expect(try await app.outbound[0].waitUntilBound() > 0)
                #expect(try await httpText("http://127.0.0.1:\(port)/shutdown", method: "POST") == "shutdown\n")
                // The service group returns once every service has stopped.
                try await tasks.next()
            }
        }
    }

    @Test("the linkerd-proxy executable exits 64 listing every configuration problem")
    func invalidConfiguration() throws {
        let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent(
                "linkerd-proxy"),
            packageRoot.appendingPathComponent(".build/debug/linkerd-proxy"),
        ]
        let executable = try #require(candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) })
        let process = Process()
        process.executableURL = executable
        process.environment = ["LINKERD2_PROXY_INBOUND_CONNECT_TIMEOUT": "1.5s"]
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 64)
        #expect(text.hasPrefix("Invalid configuration: LINKERD2_PROXY_DESTINATION_SVC_ADDR must be set"))
        #expect(text.contains(#"LINKERD2_PROXY_INBOUND_CONNECT_TIMEOUT="1.5s" is not valid"#))
    }

    /// A request with curl, returning the body.
    func httpText(_ url: String, method: String = "GET") async throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        process.arguments = ["-sS", "--max-time", "10", "-X", method, url]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }
}
