extension KubeTestServer {
    /// A misbehaviour injected with `injectFault`, for testing how clients recover.
    public enum Fault: Sendable, Hashable {
        /// An error `Status` with this code, reason and message; with `retryAfterSeconds`, also a `Retry-After`
        /// header and `details.retryAfterSeconds` (as the real server sends with 429 and some 5xx).
        case status(code: Int, reason: String, message: String, retryAfterSeconds: Int? = nil)
        /// 200 with `Content-Type: application/json` and a body that is not JSON.
        case garbageBody
        /// The connection is closed without any response.
        case closeConnection
        /// The request waits this long, then is handled normally.
        case delay(Duration)
    }
}

/// An injected fault and the requests it still applies to.
struct FaultRule: Sendable {
    var fault: KubeTestServer.Fault
    /// nil matches any method; compared case-insensitively.
    var method: String?
    /// nil matches any path.
    var pathPrefix: String?
    var remaining: Int

    func matches(method: String, path: String) -> Bool {
        (self.method.map { $0.uppercased() == method.uppercased() } ?? true)
            && (pathPrefix.map { path.hasPrefix($0) } ?? true)
    }
}
