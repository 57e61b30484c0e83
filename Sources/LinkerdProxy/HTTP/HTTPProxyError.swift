import LinkerdProxyCore
import NIOCore
import NIOHTTP1

/// Why the proxy answered an HTTP request itself instead of with the upstream's response (reference proxy §2.9).
/// Each case has upstream's status, gRPC code and connection treatment; the description goes in `l5d-proxy-error`.
public enum HTTPProxyError: Error, Hashable, Sendable, CustomStringConvertible {
    /// No endpoint was ready within the failfast timeout, or the gate is shut: 504, `DEADLINE_EXCEEDED`.
    case failFast(service: String, timeout: TimeAmount)
    /// The request queue is full or the in-flight limit is reached: 503, `UNAVAILABLE`.
    case loadShed
    /// Connecting to the endpoint failed (refused, reset, TLS or identity failure): 502, `UNAVAILABLE`.
    case connectFailed(String)
    /// Connecting to the endpoint took longer than the connect timeout: 504, `DEADLINE_EXCEEDED`.
    case connectTimeout(String)
    /// The connection to the endpoint failed while the request was in flight (or an HTTP/2 reset ended an upgraded
    /// HTTP/1 request): 502, `UNAVAILABLE`.
    case upstreamFailed(String)
    /// The request loops back to the proxy: 508, `ABORTED`.
    case loop(String)
    /// Anything else: 500, `INTERNAL`.
    case unexpected(String)
    /// A request the proxy will not forward (§2.6: a malformed `CONNECT` or authority-form target): 400, `INTERNAL`;
    /// the connection stays open.
    case badRequest(String)

    public var description: String {
        switch self {
        case .failFast(let service, let timeout):
            "\(service): service in fail-fast: no endpoint became ready within \(timeout.nanoseconds / 1_000_000)ms"
        case .loadShed: "service unavailable: the proxy is at its request limit"
        case .connectFailed(let reason): "connect error: \(reason)"
        case .connectTimeout(let reason): "connect timed out: \(reason)"
        case .upstreamFailed(let reason): "error in the connection to the endpoint: \(reason)"
        case .loop(let reason): "forwarding loop: \(reason)"
        case .unexpected(let reason): "unexpected error: \(reason)"
        case .badRequest(let reason): "bad request: \(reason)"
        }
    }

    /// The HTTP status upstream answers with.
    var status: HTTPResponseStatus {
        switch self {
        case .failFast, .connectTimeout: .gatewayTimeout
        case .loadShed: .serviceUnavailable
        case .connectFailed, .upstreamFailed: .badGateway
        case .loop: .loopDetected
        case .unexpected: .internalServerError
        case .badRequest: .badRequest
        }
    }

    /// The gRPC status code a gRPC caller gets instead.
    var grpcStatus: Int {
        switch self {
        case .failFast, .connectTimeout: 4
        case .loadShed, .connectFailed, .upstreamFailed: 14
        case .loop: 10
        case .unexpected, .badRequest: 13
        }
    }

    /// The errors upstream's table marks fatal to the connection (all but a bad request): the client's HTTP/1
    /// connection is closed after the answer, and a peer proxy is told to close with `l5d-proxy-connection: close`.
    var closesConnection: Bool {
        if case .badRequest = self { return false }
        return true
    }

    /// The `error` label of the response and error metrics.
    var errorKind: ProxyErrorKind {
        switch self {
        case .failFast: .failFast
        case .loadShed: .loadShed
        case .connectFailed, .upstreamFailed: .io
        case .connectTimeout: .timeout
        case .loop: .gatewayLoop
        case .unexpected: .unexpected
        case .badRequest: .badRequest
        }
    }

    /// The response the proxy sends for `request`, whose connection has `version` (the request's own, or HTTP/2 for a
    /// stream). `informational` adds `l5d-proxy-error` and `l5d-proxy-connection` (outbound, unless disabled; inbound,
    /// only to meshed clients).
    func response(to request: HTTPRequestHead, informational: Bool) -> HTTPResponseHead {
        var headers = HTTPHeaders()
        let status: HTTPResponseStatus
        if HTTPHeaderRules.isGRPC(request) {
            status = .ok
            headers.add(name: "content-type", value: "application/grpc")
            headers.add(name: "grpc-status", value: String(grpcStatus))
            if informational {
                headers.add(name: "grpc-message", value: Self.grpcMessage(description))
            }
        } else {
            status = self.status
        }
        headers.add(name: "content-length", value: "0")
        if informational {
            headers.add(name: HTTPHeaderRules.proxyErrorHeader, value: Self.headerValue(description))
            if closesConnection {
                headers.add(name: HTTPHeaderRules.proxyConnectionHeader, value: "close")
            }
        }
        if closesConnection && request.version.major == 1 {
            headers.add(name: "connection", value: "close")
        }
        return HTTPResponseHead(version: request.version, status: status, headers: headers)
    }

    /// `text` made safe for a header value: control characters become spaces.
    private static func headerValue(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? " " : $0 }))
    }

    /// `text` percent-encoded as `grpc-message` requires (every byte outside printable ASCII, and `%`).
    private static func grpcMessage(_ text: String) -> String {
        var encoded = ""
        for byte in text.utf8 {
            if byte >= 0x20 && byte < 0x7F && byte != UInt8(ascii: "%") {
                encoded.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                let hex = String(byte, radix: 16, uppercase: true)
                encoded += "%" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return encoded
    }
}

extension HTTPProxyError {
    /// The error an upstream failure stands for: a connect timeout or failure from ``UpstreamConnector``, or a
    /// failure of an established connection.
    init(upstream error: any Error) {
        switch error {
        case let error as HTTPProxyError:
            self = error
        case ProxyConnectionError.connectFailed(let address, let reason) where reason.hasPrefix("no connection within"):
            self = .connectTimeout("\(address.endpointText): \(reason)")
        case let error as ProxyConnectionError:
            if case .connectFailed = error {
                self = .connectFailed("\(error)")
            } else {
                self = .upstreamFailed("\(error)")
            }
        default:
            self = .upstreamFailed("\(error)")
        }
    }
}
