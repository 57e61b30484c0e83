import LinkerdProxyCore
import Testing

@Suite("Admin server routes")
struct AdminRoutesTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var method: String
        var path: String
        var loopback = true
        var ready = true
        var shutdownEnabled = false
        var expected: AdminRoute

        var testDescription: String { "\(method) \(path)\(loopback ? "" : " from afar")" }
    }

    static let cases: [Case] = [
        Case(method: "GET", path: "/live", loopback: false, expected: .answer(status: 200, body: "live\n")),
        Case(method: "HEAD", path: "/live", expected: .answer(status: 200, body: "live\n")),
        Case(method: "GET", path: "/ready", loopback: false, expected: .answer(status: 200, body: "ready\n")),
        Case(method: "GET", path: "/ready", ready: false, expected: .answer(status: 503, body: "not ready\n")),
        Case(method: "GET", path: "/metrics", loopback: false, expected: .metrics),
        Case(method: "GET", path: "/proxy-log-level", expected: .readLogFilter),
        Case(method: "PUT", path: "/proxy-log-level", expected: .replaceLogFilter),
        Case(method: "GET", path: "/proxy-log-level", loopback: false, expected: AdminRoute.localhostOnly),
        Case(method: "PUT", path: "/proxy-log-level", loopback: false, expected: AdminRoute.localhostOnly),
        Case(
            method: "POST", path: "/proxy-log-level",
            expected: .answer(status: 405, body: "", allow: "GET, PUT")),
        Case(
            method: "POST", path: "/shutdown",
            expected: .answer(status: 404, body: "shutdown endpoint is not enabled\n")),
        Case(method: "POST", path: "/shutdown", shutdownEnabled: true, expected: .shutdown),
        Case(
            method: "POST", path: "/shutdown", loopback: false, shutdownEnabled: true,
            expected: AdminRoute.localhostOnly),
        Case(
            method: "GET", path: "/shutdown", shutdownEnabled: true,
            expected: .answer(status: 405, body: "", allow: "POST")),
        Case(method: "GET", path: "/env.json", expected: .answer(status: 404, body: "")),
        Case(method: "GET", path: "/", expected: .answer(status: 404, body: "")),
        Case(method: "GET", path: "/live/", expected: .answer(status: 404, body: "")),
    ]

    @Test("each request gets upstream's answer", arguments: cases)
    func route(_ testCase: Case) {
        let route = AdminRoute.decide(
            method: testCase.method, path: testCase.path, isFromLoopback: testCase.loopback, isReady: testCase.ready,
            shutdownEnabled: testCase.shutdownEnabled)
        #expect(route == testCase.expected)
    }
}
