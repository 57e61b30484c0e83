import LinkerdCore
import LinkerdProxyAPI
import SwiftProtobuf

extension FakeDestinationServer {
    /// What an endpoint's proxy accepts, as the destination controller hints it.
    public enum ProtocolHint: Hashable, Sendable {
        /// HTTP/2 (`h2`): a meshed endpoint on a port that is not opaque.
        case h2
        /// Opaque: a meshed endpoint on an opaque port.
        case opaque
    }

    /// A `Get` update, written the way tests think of it; the `send(_:)` of an endpoint ``ExpectedStream`` sends it.
    public enum Update: Hashable, Sendable {
        /// Endpoints added or changed, with labels shared by the whole set (`namespace`, `service`).
        case add([Io_Linkerd_Proxy_Destination_WeightedAddr], setLabels: [String: String] = [:])
        /// Endpoints gone.
        case remove([Io_Linkerd_Proxy_Net_TcpAddress])
        /// No endpoints; `exists: false` says the name does not exist.
        case noEndpoints(exists: Bool)

        /// The protobuf message.
        public var message: Io_Linkerd_Proxy_Destination_Update {
            var update = Io_Linkerd_Proxy_Destination_Update()
            switch self {
            case .add(let addresses, let setLabels):
                var set = Io_Linkerd_Proxy_Destination_WeightedAddrSet()
                set.addrs = addresses
                set.metricLabels = setLabels
                update.update = .add(set)
            case .remove(let addresses):
                var set = Io_Linkerd_Proxy_Destination_AddrSet()
                set.addrs = addresses
                update.update = .remove(set)
            case .noEndpoints(let exists):
                var noEndpoints = Io_Linkerd_Proxy_Destination_NoEndpoints()
                noEndpoints.exists = exists
                update.update = .noEndpoints(noEndpoints)
            }
            return update
        }
    }

    /// The `TcpAddress` of `ip:port` or `[ipv6]:port`.
    ///
    /// - Throws: `ParseError` when it is not an IP address and a port from 0 to 65535.
    public static func tcpAddress(_ text: String) throws(ParseError) -> Io_Linkerd_Proxy_Net_TcpAddress {
        func failure(_ reason: String) -> ParseError {
            ParseError(value: text, expected: "socket address (ip:port)", reason: reason)
        }
        guard let colon = text.lastIndex(of: ":") else {
            throw failure("there is no \":\" before the port")
        }
        guard let port = UInt16(text[text.index(after: colon)...]) else {
            throw failure("the port is not a number from 0 to 65535")
        }
        var host = Substring(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") {
            host = host.dropFirst().dropLast()
        }
        var ip = Io_Linkerd_Proxy_Net_IPAddress()
        switch try IPAddress(parsing: String(host)) {
        case .v4(let value):
            ip.ip = .ipv4(value)
        case .v6(let value):
            var v6 = Io_Linkerd_Proxy_Net_IPv6()
            v6.first = UInt64(truncatingIfNeeded: value >> 64)
            v6.last = UInt64(truncatingIfNeeded: value)
            ip.ip = .ipv6(v6)
        }
        var address = Io_Linkerd_Proxy_Net_TcpAddress()
        address.ip = ip
        address.port = UInt32(port)
        return address
    }

