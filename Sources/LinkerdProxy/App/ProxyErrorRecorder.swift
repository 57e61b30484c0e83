import LinkerdProxyCore
import NIOCore
import NIOHTTP1
import NIOSSL

/// Where one side of the proxy counts the requests it answered itself and the connections it closed on an error
/// (``ProxyErrorMetrics``); counts nothing without a registry.
struct ProxyErrorRecorder: Sendable {
    let metrics: ProxyErrorMetrics?
    let direction: ProxyErrorMetrics.Direction

    /// Counts a request the proxy answered itself, or an HTTP connection it ended, for `kind`.
    func request(_ kind: ProxyErrorKind) {
        metrics?.record(kind, direction: direction, layer: .http)
    }

    /// Counts a connection closed because of `error`.
    func connection(closedBy error: any Error) {
        metrics?.record(Self.kind(of: error), direction: direction, layer: .tcp)
    }

    /// The `error` label for what closed a connection: upstream's classes where one applies (§6.2), `i/o` for
    /// socket and TLS failures (a refused or reset connection, a failed handshake, a peer with the wrong identity),
    /// `unexpected` otherwise.
    static func kind(of error: any Error) -> ProxyErrorKind {
        switch error {
        case let error as ProxyConnectionError:
            switch error {
            case .detectionTimedOut: .tlsDetectionTimeout
            case .targetsInboundPort: .gatewayLoop
            case .handshakeTimedOut: .timeout
            case .connectFailed, .closedDuringHandshake, .clientClosed: .io
            case .addressNotAllowed, .noIdentityCertificate: .unexpected
            }
        case let error as HTTPProxyError: error.errorKind
        case is HTTPParserError: .badRequest
        case is IOError, is ChannelError, is NIOSSLError: .io
        default: .unexpected
        }
    }
}
