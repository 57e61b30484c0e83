import LinkerdCore

/// The address family a rule set is for: `iptables` (IPv4) or `ip6tables` (IPv6).
///
/// The two families have separate nat tables, so proxy-init plans and applies its rules once per family. The family
/// decides only which of the subnets to ignore apply; which binary runs the commands is the caller's business.
public enum IPFamily: String, Sendable, Hashable, CaseIterable {
    /// IPv4, managed with `iptables`.
    case ipv4
    /// IPv6, managed with `ip6tables`.
    case ipv6

    /// Whether `cidr` is a network of this family.
    public func includes(_ cidr: CIDR) -> Bool {
        switch (self, cidr.address) {
        case (.ipv4, .v4), (.ipv6, .v6): true
        default: false
        }
    }
}

/// What proxy-init redirects and what it leaves alone: the settings of `linkerd-proxy-init`'s flags.
///
/// Inbound TCP is redirected to ``incomingProxyPort`` and outbound TCP to ``outgoingProxyPort``, except for the
/// ignored ports and subnets, loopback, and the proxy's own traffic (by ``proxyUID`` and ``proxyGID``), which is what
/// keeps the proxy from redirecting its own connections to itself.
public struct FirewallConfiguration: Sendable, Hashable {
    /// The port inbound connections are redirected to: the proxy's inbound listener, 4143 in Linkerd.
    public var incomingProxyPort: UInt16
    /// The port outbound connections are redirected to: the proxy's outbound listener, 4140 in Linkerd.
    public var outgoingProxyPort: UInt16
    /// The user the proxy runs as, whose outbound traffic is not redirected; only a value greater than 0 adds the
    /// rule, since root's traffic must not escape redirection by accident.
    public var proxyUID: UInt32?
    /// The group the proxy runs as, whose outbound traffic is not redirected; only a value greater than 0 adds the
    /// rule.
    public var proxyGID: UInt32?
    /// The inbound ports to redirect, each with its own rule ("redirect-listed" mode), in this order; empty
    /// redirects every inbound TCP port ("redirect-all" mode).
    public var portsToRedirect: [UInt16]
    /// Inbound ports and ranges that are not redirected, such as the proxy's admin (4191) and control (4190) ports.
    public var inboundPortsToIgnore: PortList
    /// Outbound ports and ranges that are not redirected.
    public var outboundPortsToIgnore: PortList
    /// Source networks whose inbound traffic is not redirected. Both families may be mixed: a plan for a family uses
    /// only that family's networks.
    public var subnetsToIgnore: [CIDR]

    /// A configuration with the given settings; the defaults ignore nothing and redirect every port.
    public init(
        incomingProxyPort: UInt16,
        outgoingProxyPort: UInt16,
        proxyUID: UInt32? = nil,
        proxyGID: UInt32? = nil,
        portsToRedirect: [UInt16] = [],
        inboundPortsToIgnore: PortList = [],
        outboundPortsToIgnore: PortList = [],
        subnetsToIgnore: [CIDR] = []
    ) {
        self.incomingProxyPort = incomingProxyPort
        self.outgoingProxyPort = outgoingProxyPort
        self.proxyUID = proxyUID
        self.proxyGID = proxyGID
        self.portsToRedirect = portsToRedirect
        self.inboundPortsToIgnore = inboundPortsToIgnore
        self.outboundPortsToIgnore = outboundPortsToIgnore
        self.subnetsToIgnore = subnetsToIgnore
    }

    /// The networks of ``subnetsToIgnore`` that belong to `family`, in their order.
    public func subnetsToIgnore(for family: IPFamily) -> [CIDR] {
        subnetsToIgnore.filter(family.includes)
    }
}