    /// A `WeightedAddr` for `address` (`ip:port`), as the destination controller describes a pod endpoint.
    ///
    /// - Parameters:
    ///   - weight: upstream's default is 10000.
    ///   - labels: the address's own metric labels (`pod`, `serviceaccount`, …).
    ///   - identity: the DNS-like identity its certificate carries; nil for an endpoint that is not meshed.
    ///   - serverName: the SNI to send when it differs from `identity`.
    ///   - hint: the protocol hint; nil sends none.
    ///   - opaqueTransportPort: the port of the endpoint proxy's inbound listener, for opaque transport.
    /// - Throws: `ParseError` when `address` is not `ip:port`.
    public static func weightedAddr(
        _ address: String, weight: UInt32 = 10_000, labels: [String: String] = [:], identity: String? = nil,
        serverName: String? = nil, hint: ProtocolHint? = nil, opaqueTransportPort: UInt16? = nil
    ) throws(ParseError) -> Io_Linkerd_Proxy_Destination_WeightedAddr {
        var addr = Io_Linkerd_Proxy_Destination_WeightedAddr()
        addr.addr = try tcpAddress(address)
        addr.weight = weight
        addr.metricLabels = labels
        if identity != nil || serverName != nil {
            var tls = Io_Linkerd_Proxy_Destination_TlsIdentity()
            if let identity {
                var dns = Io_Linkerd_Proxy_Destination_TlsIdentity.DnsLikeIdentity()
                dns.name = identity
                tls.strategy = .dnsLikeIdentity(dns)
            }
            if let serverName {
                var name = Io_Linkerd_Proxy_Destination_TlsIdentity.DnsLikeIdentity()
                name.name = serverName
                tls.serverName = name
            }
            addr.tlsIdentity = tls
        }
        if hint != nil || opaqueTransportPort != nil {
            var protocolHint = Io_Linkerd_Proxy_Destination_ProtocolHint()
            switch hint {
            case .h2: protocolHint.protocol = .h2(.init())
            case .opaque: protocolHint.protocol = .opaque(.init())
            case nil: break
            }
            if let opaqueTransportPort {
                var transport = Io_Linkerd_Proxy_Destination_ProtocolHint.OpaqueTransport()
                transport.inboundPort = UInt32(opaqueTransportPort)
                protocolHint.opaqueTransport = transport
            }
            addr.protocolHint = protocolHint
        }
        return addr
    }

    /// A `DestinationProfile`.
    ///
    /// - Parameters:
    ///   - fullyQualifiedName: the logical name (`web.emojivoto.svc.cluster.local`); empty for none.
    ///   - endpoint: the endpoint of an endpoint profile (an `ip:port` that is a pod).
    ///   - retryBudget: `(retry_ratio, min_retries_per_second, ttl)`; nil sends none.
    public static func profile(
        fullyQualifiedName: String = "", opaqueProtocol: Bool = false,
        endpoint: Io_Linkerd_Proxy_Destination_WeightedAddr? = nil,
        routes: [Io_Linkerd_Proxy_Destination_Route] = [],
        retryBudget: (ratio: Float, minRetriesPerSecond: UInt32, ttl: Duration)? = nil,
        dstOverrides: [(authority: String, weight: UInt32)] = []
    ) -> Io_Linkerd_Proxy_Destination_DestinationProfile {
        var profile = Io_Linkerd_Proxy_Destination_DestinationProfile()
        profile.fullyQualifiedName = fullyQualifiedName
        profile.opaqueProtocol = opaqueProtocol
        if let endpoint {
            profile.endpoint = endpoint
        }
        profile.routes = routes
        if let retryBudget {
            var budget = Io_Linkerd_Proxy_Destination_RetryBudget()
            budget.retryRatio = retryBudget.ratio
            budget.minRetriesPerSecond = retryBudget.minRetriesPerSecond
            let (seconds, attoseconds) = retryBudget.ttl.components
            budget.ttl = Google_Protobuf_Duration(
                seconds: seconds, nanos: Int32(truncatingIfNeeded: attoseconds / 1_000_000_000))
            profile.retryBudget = budget
        }
        profile.dstOverrides = dstOverrides.map { override in
            var dst = Io_Linkerd_Proxy_Destination_WeightedDst()
            dst.authority = override.authority
            dst.weight = override.weight
            return dst
        }
        return profile
    }
}

extension ExpectedStream where Message == Io_Linkerd_Proxy_Destination_Update {
    /// Sends `update` on the call.
    public func send(_ update: FakeDestinationServer.Update) {
        send(update.message)
    }
}
