import AsyncHTTPClient
import Foundation
import KubeModel
import KubeTestServer
import LinkerdTestSupport
import NIOCore
import NIOHTTP1
import NIOSSL

/// One complete HTTP response.
struct Reply: Sendable {
    var status: Int
    var headers: HTTPHeaders
    var body: Data

    /// The body as JSON; `.null` when it is not JSON.
    var json: JSONValue {
        (try? JSONValue(json: body)) ?? .null
    }

    /// `message` of a Status body.
    var message: String {
        json["message"]?.stringValue ?? ""
    }
}

/// Raw HTTP(S) against a `KubeTestServer`, through AsyncHTTPClient, so tests see exact status codes and bodies.
struct RawClient: Sendable {
    let baseURL: String
    let tls: TLSConfiguration
    var token: String?

    /// Trusts the server's CA; presents `certificate` as the client certificate when given.
    init(_ server: KubeTestServer, token: String? = nil, certificate: IssuedCertificate? = nil) throws {
        baseURL = server.baseURL
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates([try NIOSSLCertificate(bytes: Array(server.caCertificatePEM.utf8), format: .pem)]
        )
        if let certificate {
            tls.certificateChain = [
                .certificate(try NIOSSLCertificate(bytes: Array(certificate.certificatePEM.utf8), format: .pem))
            ]
            tls.privateKey = .privateKey(
                try NIOSSLPrivateKey(bytes: Array(certificate.privateKeyPEM.utf8), format: .pem))
        }
        self.tls = tls
        self.token = token
    }

    func request(_ method: HTTPMethod, _ path: String, body: Data?, contentType: String?) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        request.tlsConfiguration = tls
        if let token {
            request.headers.add(name: "Authorization", value: "Bearer \(token)")
        }
        if let body {
            request.body = .bytes(ByteBuffer(bytes: body))
            if let contentType {
                request.headers.add(name: "Content-Type", value: contentType)
            }
        }
        return request
    }

    func send(_ method: HTTPMethod, _ path: String, body: Data? = nil, contentType: String? = "application/json")
        async throws -> Reply
    {
        let response = try await HTTPClient.shared.execute(
            request(method, path, body: body, contentType: contentType), timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 16 * 1024 * 1024)
        return Reply(status: Int(response.status.code), headers: response.headers, body: Data(bytes.readableBytesView))
    }

    func send(_ method: HTTPMethod, _ path: String, json: JSONValue, contentType: String = "application/json")
        async throws -> Reply
    {
        try await send(method, path, body: try json.jsonData(), contentType: contentType)
    }

    func get(_ path: String) async throws -> Reply {
        try await send(.GET, path)
    }

    /// Opens a watch (or any streamed GET) and returns its head and a line reader.
    func watch(_ path: String) async throws -> (Reply, WatchReader) {
        let response = try await HTTPClient.shared.execute(
            request(.GET, path, body: nil, contentType: nil), timeout: .seconds(30))
        let head = Reply(status: Int(response.status.code), headers: response.headers, body: Data())
        return (head, WatchReader(iterator: response.body.makeAsyncIterator()))
    }
}

/// Reads a watch body line by line, each line one JSON event.
struct WatchReader {
    var iterator: HTTPClientResponse.Body.AsyncIterator
    var buffer: [UInt8] = []

    /// The next event, or nil when the body ended cleanly; throws when the connection broke.
    mutating func next() async throws -> JSONValue? {
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = Data(buffer[..<newline])
                buffer.removeSubrange(...newline)
                return try JSONValue(json: line)
            }
            guard let chunk = try await iterator.next() else {
                return nil
            }
            buffer += chunk.readableBytesView
        }
    }

    /// `"TYPE name"` of the next event (`"TYPE"` alone for bookmarks and errors), or nil at the end.
    mutating func nextSummary() async throws -> String? {
        guard let event = try await next() else { return nil }
        return summary(event)
    }
}

/// `"TYPE name"`, or `"TYPE"` when the object has no name.
func summary(_ event: JSONValue) -> String {
    let type = event["type"]?.stringValue ?? "?"
    let name = event.value(atPath: "object.metadata.name")?.stringValue
    return name.map { "\(type) \($0)" } ?? type
}

/// Object metadata with a name and, when given, a namespace and labels.
private func metadata(_ name: String, namespace: String?, labels: [String: String]) -> JSONValue {
    var metadata: [String: JSONValue] = ["name": .string(name)]
    if let namespace {
        metadata["namespace"] = .string(namespace)
    }
    if !labels.isEmpty {
        metadata["labels"] = .object(labels.mapValues(JSONValue.string))
    }
    return .object(metadata)
}

/// A ConfigMap body.
func configMap(_ name: String, namespace: String? = nil, labels: [String: String] = [:], data: [String: String] = [:])
    -> JSONValue
{
    [
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata(name, namespace: namespace, labels: labels),
        "data": .object(data.mapValues(JSONValue.string)),
    ]
}

/// A Pod body with one container.
func pod(_ name: String, namespace: String? = nil, labels: [String: String] = [:]) -> JSONValue {
    [
        "apiVersion": "v1", "kind": "Pod", "metadata": metadata(name, namespace: namespace, labels: labels),
        "spec": ["containers": [["name": "app", "image": "app:1"]]],
    ]
}

/// Starts a server, runs `body`, and shuts the server down whatever happens.
func withServer(
    _ configuration: KubeTestServer.Configuration = .init(),
    _ body: (KubeTestServer, RawClient) async throws -> Void
) async throws {
    let server = try await KubeTestServer.start(configuration)
    do {
        try await body(server, try RawClient(server))
    } catch {
        try? await server.shutdown()
        throw error
    }
    try await server.shutdown()
}

/// Polls `condition` every 10 ms for up to 5 seconds.
func waitUntil(_ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(5)
    while !condition() {
        guard ContinuousClock.now < deadline else {
            throw WaitTimedOut()
        }
        try await Task.sleep(for: .milliseconds(10))
    }
}

struct WaitTimedOut: Error {}
