import Foundation
import LinkerdTestSupport
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// A small HTTP/1.1 server on a loopback port, plain or HTTPS, shared by `KubeTestServer` and `TestWebhookServer`.
///
/// Each request is read whole (bodies over `maxBodyBytes` are discarded and flagged), handed to the handler, and
/// answered: complete replies with `Content-Length`, streamed ones chunked with every chunk flushed. Connections
/// are kept alive unless the client asks otherwise; requests on one connection are served one at a time, in order.
/// With TLS, a client certificate is requested but optional; one that is presented must verify against the
/// configured roots, and its subject CN is passed on with every request of the connection.
final class HTTPServer: Sendable {
    typealias Handler = @Sendable (HTTPRequest) async -> HTTPReply
    private typealias Connection = NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>

    let port: Int
    private let listener: any Channel
    private let handler: Handler
    private let maxBodyBytes: Int
    private let usesTLS: Bool
    /// Open connections, and whether shutdown has begun (one lock, so a connection is either closed by `shutdown()`
    /// or sees the flag and closes itself).
    private let connections = Mutex<(open: [ObjectIdentifier: any Channel], shuttingDown: Bool)>(([:], false))
    private let acceptTask = Mutex<Task<Void, Never>?>(nil)

    private init(port: Int, listener: any Channel, handler: @escaping Handler, maxBodyBytes: Int, usesTLS: Bool) {
        self.port = port
        self.listener = listener
        self.handler = handler
        self.maxBodyBytes = maxBodyBytes
        self.usesTLS = usesTLS
    }

