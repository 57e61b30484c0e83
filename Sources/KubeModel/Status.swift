/// `metav1.Status`: the API server's error body (and the object of a watch `ERROR` event).
public struct Status: Codable, Hashable, Sendable, Error {
    public var apiVersion: String?
    public var kind: String?
    /// `Success` or `Failure`.
    public var status: String?
    public var message: String?
    /// A machine-readable reason: `NotFound`, `AlreadyExists`, `Conflict`, `Invalid`, `Expired`, `Gone`, ...
    public var reason: String?
    public var details: Details?
    /// The HTTP status code.
    public var code: Int?

    public struct Details: Codable, Hashable, Sendable {
        public var name: String?
        public var group: String?
        public var kind: String?
        public var causes: [Cause]?
        public var retryAfterSeconds: Int?

        public init(
            name: String? = nil, group: String? = nil, kind: String? = nil, causes: [Cause]? = nil,
            retryAfterSeconds: Int? = nil
        ) {
            self.name = name
            self.group = group
            self.kind = kind
            self.causes = causes
            self.retryAfterSeconds = retryAfterSeconds
        }
    }

    public struct Cause: Codable, Hashable, Sendable {
        public var reason: String?
        public var message: String?
        public var field: String?

        public init(reason: String? = nil, message: String? = nil, field: String? = nil) {
            self.reason = reason
            self.message = message
            self.field = field
        }
    }

    public init(
        status: String, message: String? = nil, reason: String? = nil, code: Int? = nil, details: Details? = nil
    ) {
        self.apiVersion = "v1"
        self.kind = "Status"
        self.status = status
        self.message = message
        self.reason = reason
        self.code = code
        self.details = details
    }

    /// A `Failure` status as the API server writes it.
    public static func failure(code: Int, reason: String, message: String, details: Details? = nil) -> Status {
        Status(status: "Failure", message: message, reason: reason, code: code, details: details)
    }
}
