import KubeModel

/// Everything a `KubeClient` needs to reach and authenticate to one Kubernetes API server.
///
/// Build one with ``inCluster(environment:serviceAccountDirectory:)`` inside a pod,
/// ``fromKubeconfig(path:context:environment:)`` outside one, ``automatic(environment:serviceAccountDirectory:)`` to
/// pick between the two, or field by field in code. The value is only checked when a `KubeClient` is created from it.
public struct KubeClientConfiguration: Hashable, Sendable {
    /// How requests prove who the client is, in addition to any client certificate.
    public enum Authentication: Hashable, Sendable {
        /// No `Authorization` header.
        case none
        /// A fixed bearer token.
        case bearerToken(String)
        /// A bearer token read from a file (a projected service account token). The file is re-read when the cached
        /// token is older than ``KubeClientConfiguration/tokenFileCacheLifetime``, and at once after a `401`, so a
        /// rotated token is picked up without a restart.
        case bearerTokenFile(path: String)
    }

    /// The API server's base URL, `https://host:port` (or `http://` for a plain-text test server). A path, such as a
    /// proxy's prefix, is kept and request paths are appended to it; a trailing slash is ignored.
    public var server: String
    /// PEM certificates trusted to sign the server's certificate. Nil trusts the system's roots.
    public var certificateAuthorityPEM: [UInt8]?
    /// Accept any server certificate. Only for throw-away clusters: it makes the connection open to interception.
    public var insecureSkipTLSVerify: Bool
    /// The PEM client certificate chain presented to the server; requires ``clientKeyPEM``.
    public var clientCertificatePEM: [UInt8]?
    /// The PEM private key of ``clientCertificatePEM``.
    public var clientKeyPEM: [UInt8]?
    public var authentication: Authentication
    /// The namespace of the kubeconfig context or of the pod; callers use it when they have no other namespace.
    /// The client itself never substitutes it for a nil namespace.
    public var namespace: String
    /// The `User-Agent` header of every request.
    public var userAgent: String
    /// The longest a request other than a watch may take, from sending it to having read the whole response.
    /// A watch gets this long to receive its response head.
    public var requestTimeout: Duration
    /// A watch that receives no bytes for this long is closed and its stream throws `KubeError` code `.timeout`;
    /// this is how a stalled connection is detected. Choose it longer than the server's bookmark interval.
    public var watchIdleTimeout: Duration
    /// How long a token read from a ``Authentication/bearerTokenFile(path:)`` is used before the file is read again.
    public var tokenFileCacheLifetime: Duration
    /// The largest response body accepted; a larger one fails the request with code `.decoding`.
    public var maximumResponseBodySize: Int
    /// The largest single watch event accepted; a longer line fails the watch with code `.decoding`.
    public var maximumWatchEventSize: Int
    /// The most decoded events a watch holds for a consumer that has not taken them yet. When a consumer falls
    /// this far behind, the watch is closed after the buffered events (its stream throws `.transport`), so the
    /// consumer resumes from the last event it took instead of the client buffering without bound.
    public var maximumBufferedWatchEvents: Int
    /// The number of HTTP/1.1 connections kept to the server. Every open watch holds one, so this should exceed the
    /// number of concurrent watches.
    public var maximumConnections: Int

    /// A configuration with the given connection settings and the default limits.
    public init(
        server: String,
        certificateAuthorityPEM: [UInt8]? = nil,
        insecureSkipTLSVerify: Bool = false,
        clientCertificatePEM: [UInt8]? = nil,
        clientKeyPEM: [UInt8]? = nil,
        authentication: Authentication = .none,
        namespace: String = "default",
        userAgent: String = "linkerd-swift",
        requestTimeout: Duration = .seconds(30),
        watchIdleTimeout: Duration = .seconds(300),
        tokenFileCacheLifetime: Duration = .seconds(60),
        maximumResponseBodySize: Int = 64 * 1024 * 1024,
        maximumWatchEventSize: Int = 16 * 1024 * 1024,
        maximumBufferedWatchEvents: Int = 10_000,
        maximumConnections: Int = 64
    ) {
        self.server = server
        self.certificateAuthorityPEM = certificateAuthorityPEM
        self.insecureSkipTLSVerify = insecureSkipTLSVerify
        self.clientCertificatePEM = clientCertificatePEM
        self.clientKeyPEM = clientKeyPEM
        self.authentication = authentication
        self.namespace = namespace
        self.userAgent = userAgent
        self.requestTimeout = requestTimeout
        self.watchIdleTimeout = watchIdleTimeout
        self.tokenFileCacheLifetime = tokenFileCacheLifetime
        self.maximumResponseBodySize = maximumResponseBodySize
        self.maximumWatchEventSize = maximumWatchEventSize
        self.maximumBufferedWatchEvents = maximumBufferedWatchEvents
        self.maximumConnections = maximumConnections
    }
}
