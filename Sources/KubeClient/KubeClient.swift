import AsyncHTTPClient
import Foundation
import KubeModel
import LinkerdCore
import Logging
import NIOCore
import NIOHTTP1

/// `KubeAPI` over HTTP(S): JSON requests to a Kubernetes API server with AsyncHTTPClient.
///
/// Every method throws `KubeError` (or `CancellationError` when the calling task is cancelled): the server's `Status`
/// for a non-2xx answer, `.transport` or `.timeout` when the server cannot be reached or stops answering, and
/// `.decoding` when the answer is not the expected JSON.
///
/// The client owns its connection pool: call ``shutdown()`` exactly once when done with it.
public final class KubeClient: KubeAPI {
    /// The configuration the client was created with.
    public let configuration: KubeClientConfiguration
    let httpClient: HTTPClient
    /// The server URL without a trailing slash; request paths are appended to it.
    private let baseURL: String
    let tokens: BearerTokenSource
    let logger: Logger

    /// A client for the server of `configuration`.
    ///
    /// - Parameters:
    ///   - logger: receives a debug-level record of every request.
    ///   - eventLoopGroup: runs the connections; the default is the process-wide shared group.
    /// - Throws: `KubeError` code `.configuration` when the server URL is not an `http` or `https` URL, or the
    ///   certificates and key are not valid PEM.
    public init(
        configuration: KubeClientConfiguration,
        logger: Logger = Logger(label: "linkerd.kube-client"),
        eventLoopGroup: any EventLoopGroup = HTTPClient.defaultEventLoopGroup
    ) throws(KubeError) {
        self.baseURL = try Self.validatedBaseURL(configuration.server)
        var httpConfiguration = HTTPClient.Configuration(
            tlsConfiguration: try TLSMaterial.clientConfiguration(for: configuration),
            redirectConfiguration: .disallow,
            timeout: HTTPClient.Configuration.Timeout(connect: .timeAmount(configuration.requestTimeout)),
            connectionPool: HTTPClient.Configuration.ConnectionPool(
                idleTimeout: .seconds(60),
                concurrentHTTP1ConnectionsPerHostSoftLimit: max(1, configuration.maximumConnections)),
            decompression: .disabled
        )
        // The caller (a watcher's backoff, a controller's requeue) decides when to try again; failing at once keeps
        // an unreachable server from looking like a slow one.
        httpConfiguration.connectionPool.retryConnectionEstablishment = false
        self.configuration = configuration
        self.httpClient = HTTPClient(
            eventLoopGroup: eventLoopGroup, configuration: httpConfiguration, backgroundActivityLogger: logger)
        self.tokens = BearerTokenSource(
            configuration.authentication, cacheLifetime: configuration.tokenFileCacheLifetime)
        self.logger = logger
    }

    /// Closes every connection, failing requests and watches still running. Call it exactly once.
    public func shutdown() async throws {
        try await httpClient.shutdown()
    }

    // MARK: - KubeAPI

    public func get<T: Decodable & Sendable>(
        _ resource: ResourceType, namespace: String?, name: String, subresource: String?, as type: T.Type
    ) async throws -> T {
        let target = try RequestTarget.object(resource, namespace: namespace, name: name, subresource: subresource)
        let response = try await send(.GET, target)
        return try decode(T.self, from: response, operation: "GET \(target.path)")
    }

    public func list<T: Codable & Sendable>(
        _ resource: ResourceType, namespace: String?, options: ListOptions, as type: T.Type
    ) async throws -> ObjectList<T> {
        let target = RequestTarget.list(resource, namespace: namespace, options: options)
        let response = try await send(.GET, target)
        return try decode(ObjectList<T>.self, from: response, operation: "GET \(target.path)")
    }

    public func create<T: Codable & Sendable>(
        _ resource: ResourceType, namespace: String?, object: T, subresource: String?
    ) async throws -> T {
        let body = try encode(object)
        let name = subresource == nil ? nil : Self.objectName(in: body)
        let target = try RequestTarget.creation(resource, namespace: namespace, name: name, subresource: subresource)
        let response = try await send(.POST, target, body: body, contentType: "application/json")
        return try decode(T.self, from: response, operation: "POST \(target.path)")
    }