    /// Binds `127.0.0.1` on a free port and starts serving.
    static func start(tls: NIOSSLContext?, maxBodyBytes: Int, handler: @escaping Handler) async throws -> HTTPServer {
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: "127.0.0.1", port: 0) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls))
                    }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    return try Connection(wrappingChannelSynchronously: channel)
                }
            }
        guard let port = listener.channel.localAddress?.port else {
            try? await listener.channel.close()
            throw ChannelError.unknownLocalAddress
        }
        let server = HTTPServer(
            port: port, listener: listener.channel, handler: handler, maxBodyBytes: maxBodyBytes, usesTLS: tls != nil)
        let task = Task { await server.accept(listener) }
        server.acceptTask.withLock { $0 = task }
        return server
    }

    /// A TLS context serving `certificate`; with `clientRoots`, client certificates are requested (optional) and
    /// verified against them. Only HTTP/1.1 is offered over ALPN. Closing sends `close_notify` and closes the TCP
    /// connection at once, without waiting for the peer's `close_notify` (so dropped watches end abruptly).
    static func tlsContext(serving certificate: IssuedCertificate, clientRoots: TestCertificateAuthority?) throws
        -> NIOSSLContext
    {
        let chain = try NIOSSLCertificate(bytes: Array(certificate.certificatePEM.utf8), format: .pem)
        let key = try NIOSSLPrivateKey(bytes: Array(certificate.privateKeyPEM.utf8), format: .pem)
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: [.certificate(chain)], privateKey: .privateKey(key))
        if let clientRoots {
            let root = try NIOSSLCertificate(bytes: Array(clientRoots.certificatePEM.utf8), format: .pem)
            configuration.trustRoots = .certificates([root])
            configuration.certificateVerification = .optionalVerification
        }
        configuration.applicationProtocols = ["http/1.1"]
        configuration.shutdownTimeout = .zero
        return try NIOSSLContext(configuration: configuration)
    }

    /// Stops accepting, closes every connection (streams end abruptly) and waits for the handlers to return.
    ///
    /// The accept loop is not cancelled: closing the listener ends its stream after the connections already accepted
    /// have been handed out, and each of those is closed through `executeThenClose`. (Cancelling the loop instead
    /// would drop accepted connections whose writers were never finished, which NIO traps on.)
    func shutdown() async {
        let task = acceptTask.withLock { $0 }
        let open = connections.withLock { state in
            state.shuttingDown = true
            return Array(state.open.values)
        }
        listener.close(promise: nil)
        for channel in open {
            channel.close(promise: nil)
        }
        await task?.value
    }

    private func accept(_ listener: NIOAsyncChannel<Connection, Never>) async {
        try? await withThrowingDiscardingTaskGroup { group in
            try await listener.executeThenClose { inbound in
                for try await connection in inbound {
                    group.addTask { await self.serve(connection) }
                }
            }
        }
    }

    private func serve(_ connection: Connection) async {
        let channel = connection.channel
        let id = ObjectIdentifier(channel)
        let shuttingDown = connections.withLock { state in
            state.open[id] = channel
            return state.shuttingDown
        }
        defer { connections.withLock { _ = $0.open.removeValue(forKey: id) } }
        try? await connection.executeThenClose { inbound, outbound in
            guard !shuttingDown else { return }
            var parts = inbound.makeAsyncIterator()
            var certificateChecked = false
            var certificateName: String?
            while let (head, request) = try await readRequest(&parts) {
                var request = request
                if usesTLS, !certificateChecked {
                    certificateName = await Self.peerName(channel)
                    certificateChecked = true
                }
                request.clientCertificateName = certificateName
                let reply = await handler(request)
                let keepOpen = try await write(reply, for: head, outbound: outbound, channel: channel)
                guard keepOpen, head.isKeepAlive else { return }
            }
        }
    }

    private func readRequest(_ parts: inout NIOAsyncChannelInboundStream<HTTPServerRequestPart>.AsyncIterator)
        async throws -> (HTTPRequestHead, HTTPRequest)?
    {
        var head: HTTPRequestHead?
        var body = ByteBuffer()
        var tooLarge = false
        while let part = try await parts.next() {
            switch part {
            case .head(let received):
                head = received
            case .body(var chunk):
                if tooLarge { continue }
                if body.readableBytes + chunk.readableBytes > maxBodyBytes {
                    tooLarge = true
                    body.clear()
                } else {
                    body.writeBuffer(&chunk)
                }
            case .end:
                guard let head else { continue }
                let (path, query) = Self.split(uri: head.uri)
                let request = HTTPRequest(
                    method: head.method, uri: head.uri, path: path, query: query, headers: head.headers,
                    body: Data(body.readableBytesView), bodyTooLarge: tooLarge, clientCertificateName: nil)
                return (head, request)
            }
        }
        return nil
    }

    /// Writes a reply; false when the connection must be closed afterwards.
    private func write(
        _ reply: HTTPReply, for request: HTTPRequestHead,
        outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>,
        channel: any Channel
    ) async throws -> Bool {
        switch reply {
        case .complete(let status, var headers, let body):
            headers.replaceOrAdd(name: "Content-Length", value: String(body.count))
            if !request.isKeepAlive {
                headers.replaceOrAdd(name: "Connection", value: "close")
            }
            var parts: [HTTPServerResponsePart] = [
                .head(HTTPResponseHead(version: request.version, status: status, headers: headers))
            ]
            if request.method != .HEAD, !body.isEmpty {
                parts.append(.body(.byteBuffer(ByteBuffer(bytes: body))))
            }
            parts.append(.end(nil))
            try await outbound.write(contentsOf: parts)
            return true
        case .stream(let status, var headers, let body):
            channel.closeFuture.whenComplete { _ in body.finish() }
            defer { body.finish() }
            if !request.isKeepAlive {
                headers.replaceOrAdd(name: "Connection", value: "close")
            }
            try await outbound.write(
                .head(HTTPResponseHead(version: request.version, status: status, headers: headers)))
            while true {
                switch await body.nextChunk() {
                case .data(let data):
                    try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: data))))
                case .end:
                    try await outbound.write(.end(nil))
                    return true
                case .abort:
                    return false
                }
            }
        case .closeConnection:
            return false
        }
    }

    /// The subject CN of the verified client certificate of a TLS connection, if one was presented.
    private static func peerName(_ channel: any Channel) async -> String? {
        guard let certificate = try? await channel.nioSSL_peerCertificate().get(),
            let der = try? certificate.toDERBytes()
        else { return nil }
        return try? TestCertificateAuthority.subjectCommonName(derEncoded: der)
    }

    /// Splits a request target into its path and percent-decoded query parameters (`+` is a space).
    private static func split(uri: String) -> (path: String, query: [String: String]) {
        guard let mark = uri.firstIndex(of: "?") else { return (uri, [:]) }
        var query: [String: String] = [:]
        for pair in uri[uri.index(after: mark)...].split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ text: Substring) -> String {
                let spaced = text.replacingOccurrences(of: "+", with: " ")
                return spaced.removingPercentEncoding ?? spaced
            }
            query[decode(parts[0])] = parts.count > 1 ? decode(parts[1]) : ""
        }
        return (String(uri[..<mark]), query)
    }
}
