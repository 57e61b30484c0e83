import Foundation
import LinkerdProxy
import LinkerdProxyCore
import LinkerdTestSupport
import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOPosix
import Testing

/// A request as the test application received it.
struct SeenRequest: Sendable {
    var head: HTTPRequestHead
    var bodyBytes: Int
    var trailers: HTTPHeaders?
}

/// An application speaking HTTP/1.x and HTTP/2 (prior knowledge) on one loopback port, which records every request
/// it receives and answers by path:
/// - `/grpc`: a gRPC response with one empty message and trailers `grpc-status: 7`, `grpc-message: denied`;
/// - `/eof`: HTTP/1 only, a body delimited by the end of the connection (no length, no chunking);
/// - `/reset`: HTTP/2 only, the stream reset with `INTERNAL_ERROR` instead of an answer;
/// - `/slow`: the ordinary answer, 500 ms late; `/hold`: 3 s late;
/// - anything else: 200 with `x-seen-version`, `x-seen-client-id`, `x-seen-uri`, and the body `echo:` followed by
///   the request's body (with a `content-length`, so a HEAD response carries the length alone).
final class TestHTTPApp: Sendable {
    private let listener: any Channel
    private let seenRequests = Locked<[SeenRequest]>([])
    private let acceptedConnections = Locked(0)
    let port: Int

    private init(listener: any Channel) {
        self.listener = listener
        port = listener.localAddress?.port ?? 0
    }

    static func start() async throws -> TestHTTPApp {
        let box = Locked<TestHTTPApp?>(nil)
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                guard let app = box.value else { return channel.close() }
                app.acceptedConnections.withLock { $0 += 1 }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        ProtocolDetectionHandler(mode: .http, timeout: .seconds(5)) { detected, channel in
                            channel.eventLoop.makeCompletedFuture { try app.configure(channel, detected) }
                        })
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let app = TestHTTPApp(listener: listener)
        box.withLock { $0 = app }
        return app
    }

    var address: SocketAddress {
        get throws { try SocketAddress(ipAddress: "127.0.0.1", port: port) }
    }

    var requests: [SeenRequest] { seenRequests.value }
    var connections: Int { acceptedConnections.value }

    func close() async {
        try? await listener.close()
    }

    private func configure(_ channel: any Channel, _ detected: DetectedProtocol) throws {
        let pipeline = channel.pipeline.syncOperations
        switch detected {
        case .http2:
            _ = try pipeline.configureHTTP2Pipeline(
                mode: .server, connectionConfiguration: .init(), streamConfiguration: .init()
            ) { stream in
                stream.eventLoop.makeCompletedFuture {
                    try stream.pipeline.syncOperations.addHandlers([
                        HTTP2FramePayloadToHTTP1ServerCodec(), TestAppHandler(app: self, http2: true),
                    ])
                }
            }
        default:
            try pipeline.configureHTTPServerPipeline()
            try pipeline.addHandler(TestAppHandler(app: self, http2: false))
        }
    }

    fileprivate func record(_ request: SeenRequest) {
        seenRequests.withLock { $0.append(request) }
    }
}

private final class TestAppHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let app: TestHTTPApp
    private let http2: Bool
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()

    init(app: TestHTTPApp, http2: Bool) {
        self.app = app
        self.http2 = http2
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body.clear()
        case .body(var buffer):
            body.writeBuffer(&buffer)
        case .end(let trailers):
            guard let head else { return }
            app.record(SeenRequest(head: head, bodyBytes: body.readableBytes, trailers: trailers))
            if head.uri == "/ws" && !http2 && head.headers.first(name: "upgrade") == "websocket" {
                switchToEcho(context: context)
            } else {
                respond(context: context, to: head)
            }
        }
    }

    /// Accepts a WebSocket upgrade, then echoes every byte: enough of a WebSocket server to see the proxies splice.
    private func switchToEcho(context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "upgrade", value: "websocket")
        headers.add(name: "connection", value: "upgrade")
        let head = HTTPResponseHead(version: .http1_1, status: .switchingProtocols, headers: headers)
        context.writeAndFlush(wrapOutboundOut(.head(head)), promise: nil)
        let pipeline = context.pipeline.syncOperations
        do {
            try pipeline.addHandler(EchoHandler())
            try pipeline.removeHandler(pipeline.handler(type: HTTPServerPipelineHandler.self))
            try pipeline.removeHandler(pipeline.handler(type: HTTPServerProtocolErrorHandler.self))
            try pipeline.removeHandler(pipeline.handler(type: NIOHTTPResponseHeadersValidator.self))
            try pipeline.removeHandler(pipeline.handler(type: HTTPResponseEncoder.self))
            try pipeline.removeHandler(pipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self))
            pipeline.removeHandler(context: context, promise: nil)
            // The pipelining handler held the next read back until a response end that an upgrade never writes.
            context.channel.read()
        } catch {
            context.close(promise: nil)
        }
    }

    private func respond(context: ChannelHandlerContext, to request: HTTPRequestHead) {
        let version = http2 ? HTTPVersion.http2 : request.version
        switch request.uri {
        case "/grpc":
            var headers = HTTPHeaders()
            headers.add(name: "content-type", value: "application/grpc")
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: version, status: .ok, headers: headers))))
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: [0, 0, 0, 0, 0])))), promise: nil)
            var trailers = HTTPHeaders()
            trailers.add(name: "grpc-status", value: "7")
            trailers.add(name: "grpc-message", value: "denied")
            context.writeAndFlush(wrapOutboundOut(.end(trailers)), promise: nil)
        case "/reset" where http2:
            if let codec = try? context.pipeline.syncOperations.context(
                handlerType: HTTP2FramePayloadToHTTP1ServerCodec.self)
            {
                codec.writeAndFlush(NIOAny(HTTP2Frame.FramePayload.rstStream(.internalError)), promise: nil)
            }
        case "/slow", "/hold":
            var delayed = request
            delayed.uri = request.uri + "-done"
            let delay: TimeAmount = request.uri == "/slow" ? .milliseconds(500) : .seconds(3)
            context.eventLoop.assumeIsolated().scheduleTask(in: delay) {
                self.respond(context: context, to: delayed)
            }
        case "/eof" where !http2:
            let head = HTTPResponseHead(version: .http1_0, status: .ok)
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "until the end")))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
        default:
            var reply = ByteBuffer(string: "echo:")
            reply.writeImmutableBuffer(body)
            var headers = HTTPHeaders()
            headers.add(name: "x-seen-version", value: "\(request.version.major).\(request.version.minor)")
            headers.add(name: "x-seen-client-id", value: request.headers.first(name: "l5d-client-id") ?? "none")
            headers.add(name: "x-seen-uri", value: request.uri)
            headers.add(name: "content-length", value: "\(reply.readableBytes)")
            if !request.isKeepAlive && !http2 {
                headers.add(name: "connection", value: "close")
            }
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: version, status: .ok, headers: headers))))
            if request.method != .HEAD {
                context.write(wrapOutboundOut(.body(.byteBuffer(reply))), promise: nil)
            }
            let keepAlive = request.isKeepAlive || http2
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
                if !keepAlive { context.close(promise: nil) }
            }
        }
    }
}

