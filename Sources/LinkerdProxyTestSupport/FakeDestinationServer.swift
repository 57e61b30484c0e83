import GRPCCore
import GRPCNIOTransportHTTP2Posix
import LinkerdProxyAPI
import Synchronization

/// An in-process Destination service (`io.linkerd.proxy.destination.Destination`) on `127.0.0.1` and a free port,
/// driven by the test, after the upstream proxy's integration-test controller (reference proxy §8).
///
/// The test declares each call it expects, in order, with ``expectGet(path:)`` or ``expectProfile(path:)``, and
/// gets an ``ExpectedStream`` on which it queues what the server sends: messages, then an end
/// (``ExpectedStream/finish()``) or a failure status (``ExpectedStream/fail(_:message:)``), as a control plane that
/// restarts would. Messages queued before the call arrives are sent as soon as it does. Each expectation answers one
/// call: a client that reconnects needs a second expectation for the same path.
///
/// Every call is recorded (``calls``) with its path and context token. A call nothing was expected for is answered
/// with ``unexpectedCallCode`` and a message naming it, and is listed in ``unexpectedCalls`` so that a test can
/// assert there was none.
///
/// Not modelled: the real service's behaviour (path validation, Kubernetes watches, the initial full `add`, diffs,
/// de-duplication, queue overflow, `NotFound` for unknown services unless scripted); metadata and deadlines (`scheme`
/// is recorded, not checked); TLS client authentication (with a TLS transport security the server neither asks for
/// nor records a client certificate); HTTP/2 settings or connection-level faults (a test ends calls, not
/// connections).
public final class FakeDestinationServer: Sendable {
    /// The two RPCs of the service.
    public enum Method: String, Hashable, Sendable, CustomStringConvertible {
        case get = "Get"
        case getProfile = "GetProfile"

        public var description: String { rawValue }
    }

    /// One call the server received.
    public struct Call: Hashable, Sendable, CustomStringConvertible {
        public let method: Method
        public let path: String
        public let contextToken: String
        public let scheme: String
        /// Whether an expectation answered it.
        public let wasExpected: Bool

        public var description: String {
            "\(method) \(path.debugDescription) (context \(contextToken.debugDescription))"
        }
    }

    /// The port the server listens on, at `127.0.0.1`.
    public let port: Int
    /// The status code of the error unexpected calls get.
    public let unexpectedCallCode: RPCError.Code
    private let registry: Registry
    private let serving: Task<Void, any Error>
    private let server: GRPCServer<HTTP2ServerTransport.Posix>

    /// The calls and expectations, shared by the server object and its gRPC service.
    private final class Registry: Sendable {
        struct State {
            var calls: [Call] = []
            /// Unclaimed expectations by method and path, oldest first.
            var expectations: [Method: [String: [any ExpectationSink]]] = [:]
            /// Every expectation ever made, to close their calls at shutdown.
            var all: [any ExpectationSink] = []
        }

        let state = Mutex(State())
    }

    private init(
        port: Int, unexpectedCallCode: RPCError.Code, registry: Registry,
        server: GRPCServer<HTTP2ServerTransport.Posix>, serving: Task<Void, any Error>
    ) {
        self.port = port
        self.unexpectedCallCode = unexpectedCallCode
        self.registry = registry
        self.server = server
        self.serving = serving
    }

    /// `127.0.0.1:<port>`.
    public var address: String {
        "127.0.0.1:\(port)"
    }

    /// Starts a server on `127.0.0.1` and a free port.
    ///
    /// - Parameters:
    ///   - transportSecurity: plaintext by default, as upstream's test controller; pass a TLS configuration to test
    ///     a client's TLS.
    ///   - unexpectedCallCode: the status of unexpected calls. `failedPrecondition` by default, which a client
    ///     retries; `invalidArgument` makes upstream-like clients give up (a profile lookup then means "no
    ///     profile").
    /// - Throws: when the server cannot listen.
    public static func start(
        transportSecurity: HTTP2ServerTransport.Posix.TransportSecurity = .plaintext,
        unexpectedCallCode: RPCError.Code = .failedPrecondition
    ) async throws -> FakeDestinationServer {
        let registry = Registry()
        let service = Service(registry: registry, unexpectedCallCode: unexpectedCallCode)
        let server = GRPCServer(
            transport: .http2NIOPosix(
                address: .ipv4(host: "127.0.0.1", port: 0), transportSecurity: transportSecurity,
                config: .defaults),
            services: [service])
        let serving = Task { try await server.serve() }
        guard let address = try await server.listeningAddress, let port = address.ipv4?.port else {
            serving.cancel()
            throw RPCError(code: .internalError, message: "the fake destination server did not bind to IPv4")
        }
        let fake = FakeDestinationServer(
            port: port, unexpectedCallCode: unexpectedCallCode, registry: registry, server: server, serving: serving)
        return fake
    }

    /// Stops the server: every open call ends and the listener closes. Waits until the server has stopped.
    public func shutdown() async {
        let sinks = registry.state.withLock { $0.all }
        for sink in sinks {
            sink.close()
        }
        server.beginGracefulShutdown()
        serving.cancel()
        _ = await serving.result
    }

    // MARK: - Expectations

