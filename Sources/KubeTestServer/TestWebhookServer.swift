import Foundation
import KubeModel
import LinkerdTestSupport
import NIOHTTP1
import Synchronization

/// An HTTPS server for tests that plays an admission webhook (or any HTTPS endpoint): it serves a closure on
/// `127.0.0.1` and a free port, with a certificate from a `TestCertificateAuthority` (SANs IP 127.0.0.1 and DNS
/// localhost), and logs every request.
///
/// Put `clientConfig(path:)` in a MutatingWebhookConfiguration and `KubeTestServer` calls it for pod creates.
/// Client certificates are not requested. Call `shutdown()` when done.
public final class TestWebhookServer: Sendable {
    /// A request as received.
    public struct Request: Sendable, Hashable {
        public var method: String
        /// The request target, query included.
        public var uri: String
        /// Header values by lowercased name; repeated headers are joined with ", ".
        public var headers: [String: String]
        public var body: Data
    }

    /// What the closure answers.
    public struct Response: Sendable, Hashable {
        public var status: Int
        public var contentType: String?
        public var body: Data

        public init(status: Int = 200, contentType: String? = "application/json", body: Data = Data()) {
            self.status = status
            self.contentType = contentType
            self.body = body
        }
    }

    /// `https://127.0.0.1:PORT`.
    public let url: String
    public let port: Int
    /// Signs the serving certificate.
    public let certificateAuthority: TestCertificateAuthority
    private let http: HTTPServer
    private let log: RequestLog

    private init(http: HTTPServer, certificateAuthority: TestCertificateAuthority, log: RequestLog) {
        self.http = http
        self.certificateAuthority = certificateAuthority
        self.log = log
        port = http.port
        url = "https://127.0.0.1:\(http.port)"
    }

    /// Starts serving `handler`; with a nil `certificateAuthority`, a new one is minted. The serving certificate
    /// names `dnsNames` and `ipAddresses` (TLS clients accept an IP address SAN matching the connected address
    /// whatever host name they verify, so leave 127.0.0.1 out to test host-name checks).
    public static func start(
        certificateAuthority: TestCertificateAuthority? = nil, dnsNames: [String] = ["localhost"],
        ipAddresses: [String] = ["127.0.0.1"],
        handler: @escaping @Sendable (Request) async -> Response
    ) async throws -> TestWebhookServer {
        let authority = try certificateAuthority ?? TestCertificateAuthority(commonName: "TestWebhookServer CA")
        let serving = try authority.issue(
            commonName: "test-webhook", dnsNames: dnsNames, ipAddresses: ipAddresses, clientAuth: false)
        let tls = try HTTPServer.tlsContext(serving: serving, clientRoots: nil)
        let log = RequestLog()
        let http = try await HTTPServer.start(tls: tls, maxBodyBytes: 16 * 1024 * 1024) { request in
            var headers: [String: String] = [:]
            for (name, value) in request.headers {
                let key = name.lowercased()
                headers[key] = headers[key].map { "\($0), \(value)" } ?? value
            }
            let received = Request(
                method: request.method.rawValue, uri: request.uri, headers: headers, body: request.body)
            log.entries.withLock { $0.append(received) }
            let response = await handler(received)
            var responseHeaders = HTTPHeaders()
            if let contentType = response.contentType {
                responseHeaders.add(name: "Content-Type", value: contentType)
            }
            return .complete(
                status: HTTPResponseStatus(statusCode: response.status), headers: responseHeaders, body: response.body)
        }
        return TestWebhookServer(http: http, certificateAuthority: authority, log: log)
    }

    /// Starts an admission webhook: each POSTed AdmissionReview's request goes to `admit`, whose response is sent
    /// back in an AdmissionReview of the same `apiVersion`. A body that is not an AdmissionReview gets 400.
    public static func start(
        certificateAuthority: TestCertificateAuthority? = nil, dnsNames: [String] = ["localhost"],
        ipAddresses: [String] = ["127.0.0.1"],
        admit: @escaping @Sendable (AdmissionReview.Request) async -> AdmissionReview.Response
    ) async throws -> TestWebhookServer {
        try await start(certificateAuthority: certificateAuthority, dnsNames: dnsNames, ipAddresses: ipAddresses) {
            request in
            guard let review = try? JSONDecoder().decode(AdmissionReview.self, from: request.body),
                let admissionRequest = review.request
            else {
                return Response(status: 400, contentType: "text/plain", body: Data("not an AdmissionReview".utf8))
            }
            let answer = AdmissionReview(apiVersion: review.apiVersion, response: await admit(admissionRequest))
            return Response(body: (try? JSONEncoder().encode(answer)) ?? Data())
        }
    }

    /// An allowing response that applies `patch` (base64, type `JSONPatch`).
    public static func patch(_ patch: JSONPatch, for request: AdmissionReview.Request) -> AdmissionReview.Response {
        let encoded = (try? JSONEncoder().encode(patch)) ?? Data("[]".utf8)
        return AdmissionReview.Response(
            uid: request.uid, allowed: true, patch: encoded.base64EncodedString(), patchType: "JSONPatch")
    }

    /// The CA certificate PEM, base64-encoded: the value of a webhook's `clientConfig.caBundle`.
    public var caBundle: String {
        Data(certificateAuthority.certificatePEM.utf8).base64EncodedString()
    }

    /// A webhook client config calling `url` + `path`, trusting this server's CA.
    public func clientConfig(path: String = "/") -> MutatingWebhookConfiguration.ClientConfig {
        MutatingWebhookConfiguration.ClientConfig(url: url + path, caBundle: caBundle)
    }

    /// Every request received so far, in order.
    public var requests: [Request] {
        log.entries.withLock { $0 }
    }

    /// Closes every connection and stops listening.
    public func shutdown() async {
        await http.shutdown()
    }
}

/// The requests a `TestWebhookServer` received, shared with its handler closure.
private final class RequestLog: Sendable {
    let entries = Mutex<[TestWebhookServer.Request]>([])
}
