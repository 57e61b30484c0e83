/// What the proxy's admin server (port 4191) does with a request, decided from its method, path and client alone
/// (proxy.md §6.1): a fixed answer, or an action the server performs.
///
/// `/proxy-log-level` and `/shutdown` change the proxy, so they are refused (403) to anything but a loopback
/// client; `/shutdown` also needs `LINKERD2_PROXY_SHUTDOWN_ENDPOINT_ENABLED`. Not served: `/env.json` (it would
/// publish every environment variable, tokens' paths and trust anchors included), `/logs.json` and
/// `/debug/pprof`, which upstream builds only with optional features.
public enum AdminRoute: Hashable, Sendable {
    /// Answer with this status, `text/plain` body and, for 405, the allowed methods.
    case answer(status: Int, body: String, allow: String? = nil)
    /// The Prometheus exposition.
    case metrics
    /// The current log filter.
    case readLogFilter
    /// Replace the log filter with the request body: 204, or 400 when it does not parse.
    case replaceLogFilter
    /// Start a graceful shutdown and answer 200 `shutdown\n`.
    case shutdown

    /// The answer to a client that is not on loopback, for the endpoints that change the proxy.
    public static let localhostOnly = AdminRoute.answer(
        status: 403, body: "Requests are only permitted from localhost.")

    /// Decides on a request.
    ///
    /// - Parameters:
    ///   - method: the request method, such as `GET`.
    ///   - path: the request target without its query string.
    ///   - isFromLoopback: whether the client's address is a loopback address (`127.0.0.0/8`, `::1`, or
    ///     `::ffff:127.0.0.0/104`).
    ///   - isReady: whether identity is certified (readiness never goes back).
    ///   - shutdownEnabled: `LINKERD2_PROXY_SHUTDOWN_ENDPOINT_ENABLED`.
    public static func decide(
        method: String, path: some StringProtocol, isFromLoopback: Bool, isReady: Bool, shutdownEnabled: Bool
    ) -> AdminRoute {
        switch path {
        case "/live":
            return .answer(status: 200, body: "live\n")
        case "/ready":
            return isReady ? .answer(status: 200, body: "ready\n") : .answer(status: 503, body: "not ready\n")
        case "/metrics":
            return .metrics
        case "/proxy-log-level":
            guard isFromLoopback else { return localhostOnly }
            switch method {
            case "GET": return .readLogFilter
            case "PUT": return .replaceLogFilter
            default: return .answer(status: 405, body: "", allow: "GET, PUT")
            }
        case "/shutdown":
            guard method == "POST" else { return .answer(status: 405, body: "", allow: "POST") }
            guard isFromLoopback else { return localhostOnly }
            guard shutdownEnabled else { return .answer(status: 404, body: "shutdown endpoint is not enabled\n") }
            return .shutdown
        default:
            return .answer(status: 404, body: "")
        }
    }
}
