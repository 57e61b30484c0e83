import Foundation
import NIOHTTP1

/// One HTTP request, read completely (the server does not stream request bodies).
struct HTTPRequest: Sendable {
    var method: HTTPMethod
    /// The request target as received: path and query.
    var uri: String
    /// The path without the query, percent-encoded as received.
    var path: String
    /// The query parameters, percent-decoded; the last of repeated names wins.
    var query: [String: String]
    var headers: HTTPHeaders
    var body: Data
    /// Set when the body exceeded the server's limit; `body` is then empty.
    var bodyTooLarge: Bool
    /// The subject CN of the client certificate the TLS handshake verified, if any.
    var clientCertificateName: String?

    var contentType: String? {
        headers.first(name: "content-type")
    }

    /// The media type of `Content-Type`, lowercased and without parameters.
    var mediaType: String? {
        contentType.map { $0.split(separator: ";").first.map(String.init) ?? "" }
            .map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
    }
}

/// What a handler answers.
enum HTTPReply: Sendable {
    /// A response with a body of known length.
    case complete(status: HTTPResponseStatus, headers: HTTPHeaders, body: Data)
    /// A chunked response whose body is pulled from `body` until it ends or aborts.
    case stream(status: HTTPResponseStatus, headers: HTTPHeaders, body: any StreamingBody)
    /// No response: the connection is closed.
    case closeConnection
}

/// A response body produced over time (a watch).
protocol StreamingBody: Sendable {
    /// The next piece to send; waits until there is one.
    func nextChunk() async -> StreamChunk
    /// The connection is gone or the body was fully sent; stop producing. Idempotent.
    func finish()
}

enum StreamChunk: Sendable {
    /// Bytes to send (and flush) as one chunk.
    case data(Data)
    /// The end of the body: the terminating chunk is sent and the connection stays usable.
    case end
    /// Close the connection without ending the body.
    case abort
}
