import AsyncHTTPClient
import KubeModel
import NIOCore
import NIOHTTP1
import Testing

@testable import KubeClient

@Suite("error classification")
struct ErrorClassificationTests {
    func statusError(_ code: Int, _ body: String, headers: HTTPHeaders = [:]) -> KubeError {
        KubeClient.statusError(
            status: code, headers: headers, body: ByteBuffer(string: body), operation: "GET /api/v1/x")
    }

    func status(_ code: Int, reason: String) -> String {
        #"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"\#(reason) happened","#
            + #""reason":"\#(reason)","code":\#(code)}"#
    }

    @Test func classifiesByStatusCodeAndReason() {
        #expect(statusError(404, status(404, reason: "NotFound")).code == .notFound)
        #expect(statusError(409, status(409, reason: "AlreadyExists")).code == .alreadyExists)
        #expect(statusError(409, status(409, reason: "Conflict")).code == .conflict)
        #expect(statusError(401, status(401, reason: "Unauthorized")).code == .unauthorized)
        #expect(statusError(403, status(403, reason: "Forbidden")).code == .forbidden)
        #expect(statusError(410, status(410, reason: "Expired")).code == .gone)
        #expect(statusError(422, status(422, reason: "Invalid")).code == .invalid)
        #expect(statusError(400, status(400, reason: "BadRequest")).code == .badRequest)
        #expect(statusError(503, status(503, reason: "ServiceUnavailable")).code == .server(statusCode: 503))
        let error = statusError(404, status(404, reason: "NotFound"))
        #expect(error.message == "GET /api/v1/x: NotFound happened")
        #expect(error.status?.reason == "NotFound")
    }

    @Test func retryAfterComesFromTheHeaderOrTheDetails() {
        let header = statusError(429, status(429, reason: "TooManyRequests"), headers: ["Retry-After": " 7 "])
        #expect(header.code == .tooManyRequests)
        #expect(header.retryAfter == .seconds(7))
        let details = statusError(
            429,
            #"{"kind":"Status","status":"Failure","reason":"TooManyRequests","code":429,"#
                + #""details":{"retryAfterSeconds":3}}"#
        )
        #expect(details.retryAfter == .seconds(3))
        #expect(statusError(429, "", headers: ["Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"]).retryAfter == nil)
    }

    @Test func aBodyThatIsNotAStatusIsQuoted() {
        let error = statusError(502, "<html>bad gateway</html>")
        #expect(error.code == .server(statusCode: 502))
        #expect(error.status == nil)
        #expect(error.message == "GET /api/v1/x: the API server answered HTTP 502 with \"<html>bad gateway</html>\"")
        #expect(statusError(500, "{}").status == nil)
    }

    @Test func transportFailures() {
        func classify(_ error: any Error) -> KubeError? {
            TransportFailure.classify(error, operation: "GET /x") as? KubeError
        }
        #expect(classify(HTTPClientError.connectTimeout)?.code == .timeout)
        #expect(classify(HTTPClientError.deadlineExceeded)?.code == .timeout)
        #expect(classify(HTTPClientError.readTimeout)?.code == .timeout)
        #expect(classify(HTTPClientError.remoteConnectionClosed)?.code == .transport)
        #expect(classify(HTTPClientError.remoteConnectionClosed)?.message.contains("remoteConnectionClosed") == true)
        #expect(classify(NIOTooManyBytesError(maxBytes: 10))?.code == .decoding)
        let passthrough = KubeError(code: .gone, message: "gone")
        #expect(classify(passthrough) == passthrough)
        #expect(TransportFailure.classify(CancellationError(), operation: "GET /x") is CancellationError)
    }

    @Test func snippetsAreShort() {
        let long = [UInt8](repeating: UInt8(ascii: "a"), count: 500)
        let snippet = TransportFailure.snippet(long)
        #expect(snippet == "\"\(String(repeating: "a", count: 200))\" (500 bytes in all)")
        #expect(TransportFailure.snippet([UInt8]()) == "(an empty body)")
    }
}
