import LinkerdCore

/// One endpoint of a logical destination, as the Destination service's `Get` stream describes it (a `WeightedAddr`,
/// reference proxy §3.2): where to connect, and what the proxy should know about the peer before it does.
public struct Endpoint: Hashable, Sendable, CustomStringConvertible {
    /// The socket address to connect to; an endpoint set holds one endpoint per address.
    public var address: IPSocketAddress
    /// The weight the control plane gives the endpoint (10000 by default). Upstream parses it but its P2C balancer
    /// does not use it.
    public var weight: UInt32
    /// Labels for the endpoint's `dst_*` metrics: the set's labels (`namespace`, `service`) merged with the
    /// address's own (`pod`, `serviceaccount`, `zone_locality`, …), the address's winning when both have a key.
    public var metricLabels: [String: String]
    /// The identity the endpoint's certificate must carry (a DNS-like name, or a `spiffe://` URI); nil when the
    /// endpoint is not meshed, so the connection is made without mesh TLS.
    public var tlsIdentity: String?
    /// The SNI to send when it differs from ``tlsIdentity``; nil sends the identity itself.
    public var tlsServerName: String?
    /// What the endpoint's proxy is known to accept.
    public var protocolHint: EndpointProtocolHint
    /// The port of the endpoint's proxy inbound listener, which takes opaque traffic behind a transport header
    /// (reference proxy §2.3); nil when the connection goes to ``address`` as is.
    public var opaqueTransportPort: UInt16?
    /// The `:authority` to send instead of the one requested (multicluster gateway endpoints); nil keeps it.
    public var authorityOverride: String?

    public init(
        address: IPSocketAddress, weight: UInt32 = 10_000, metricLabels: [String: String] = [:],
        tlsIdentity: String? = nil, tlsServerName: String? = nil, protocolHint: EndpointProtocolHint = .unknown,
        opaqueTransportPort: UInt16? = nil, authorityOverride: String? = nil
    ) {
        self.address = address
        self.weight = weight
        self.metricLabels = metricLabels
        self.tlsIdentity = tlsIdentity
        self.tlsServerName = tlsServerName
        self.protocolHint = protocolHint
        self.opaqueTransportPort = opaqueTransportPort
        self.authorityOverride = authorityOverride
    }

    /// The address, and the identity when there is one, for logs.
    public var description: String {
        tlsIdentity.map { "\(address) (\($0))" } ?? "\(address)"
    }
}

/// What the Destination service says an endpoint's proxy accepts (`ProtocolHint`).
public enum EndpointProtocolHint: Hashable, Sendable {
    /// Nothing is known: the traffic is sent as the application wrote it.
    case unknown
    /// The endpoint is meshed and accepts HTTP/2, so HTTP/1 requests may be upgraded to it (`l5d-orig-proto`).
    case http2
    /// The endpoint's port is opaque: its proxy does no protocol detection, so the traffic is forwarded as TCP.
    case opaque
}

/// A change to the endpoints of a logical destination, in the order the Destination service's `Get` stream gives
/// them (reference proxy §3.2, control plane §5.2). ``EndpointSet/apply(_:)`` gives each its meaning.
public enum EndpointUpdate: Hashable, Sendable {
    /// Endpoints added, or changed: each replaces any endpoint with the same address.
    case add([Endpoint])
    /// Endpoints gone, by address; addresses not in the set are ignored.
    case remove([IPSocketAddress])
    /// The destination has no endpoints now. `exists` is false when the name itself does not exist (upstream's
    /// `DoesNotExist`); either way the set is emptied.
    case noEndpoints(exists: Bool)
    /// The first update of a stream opened again after the previous one ended or failed: these endpoints replace
    /// the whole set. Until it arrives, the endpoints known before the reconnection stay in use.
    case reset([Endpoint])
}
