import Foundation
import LinkerdTestSupport
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

@testable import LinkerdHTTPServer

@Suite("HTTPServer: pipelined requests on a real socket", .timeLimit(.minutes(1)))
struct AdminConnectionHandlerTests {
    @Test func pipelinedRequestsInOneWriteAreBothAnswered() async throws {
        try await withServer { port in
            let connection = try await RawConnection(port: port)
            try await connection.send(Self.post("/a", body: "a") + Self.post("/b", body: "b"))
            try await eventually("both answers") { connection.received.contains("answer /b") }
            #expect(connection.received.components(separatedBy: "HTTP/1.1 200 OK").count == 3)
            let first = try #require(connection.received.range(of: "answer /a"))
            let second = try #require(connection.received.range(of: "answer /b"))
            #expect(first.lowerBound < second.lowerBound, "answered in order")
            try await connection.close()
        }
    }

    @Test func pipelinedRequestGetsTheBodyDeadline() async throws {
        var configuration = HTTPServer.Configuration(host: "127.0.0.1", port: 0, maximumConnections: 8)
        configuration.bodyReadTimeout = .milliseconds(200)
        configuration.idleTimeout = .seconds(60)
        try await withServer(configuration) { port in
            let connection = try await RawConnection(port: port)
            // The second request declares five bytes and sends one.
            try await connection.send(
                Self.post("/a", body: "a") + "POST /b HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n\r\nb")
            try await eventually("the connection is closed by the body deadline") { connection.closed }
            #expect(connection.received.contains("answer /a"))
            #expect(!connection.received.contains("answer /b"))
        }
    }

    private static func post(_ path: String, body: String) -> String {
        "POST \(path) HTTP/1.1\r\nHost: test\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
    }
}

/// Runs an `HTTPServer` answering every request with `answer <path>` for the duration of `body`.
private func withServer(
    _ configuration: HTTPServer.Configuration = HTTPServer.Configuration(
        host: "127.0.0.1", port: 0, maximumConnections: 8),
    _ body: (Int) async throws -> Void
) async throws {
    let server = HTTPServer(
        name: "test", configuration: configuration, security: .plaintext, responder: EchoPathResponder(),
        group: MultiThreadedEventLoopGroup.singleton, logger: Logger(label: "test.http"))
    try await whileServing({ try await server.run() }, bound: { try await server.waitUntilBound() }, body)
}

/// Reads every body, then answers `answer <path>`.
private struct EchoPathResponder: HTTPResponder {
    func route(_ head: HTTPRequestHead) -> HTTPRoute {
        .readBody(maximumBytes: 1024)
    }

    func respond(to head: HTTPRequestHead, body: ByteBuffer, on eventLoop: any EventLoop) -> EventLoopFuture<
        HTTPResponse
    > {
        eventLoop.makeSucceededFuture(.text(.ok, "answer \(head.path)"))
    }
}
