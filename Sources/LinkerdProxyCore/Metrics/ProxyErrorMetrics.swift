import Synchronization

/// Why the proxy ended a connection or answered a request itself: the `error` label of the `*_errors_total`
/// families and of `response_total`. The values are upstream's (reference proxy §6.2), plus `timeout` (connecting to
/// an endpoint took too long) and `bad request` (a request the proxy refused as malformed, answered with 400).
public enum ProxyErrorKind: String, Sendable, CaseIterable {
    case failFast = "failfast"
    case loadShed = "loadshed"
    case tlsDetectionTimeout = "tls detection timeout"
    case gatewayLoop = "gateway loop"
    case timeout = "timeout"
    case io = "i/o"
    case badRequest = "bad request"
    case unexpected = "unexpected"
}

/// The `inbound_http_errors_total`, `inbound_tcp_errors_total`, `outbound_http_errors_total` and
/// `outbound_tcp_errors_total` counters, labelled with `error` (``ProxyErrorKind``).
///
/// - HTTP errors: the requests the proxy answered itself (fail-fast, load shed, endpoint unreachable, loop, a
///   malformed request) and the HTTP connections it ended for breaking the protocol.
/// - TCP errors: the connections it closed before or instead of forwarding them (detection timeout, loop, the
///   target unreachable, a failed TLS handshake).
///
/// Errors are rare next to requests, so one lock guards the counts. A family appears in a scrape once it has counted
/// something, its series sorted by label.
public final class ProxyErrorMetrics: Sendable {
    /// The proxy side an error happened on.
    public enum Direction: String, Sendable, CaseIterable {
        case inbound, outbound
    }

    /// Whether an error ended a request (`http`) or a connection (`tcp`).
    public enum Layer: String, Sendable, CaseIterable {
        case http, tcp
    }

    private struct Key: Hashable {
        var direction: Direction
        var layer: Layer
        var kind: ProxyErrorKind
    }

    private let counts = Mutex<[Key: UInt64]>([:])

    public init() {}

    /// Counts one error.
    public func record(_ kind: ProxyErrorKind, direction: Direction, layer: Layer) {
        counts.withLock { $0[Key(direction: direction, layer: layer, kind: kind), default: 0] += 1 }
    }

    /// The count so far of one series.
    public func count(_ kind: ProxyErrorKind, direction: Direction, layer: Layer) -> UInt64 {
        counts.withLock { $0[Key(direction: direction, layer: layer, kind: kind)] ?? 0 }
    }

    /// Appends the families that counted something, in the order inbound HTTP, inbound TCP, outbound HTTP, outbound
    /// TCP.
    public func render(into output: inout String) {
        let snapshot = counts.withLock { $0 }
        guard !snapshot.isEmpty else { return }
        for direction in Direction.allCases {
            for layer in Layer.allCases {
                let series = snapshot.filter { $0.key.direction == direction && $0.key.layer == layer }
                    .sorted { $0.key.kind.rawValue < $1.key.kind.rawValue }
                guard !series.isEmpty else { continue }
                let name = "\(direction.rawValue)_\(layer.rawValue)_errors_total"
                let what = layer == .http ? "HTTP requests the proxy answered itself" : "connections the proxy closed"
                PrometheusText.appendHeader(
                    name: name, type: "counter", help: "The number of \(what) because of an error", to: &output)
                for (key, count) in series {
                    let labels: MetricLabels = ["error": key.kind.rawValue]
                    PrometheusText.appendSample(name: name, labels: labels.text, value: String(count), to: &output)
                }
            }
        }
    }
}