/// What `curl` printed: the status line and headers of the final response (trailers included, as curl prints HTTP/2
/// trailers after the body's headers), and the body.
struct CurlResult {
    var status: Int
    var headers: [(String, String)]
    var body: String

    func header(_ name: String) -> String? {
        headers.last { $0.0.lowercased() == name.lowercased() }?.1
    }
}

/// Runs curl, a client that is not ours, against `url` with `arguments`, and parses `--include` output.
func curl(_ arguments: [String], url: String, body: String? = nil) async throws -> CurlResult {
    let (status, text, errorText) = try await onOwnThread { () throws -> (Int32, String, String) in
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        process.arguments = ["--silent", "--show-error", "--include", "--max-time", "10"] + arguments + [url]
        let output = Pipe()
        let errors = Pipe()
        let input = Pipe()
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = input
        try process.run()
        if let body {
            input.fileHandleForWriting.write(Data(body.utf8))
        }
        try input.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        let errorData = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (
            process.terminationStatus, String(decoding: data, as: UTF8.self),
            String(decoding: errorData, as: UTF8.self)
        )
    }
    guard status == 0 else {
        throw CurlFailed(status: status, output: text, errorOutput: errorText)
    }
    return parseCurlOutput(text)
}

/// Runs `body`, which blocks (waiting for a child process), on a thread of its own. Blocking a thread of Swift's
/// cooperative pool instead, which has one thread per core, would stall every task the proxies, the identity service
/// and the fake Destination service under test need meanwhile: with two cores, two curls at once stopped them all.
func onOwnThread<Value: Sendable>(_ body: @escaping @Sendable () throws -> Value) async throws -> Value {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Result { try body() }) }
        thread.name = "test child process"
        thread.start()
    }
}

struct CurlFailed: Error, CustomStringConvertible {
    var status: Int32
    var output: String
    var errorOutput: String
    var description: String { "curl exited with \(status): \(errorOutput) \(output)" }
}

/// Parses curl's `--include` output; with several response heads (1xx), the last one counts.
func parseCurlOutput(_ text: String) -> CurlResult {
    var result = CurlResult(status: 0, headers: [], body: "")
    var rest = Substring(text)
    while rest.hasPrefix("HTTP/") {
        guard let end = rest.range(of: "\r\n\r\n") else { break }
        let lines = rest[..<end.lowerBound].components(separatedBy: "\r\n")
        result.status = Int(lines[0].split(separator: " ")[1]) ?? 0
        result.headers = lines.dropFirst().compactMap { line in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        rest = rest[end.upperBound...]
    }
    // HTTP/2 trailers follow the body as header lines.
    var body = String(rest)
    var trailersStart = body.endIndex
    for name in ["grpc-status", "grpc-message"] {
        if let range = body.range(of: "\(name): ") {
            let value = body[range.upperBound...].prefix { !$0.isNewline }
            result.headers.append((name, String(value)))
            trailersStart = min(trailersStart, range.lowerBound)
        }
    }
    body = String(body[..<trailersStart])
    result.body = body
    return result
}

/// Sends `request` over a raw connection to `port` and returns everything received until the server closes (or
/// `timeout`).
func rawHTTPExchange(port: Int, _ request: String, timeout: Duration = .seconds(10)) async throws -> String {
    let client = try await TestClient.connect(port: port)
    try await client.send(request)
    try await client.received.waitUntilInputEnded(timeout: timeout)
    return client.received.text
}
