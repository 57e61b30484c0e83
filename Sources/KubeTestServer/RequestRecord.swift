extension KubeTestServer {
    /// One request the server received (including rejected and fault-injected ones), as logged in `requestLog`.
    public struct RequestRecord: Sendable, Hashable {
        public var method: String
        /// The path without the query.
        public var path: String
        /// The percent-decoded query parameters.
        public var query: [String: String]
        public var contentType: String?
        /// The authenticated user name; nil for anonymous and rejected requests.
        public var user: String?

        public init(method: String, path: String, query: [String: String], contentType: String?, user: String?) {
            self.method = method
            self.path = path
            self.query = query
            self.contentType = contentType
            self.user = user
        }
    }
}