    /// Expects the next `Get` call for `path`; what the returned stream is given is sent on that call.
    public func expectGet(path: String) -> ExpectedStream<Io_Linkerd_Proxy_Destination_Update> {
        expect(.get, path: path)
    }

    /// Expects the next `GetProfile` call for `path`; what the returned stream is given is sent on that call.
    public func expectProfile(path: String) -> ExpectedStream<Io_Linkerd_Proxy_Destination_DestinationProfile> {
        expect(.getProfile, path: path)
    }

    private func expect<Message: Sendable>(_ method: Method, path: String) -> ExpectedStream<Message> {
        let stream = ExpectedStream<Message>(method: method, path: path)
        registry.state.withLock { state in
            state.expectations[method, default: [:]][path, default: []].append(stream)
            state.all.append(stream)
        }
        return stream
    }

    // MARK: - Records

    /// Every call received, in order.
    public var calls: [Call] {
        registry.state.withLock { $0.calls }
    }

    /// The calls nothing was expected for.
    public var unexpectedCalls: [Call] {
        calls.filter { !$0.wasExpected }
    }

    /// The expectations no call has claimed yet, as `(method, path)`.
    public var unclaimedExpectations: [(method: Method, path: String)] {
        registry.state.withLock { state in
            state.expectations.flatMap { method, byPath in
                byPath.flatMap { path, sinks in Array(repeating: (method: method, path: path), count: sinks.count) }
            }
        }
    }

    /// Waits (polling, in real time) until at least `count` calls have been received, and returns them all.
    ///
    /// - Throws: ``FakeDestinationServerTimeout`` after `timeout`.
    public func waitForCalls(_ count: Int, timeout: Duration = .seconds(10)) async throws -> [Call] {
        try await poll("\(count) calls to the fake destination server", timeout: timeout) {
            let calls = self.calls
            return calls.count >= count ? calls : nil
        }
    }

    // MARK: - Service

    /// The gRPC service: claims an expectation for each call and plays it.
    private struct Service: Io_Linkerd_Proxy_Destination_Destination.SimpleServiceProtocol {
        let registry: Registry
        let unexpectedCallCode: RPCError.Code

        func get(
            request: Io_Linkerd_Proxy_Destination_GetDestination,
            response: RPCWriter<Io_Linkerd_Proxy_Destination_Update>, context: ServerContext
        ) async throws {
            try await play(.get, request: request, response: response)
        }

        func getProfile(
            request: Io_Linkerd_Proxy_Destination_GetDestination,
            response: RPCWriter<Io_Linkerd_Proxy_Destination_DestinationProfile>, context: ServerContext
        ) async throws {
            try await play(.getProfile, request: request, response: response)
        }

        private func play<Message: Sendable>(
            _ method: Method, request: Io_Linkerd_Proxy_Destination_GetDestination, response: RPCWriter<Message>
        ) async throws {
            let (call, claimed) = registry.state.withLock { state in
                let claimed = state.expectations[method]?[request.path]?.first
                if claimed != nil {
                    state.expectations[method]?[request.path]?.removeFirst()
                    if state.expectations[method]?[request.path]?.isEmpty == true {
                        state.expectations[method]?[request.path] = nil
                    }
                }
                let call = Call(
                    method: method, path: request.path, contextToken: request.contextToken, scheme: request.scheme,
                    wasExpected: claimed != nil)
                state.calls.append(call)
                return (call, claimed)
            }
            guard let stream = claimed as? ExpectedStream<Message> else {
                throw RPCError(
                    code: unexpectedCallCode,
                    message: "FakeDestinationServer: unexpected \(call); expect it with "
                        + (method == .get ? "expectGet(path:)" : "expectProfile(path:)"))
            }
            try await stream.play(call: call, on: response)
        }
    }
}

/// Thrown by the fake server's waits when what they wait for does not happen in time.
public struct FakeDestinationServerTimeout: Error, CustomStringConvertible {
    public let condition: String
    public let timeout: Duration

    public var description: String { "timed out after \(timeout) waiting for \(condition)" }
}

/// Polls `check` every few milliseconds of real time until it returns a value.
func poll<Value>(
    _ condition: String, timeout: Duration, _ check: () -> Value?
) async throws -> Value {
    let clock = ContinuousClock()
    let deadline = clock.now.advanced(by: timeout)
    while true {
        if let value = check() { return value }
        guard clock.now < deadline else { throw FakeDestinationServerTimeout(condition: condition, timeout: timeout) }
        try await Task.sleep(for: .milliseconds(5))
    }
}

/// Runs `body` with a started ``FakeDestinationServer``, then shuts it down, whether `body` returns or throws.
public func withFakeDestinationServer<Result: Sendable>(
    transportSecurity: HTTP2ServerTransport.Posix.TransportSecurity = .plaintext,
    unexpectedCallCode: RPCError.Code = .failedPrecondition,
    _ body: (FakeDestinationServer) async throws -> Result
) async throws -> Result {
    let server = try await FakeDestinationServer.start(
        transportSecurity: transportSecurity, unexpectedCallCode: unexpectedCallCode)
    let result: Result
    do {
        result = try await body(server)
    } catch {
        await server.shutdown()
        throw error
    }
    await server.shutdown()
    return result
}
