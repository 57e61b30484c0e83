import Foundation
import LinkerdProxy
import LinkerdProxyCore
import LinkerdTestSupport
import Logging
import Testing

/// The admin server on a real socket, asked by curl.
@Suite("Proxy admin server", .timeLimit(.minutes(1)))
struct ProxyAdminServerTests {
    @Test("/live, /ready before and after identity, /metrics plain and gzipped, unknown paths")
    func probesAndMetrics() async throws {
        let readiness = ProxyReadiness()
        try await withAdmin(readiness: readiness) { port, _ in
            #expect(try curl(port, "/live") == Reply(status: 200, body: "live\n"))
            #expect(try curl(port, "/ready") == Reply(status: 503, body: "not ready\n"))
            readiness.markReady()
            #expect(try curl(port, "/ready") == Reply(status: 200, body: "ready\n"))
            #expect(try curl(port, "/metrics") == Reply(status: 200, body: Self.metrics))
            let gzipped = try curl(
                port, "/metrics", ["--compressed", "-H", "Accept-Encoding: gzip", "--dump-header", "-"])
            #expect(gzipped.body.lowercased().contains("content-encoding: gzip"))
            #expect(gzipped.body.hasSuffix(Self.metrics))
            #expect(try curl(port, "/env.json").status == 404)
        }
    }

    @Test("/proxy-log-level reads and replaces the filter; a bad filter is 400 and changes nothing")
    func logLevel() async throws {
        let store = LogFilterStore(.proxyDefault)
        try await withAdmin(logFilter: store) { port, _ in
            #expect(try curl(port, "/proxy-log-level") == Reply(status: 200, body: "warn,linkerd=info,hickory=error\n"))
            let put = try curl(port, "/proxy-log-level", ["-X", "PUT", "--data-binary", "linkerd=debug,warn"])
            #expect(put.status == 204)
            #expect(store.current.level(for: "linkerd::proxy") == .debug)
            let bad = try curl(port, "/proxy-log-level", ["-X", "PUT", "--data-binary", "linkerd=loud"])
            #expect(bad.status == 400)
            #expect(bad.body.contains(#""loud" in "linkerd=loud" is not a level"#))
            #expect(store.current.description == "linkerd=debug,warn")
            #expect(try curl(port, "/proxy-log-level", ["-X", "DELETE"]).status == 405)
        }
    }

    @Test("/shutdown: 404 unless enabled; when enabled, 200 and the shutdown starts")
    func shutdown() async throws {
        try await withAdmin { port, shutdowns in
            let disabled = try curl(port, "/shutdown", ["-X", "POST"])
            #expect(disabled == Reply(status: 404, body: "shutdown endpoint is not enabled\n"))
            #expect(shutdowns.value == 0)
        }
        try await withAdmin(shutdownEnabled: true) { port, shutdowns in
            let wrongMethod = try curl(port, "/shutdown", ["-X", "GET"])
            #expect(wrongMethod.status == 405)
            let accepted = try curl(port, "/shutdown", ["-X", "POST"])
            #expect(accepted == Reply(status: 200, body: "shutdown\n"))
            #expect(shutdowns.value == 1)
        }
    }

    static let metrics = "# HELP request_total Total count of HTTP requests.\n# TYPE request_total counter\n"

    struct Reply: Equatable {
        var status: Int
        var body: String
    }

    func withAdmin(
        readiness: ProxyReadiness = ProxyReadiness(), logFilter: LogFilterStore = LogFilterStore(.proxyDefault),
        shutdownEnabled: Bool = false, _ body: (Int, Locked<Int>) async throws -> Void
    ) async throws {
        let shutdowns = Locked(0)
        let server = ProxyAdminServer(
            host: "127.0.0.1", port: 0, shutdownEnabled: shutdownEnabled, readiness: readiness, logFilter: logFilter,
            metrics: { Self.metrics }, onShutdown: { shutdowns.withLock { $0 += 1 } },
            logger: Logger(label: "test.admin"))
        try await whileServing({ try await server.run() }, bound: { try await server.waitUntilBound() }) { port in
            try await body(port, shutdowns)
        }
    }

    /// Runs curl against the server and returns the status and body (after the headers, with `--dump-header -`).
    func curl(_ port: Int, _ path: String, _ options: [String] = []) throws -> Reply {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        process.arguments =
            ["-sS", "--max-time", "10", "-o", "-", "-w", "\n%{http_code}"] + options
            + ["http://127.0.0.1:\(port)\(path)"]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        let split = try #require(text.lastIndex(of: "\n"))
        return Reply(status: Int(text[text.index(after: split)...]) ?? -1, body: String(text[..<split]))
    }
}