    public func update<T: Codable & Sendable>(
        _ resource: ResourceType, namespace: String?, name: String, object: T, subresource: String?
    ) async throws -> T {
        let target = try RequestTarget.object(resource, namespace: namespace, name: name, subresource: subresource)
        let response = try await send(.PUT, target, body: try encode(object), contentType: "application/json")
        return try decode(T.self, from: response, operation: "PUT \(target.path)")
    }

    public func patch<T: Decodable & Sendable>(
        _ resource: ResourceType, namespace: String?, name: String, patch: Patch, subresource: String?,
        as type: T.Type
    ) async throws -> T {
        let target = try RequestTarget.object(resource, namespace: namespace, name: name, subresource: subresource)
        let body: ByteBuffer
        switch patch {
        case .json(let operations): body = try encode(operations)
        case .merge(let document): body = try encode(document)
        }
        let response = try await send(.PATCH, target, body: body, contentType: patch.contentType)
        return try decode(T.self, from: response, operation: "PATCH \(target.path)")
    }

    public func delete(_ resource: ResourceType, namespace: String?, name: String) async throws {
        let target = try RequestTarget.object(resource, namespace: namespace, name: name)
        _ = try await send(.DELETE, target)
    }

    // MARK: - Requests

    /// A response read whole: its status, headers and body.
    struct Response: Sendable {
        var status: Int
        var headers: HTTPHeaders
        var body: ByteBuffer
    }

    /// Sends a request and reads the whole response, within the request timeout. A `401` with a token file re-reads
    /// the file and, when the token changed, sends the request once more.
    ///
    /// - Throws: `KubeError` for a non-2xx status, a transport failure, a time-out, or an oversized body.
    private func send(
        _ method: HTTPMethod, _ target: RequestTarget, body: ByteBuffer? = nil, contentType: String? = nil
    ) async throws -> Response {
        let operation = "\(method) \(target.path)"
        let started = ContinuousClock.now
        let response: Response
        do {
            response = try await withTimeout(configuration.requestTimeout, operation: operation) {
                let token = try self.tokens.token()
                let first = try await self.execute(method, target, body: body, contentType: contentType, token: token)
                guard first.status == 401, self.tokens.isRefreshable, let fresh = try self.tokens.refresh(),
                    fresh != token
                else {
                    return first
                }
                self.logger.debug(
                    "Kubernetes API rejected the token; retrying with the re-read token file",
                    metadata: ["operation": "\(operation)"])
                return try await self.execute(method, target, body: body, contentType: contentType, token: fresh)
            }
        } catch {
            let failure = TransportFailure.classify(error, operation: operation)
            logger.debug(
                "Kubernetes API request failed",
                metadata: [
                    "operation": "\(operation)", "error": "\(failure)", "duration": "\(started.duration(to: .now))",
                ])
            throw failure
        }
        logger.debug(
            "Kubernetes API request",
            metadata: [
                "operation": "\(operation)", "status": "\(response.status)",
                "duration": "\(started.duration(to: .now))",
            ])
        guard (200..<300).contains(response.status) else {
            throw Self.statusError(
                status: response.status, headers: response.headers, body: response.body, operation: operation)
        }
        return response
    }

    /// One HTTP exchange, with the body read up to the size limit.
    private func execute(
        _ method: HTTPMethod, _ target: RequestTarget, body: ByteBuffer?, contentType: String?, token: String?
    ) async throws -> Response {
        let request = makeRequest(method, target, body: body, contentType: contentType, token: token)
        let response = try await httpClient.execute(
            request, deadline: .now() + .timeAmount(configuration.requestTimeout))
        let bytes = try await response.body.collect(upTo: configuration.maximumResponseBodySize)
        return Response(status: Int(response.status.code), headers: response.headers, body: bytes)
    }

