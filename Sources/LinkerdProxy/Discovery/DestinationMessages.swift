import LinkerdCore
import LinkerdProxyAPI
import LinkerdProxyCore

/// One `DestinationProfile` from the Destination service's `GetProfile` stream (reference proxy §3.2, control plane
/// §5.3). Each message describes the whole profile, so each replaces the one before.
///
/// Routes, the retry budget and traffic-split overrides are passed on as the protobuf messages for now; the fields
/// the proxy reads directly are decoded.
public struct DestinationProfileUpdate: Hashable, Sendable {
    /// The logical name of the destination (`web.emojivoto.svc.cluster.local`), as the service wrote it; nil when
    /// the service gave none (an `ip:port` that is no Service's cluster IP, or an empty profile meaning "none").
    public var fullyQualifiedName: String?
    /// Whether the destination's port is opaque: the traffic is forwarded as TCP, without protocol detection.
    public var opaqueProtocol: Bool
    /// The one endpoint to forward to directly, when the target was the `ip:port` of a pod (an endpoint profile);
    /// nil otherwise, or when the service's address is unusable.
    public var endpoint: Endpoint?
    /// The ServiceProfile's routes, in order.
    public var routes: [Io_Linkerd_Proxy_Destination_Route]
    /// The retry budget shared by the routes' retries; nil when the service sent none.
    public var retryBudget: Io_Linkerd_Proxy_Destination_RetryBudget?
    /// The weighted traffic split (`dst_overrides`), by authority.
    public var dstOverrides: [Io_Linkerd_Proxy_Destination_WeightedDst]

    public init(
        fullyQualifiedName: String? = nil, opaqueProtocol: Bool = false, endpoint: Endpoint? = nil,
        routes: [Io_Linkerd_Proxy_Destination_Route] = [],
        retryBudget: Io_Linkerd_Proxy_Destination_RetryBudget? = nil,
        dstOverrides: [Io_Linkerd_Proxy_Destination_WeightedDst] = []
    ) {
        self.fullyQualifiedName = fullyQualifiedName
        self.opaqueProtocol = opaqueProtocol
        self.endpoint = endpoint
        self.routes = routes
        self.retryBudget = retryBudget
        self.dstOverrides = dstOverrides
    }

    /// The update a `DestinationProfile` message carries.
    public init(_ message: Io_Linkerd_Proxy_Destination_DestinationProfile) {
        self.init(
            fullyQualifiedName: message.fullyQualifiedName.isEmpty ? nil : message.fullyQualifiedName,
            opaqueProtocol: message.opaqueProtocol,
            endpoint: message.hasEndpoint ? Endpoint(message.endpoint) : nil,
            routes: message.routes,
            retryBudget: message.hasRetryBudget ? message.retryBudget : nil,
            dstOverrides: message.dstOverrides)
    }
}

extension EndpointUpdate {
    /// The update an `Update` message carries; nil when it carries none (an unset `update`, which a newer service
    /// could send for a kind this proxy does not know).
    ///
    /// Addresses without a usable socket address (no IP, or a port above 65535) are left out, as upstream drops
    /// them; an `add` left with none is still an `add`, as it may be the first of a reconnected stream.
    public init?(_ message: Io_Linkerd_Proxy_Destination_Update) {
        switch message.update {
        case .add(let set):
            self = .add(set.addrs.compactMap { Endpoint($0, setLabels: set.metricLabels) })
        case .remove(let set):
            self = .remove(set.addrs.compactMap(IPSocketAddress.init))
        case .noEndpoints(let noEndpoints):
            self = .noEndpoints(exists: noEndpoints.exists)
        case nil:
            return nil
        }
    }
}

extension Endpoint {
    /// The endpoint a `WeightedAddr` describes, its labels merged over the set's `setLabels`; nil when its address
    /// is unusable.
    public init?(_ message: Io_Linkerd_Proxy_Destination_WeightedAddr, setLabels: [String: String] = [:]) {
        guard message.hasAddr, let address = IPSocketAddress(message.addr) else { return nil }
        var identity: String?
        var serverName: String?
        if message.hasTlsIdentity {
            let tls = message.tlsIdentity
            switch tls.strategy {
            case .dnsLikeIdentity(let dns): identity = dns.name.isEmpty ? nil : dns.name
            case .uriLikeIdentity(let uri): identity = uri.uri.isEmpty ? nil : uri.uri
            case nil: identity = nil
            }
            if tls.hasServerName, !tls.serverName.name.isEmpty {
                serverName = tls.serverName.name
            }
        }
        var hint = EndpointProtocolHint.unknown
        var opaqueTransportPort: UInt16?
        if message.hasProtocolHint {
            switch message.protocolHint.`protocol` {
            case .h2: hint = .http2
            case .opaque: hint = .opaque
            case nil: hint = .unknown
            }
            if message.protocolHint.hasOpaqueTransport {
                opaqueTransportPort = UInt16(exactly: message.protocolHint.opaqueTransport.inboundPort)
            }
        }
        let authorityOverride =
            message.hasAuthorityOverride && !message.authorityOverride.authorityOverride.isEmpty
            ? message.authorityOverride.authorityOverride : nil
        self.init(
            address: address, weight: message.weight,
            metricLabels: setLabels.merging(message.metricLabels) { _, own in own }, tlsIdentity: identity,
            tlsServerName: serverName, protocolHint: hint, opaqueTransportPort: opaqueTransportPort,
            authorityOverride: authorityOverride)
    }
}

extension IPSocketAddress {
    /// The socket address of a `TcpAddress`: IPv4 as one big-endian 32-bit number, IPv6 as its first and last 64
    /// bits. Nil when it has no IP or its port is above 65535.
    public init?(_ message: Io_Linkerd_Proxy_Net_TcpAddress) {
        guard message.hasIp, let port = UInt16(exactly: message.port) else { return nil }
        switch message.ip.ip {
        case .ipv4(let value):
            self.init(ip: .v4(value), port: port)
        case .ipv6(let value):
            self.init(ip: .v6(UInt128(value.first) << 64 | UInt128(value.last)), port: port)
        case nil:
            return nil
        }
    }
}
