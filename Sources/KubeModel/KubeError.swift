/// An error from the Kubernetes API or from talking to it, classified so callers can decide to retry.
public struct KubeError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: Hashable, Sendable {
        /// 404: the object or resource does not exist.
        case notFound
        /// 409 with reason `AlreadyExists`: create of an existing name.
        case alreadyExists
        /// 409: a stale `resourceVersion` (optimistic concurrency) or another conflict.
        case conflict
        /// 403: authenticated, but not allowed.
        case forbidden
        /// 401: the credentials were rejected.
        case unauthorized
        /// 410: the requested resourceVersion is too old; re-list.
        case gone
        /// 429: throttled; see `retryAfter`.
        case tooManyRequests
        /// 422: the object failed validation.
        case invalid
        /// 400: a malformed request.
        case badRequest
        /// 5xx, or another unexpected status code.
        case server(statusCode: Int)
        /// The server could not be reached or the connection broke.
        case transport
        /// The server answered something that is not the expected JSON.
        case decoding
        /// The request could not be sent: bad configuration or arguments.
        case configuration
        /// The server stopped sending anything within the allowed time.
        case timeout
    }

    public var code: Code
    public var message: String
    /// The server's `Status` body, when there was one.
    public var status: Status?
    /// From a `Retry-After` header or `details.retryAfterSeconds`.
    public var retryAfter: Duration?

    public init(code: Code, message: String, status: Status? = nil, retryAfter: Duration? = nil) {
        self.code = code
        self.message = message
        self.status = status
        self.retryAfter = retryAfter
    }

    /// Classifies an HTTP failure the way client-go does: by status code, then by the Status reason.
    public init(statusCode: Int, status: Status?, retryAfter: Duration? = nil) {
        let code: Code
        switch statusCode {
        case 400: code = .badRequest
        case 401: code = .unauthorized
        case 403: code = .forbidden
        case 404: code = .notFound
        case 409: code = status?.reason == "AlreadyExists" ? .alreadyExists : .conflict
        case 410: code = .gone
        case 422: code = .invalid
        case 429: code = .tooManyRequests
        case 504 where status?.reason == "Timeout": code = .timeout
        default: code = .server(statusCode: statusCode)
        }
        let retry = retryAfter ?? status?.details?.retryAfterSeconds.map { Duration.seconds($0) }
        self.init(
            code: code,
            message: status?.message ?? "the API server answered HTTP \(statusCode)",
            status: status,
            retryAfter: retry
        )
    }

    /// Whether retrying the same request later can succeed.
    public var isRetryable: Bool {
        switch code {
        case .transport, .timeout, .tooManyRequests, .server: true
        default: false
        }
    }

    public var description: String {
        "Kubernetes API error (\(code)): \(message)"
    }
}