    /// The HTTP request for `target` with the standard headers.
    func makeRequest(
        _ method: HTTPMethod, _ target: RequestTarget, body: ByteBuffer? = nil, contentType: String? = nil,
        token: String?
    ) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: baseURL + target.pathAndQuery)
        request.method = method
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "User-Agent", value: configuration.userAgent)
        if let token {
            request.headers.add(name: "Authorization", value: "Bearer \(token)")
        }
        if let body {
            request.headers.add(name: "Content-Type", value: contentType ?? "application/json")
            request.body = .bytes(body)
        }
        return request
    }

    /// Runs `operation`, throwing `KubeError` code `.timeout` if it takes longer than `timeout`.
    private func withTimeout<Result: Sendable>(
        _ timeout: Duration, operation: String, _ body: @escaping @Sendable () async throws -> Result
    ) async throws -> Result {
        try await withThrowingTaskGroup(of: Result.self) { group in
            group.addTask(operation: body)
            group.addTask {
                try await Task.sleep(for: timeout)
                throw KubeError(code: .timeout, message: "\(operation): no complete response within \(timeout)")
            }
            defer { group.cancelAll() }
            guard let result = try await group.next() else {
                throw CancellationError()
            }
            return result
        }
    }

    // MARK: - Bodies

    private func encode(_ value: some Encodable) throws(KubeError) -> ByteBuffer {
        do {
            return ByteBuffer(bytes: try JSONEncoder().encode(value))
        } catch {
            throw KubeError(code: .configuration, message: "the request body cannot be encoded as JSON: \(error)")
        }
    }

    private func decode<T: Decodable>(
        _ type: T.Type, from response: Response, operation: String
    ) throws(KubeError) -> T {
        let bytes = response.body.readableBytesView
        do {
            return try JSONDecoder().decode(T.self, from: Data(bytes))
        } catch {
            throw KubeError(
                code: .decoding,
                message: "\(operation): the response is not a valid \(T.self): \(DecodingFailure.describe(error)); "
                    + "the body starts with \(TransportFailure.snippet(bytes))")
        }
    }

    /// The `KubeError` for a non-2xx answer: classified by status code and the `Status` body when there is one, with
    /// `retryAfter` from the `Retry-After` header (whole seconds) or the Status details.
    static func statusError(status code: Int, headers: HTTPHeaders, body: ByteBuffer, operation: String) -> KubeError {
        let bytes = body.readableBytesView
        let status = (try? JSONDecoder().decode(Status.self, from: Data(bytes))).flatMap { status in
            status.kind == "Status" || status.message != nil || status.reason != nil ? status : nil
        }
        let retryAfter = headers.first(name: "Retry-After")
            .flatMap { Int($0.trimmingWhitespace) }
            .map { Duration.seconds($0) }
        var error = KubeError(statusCode: code, status: status, retryAfter: retryAfter)
        if let message = status?.message {
            error.message = "\(operation): \(message)"
        } else {
            error.message = "\(operation): the API server answered HTTP \(code) with \(TransportFailure.snippet(bytes))"
        }
        return error
    }

    /// `metadata.name` of an encoded object, if it has one.
    private static func objectName(in body: ByteBuffer) -> String? {
        struct Named: Decodable {
            struct Metadata: Decodable {
                var name: String?
            }

            var metadata: Metadata?
        }
        return (try? JSONDecoder().decode(Named.self, from: Data(body.readableBytesView)))?.metadata?.name
    }

    /// `server` without a trailing slash, once checked to be an absolute `http` or `https` URL without a query.
    private static func validatedBaseURL(_ server: String) throws(KubeError) -> String {
        guard let components = URLComponents(string: server), let scheme = components.scheme?.lowercased(),
            scheme == "https" || scheme == "http", let host = components.host, !host.isEmpty,
            components.query == nil, components.fragment == nil
        else {
            throw KubeError(
                code: .configuration, message: "the server \"\(server)\" is not an http:// or https:// URL")
        }
        var base = server
        while base.hasSuffix("/") {
            base.removeLast()
        }
        return base
    }
}

extension TimeAmount {
    /// `duration` rounded down to whole nanoseconds.
    static func timeAmount(_ duration: Duration) -> TimeAmount {
        let (seconds, attoseconds) = duration.components
        return .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
