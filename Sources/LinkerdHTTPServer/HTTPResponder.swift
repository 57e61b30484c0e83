import NIOCore
import NIOHTTP1

/// What an `HTTPServer` serves: a decision on each request head, then an answer to each complete request.
///
/// Both methods are called on the connection's event loop and must not block it. `respond` may finish later (a
/// future completed from elsewhere) when the answer needs I/O.
public protocol HTTPResponder: Sendable {
    /// Decides from the head alone: answer at once (the body, if any, is then read and dropped), or read the body
    /// up to a limit (a larger body is answered with 413 and the connection closed).
    func route(_ head: HTTPRequestHead) -> HTTPRoute

    /// ``route(_:)`` with the address of the client, for answers that depend on it (requests allowed only from
    /// localhost). By default the address is ignored.
    func route(_ head: HTTPRequestHead, from peer: SocketAddress?) -> HTTPRoute

    /// Answers a request whose head `route` accepted, with its complete body. A failed future is answered 500.
    func respond(to head: HTTPRequestHead, body: ByteBuffer, on eventLoop: any EventLoop) -> EventLoopFuture<
        HTTPResponse
    >
}

/// What to do with a request, decided from its head.
public enum HTTPRoute: Sendable {
    /// Read the body (at most this many bytes) and call `HTTPResponder.respond`.
    case readBody(maximumBytes: Int)
    /// Answer now, without reading the body.
    case respond(HTTPResponse)
}

/// A complete response; the server adds `Content-Length` and `Connection`.
public struct HTTPResponse: Sendable {
    public var status: HTTPResponseStatus
    public var headers: HTTPHeaders
    public var body: ByteBuffer

    public init(status: HTTPResponseStatus, headers: HTTPHeaders = HTTPHeaders(), body: ByteBuffer = ByteBuffer()) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A `text/plain` response.
    public static func text(_ status: HTTPResponseStatus, _ text: String, headers: HTTPHeaders = HTTPHeaders()) -> Self
    {
        var headers = headers
        headers.replaceOrAdd(name: "Content-Type", value: "text/plain; charset=utf-8")
        return HTTPResponse(status: status, headers: headers, body: ByteBuffer(string: text))
    }
}

extension HTTPRequestHead {
    /// The request target without its query string.
    public var path: Substring {
        guard let mark = uri.firstIndex(of: "?") else { return uri[...] }
        return uri[..<mark]
    }
}

extension HTTPResponder {
    public func route(_ head: HTTPRequestHead, from peer: SocketAddress?) -> HTTPRoute {
        route(head)
    }
}
