import LinkerdProxyCore
import NIOCore

/// The label sets of the proxy's legacy metric families, in upstream's order (reference proxy §6.2), built once per
/// connection or endpoint, never per request.
enum ProxyMetricLabels {
    /// Inbound endpoint labels: `direction="inbound"`, the target, then the TLS the client used.
    static func inbound(destination: SocketAddress, tls: InboundTLS) -> MetricLabels {
        var pairs: [(name: String, value: String)] = [("direction", "inbound")]
        pairs += target(destination)
        switch tls {
        case .terminated(let clientIdentity):
            pairs += [("tls", "true"), ("client_id", clientIdentity ?? "")]
        case .passthrough(let serverName):
            pairs += [("tls", "opaque"), ("sni", serverName)]
        case .plaintext:
            pairs += [("tls", "no_identity"), ("no_tls_reason", "no_tls_from_remote")]
        }
        return MetricLabels(pairs)
    }

    /// Outbound endpoint labels: `direction="outbound"`, the logical authority when known, the target, the TLS
    /// towards it, then `dst_*` from discovery's metric labels (sorted by name, so that one endpoint always gives
    /// one label set).
    static func outbound(
        endpoint: OutboundEndpoint, authority: String?, destinationLabels: [String: String] = [:]
    ) -> MetricLabels {
        var pairs: [(name: String, value: String)] = [("direction", "outbound")]
        if let authority {
            pairs.append(("authority", authority))
        }
        pairs += target(endpoint.address)
        if let identity = endpoint.identity {
            pairs += [("tls", "true"), ("server_id", identity)]
        } else {
            pairs += [("tls", "no_identity"), ("no_tls_reason", "not_provided_by_service_discovery")]
        }
        for (name, value) in destinationLabels.sorted(by: { $0.key < $1.key }) {
            pairs.append(("dst_" + name, value))
        }
        return MetricLabels(pairs)
    }

    /// Transport labels of an accepted connection: `direction`, `peer="src"`, and the target.
    static func acceptedTransport(direction: String, destination: SocketAddress) -> MetricLabels {
        MetricLabels([("direction", direction), ("peer", "src")] + target(destination))
    }

    private static func target(_ address: SocketAddress) -> [(name: String, value: String)] {
        [
            ("target_addr", address.endpointText), ("target_ip", address.ipAddress ?? ""),
            ("target_port", address.port.map { String($0) } ?? ""),
        ]
    }
}
