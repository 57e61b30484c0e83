import LinkerdCore

/// Where a control-plane service (destination, policy or identity) is reached, and the name it must prove.
///
/// Set by a pair of variables such as `LINKERD2_PROXY_DESTINATION_SVC_ADDR` (`host:port`, `ip:port` or
/// `[ipv6]:port`) and `LINKERD2_PROXY_DESTINATION_SVC_NAME`. A loopback address is spoken to in plaintext, so it needs
/// no name; any other address is spoken to over mTLS, and the name is both the identity the server's certificate must
/// carry and the SNI sent to it.
public struct ControlPlaneAddress: Hashable, Sendable, CustomStringConvertible {
    /// The host part of a control-plane address.
    public enum Host: Hashable, Sendable, CustomStringConvertible {
        /// An IP address, connected to directly.
        case ip(IPAddress)
        /// A DNS name exactly as written (a trailing dot, which keeps resolvers from trying search domains, is
        /// kept), resolved before connecting.
        case name(String)

        /// Whether the host is this machine: a loopback address (``IPAddress/isLoopback``), or the name `localhost`
        /// (with or without a trailing dot, in any case).
        public var isLoopback: Bool {
            switch self {
            case .ip(let address): address.isLoopback
            case .name(let name): ["localhost", "localhost."].contains(name.lowercased())
            }
        }

        /// The IP address or the name; an IPv6 address without brackets.
        public var description: String {
            switch self {
            case .ip(let address): address.description
            case .name(let name): name
            }
        }
    }

    /// The host to connect to.
    public let host: Host
    /// The port to connect to.
    public let port: UInt16
    /// The name the server must prove and the SNI to send; nil exactly when ``isLoopback``, as TLS is skipped then.
    public let serverName: TLSServerName?

    /// The address `host:port`, verified as `serverName` unless the host is loopback.
    ///
    /// A loopback host drops `serverName`, as the proxy never uses TLS to reach one. Returns nil when the host is not
    /// loopback and `serverName` is nil: such an address could not be verified.
    public init?(host: Host, port: UInt16, serverName: TLSServerName?) {
        if host.isLoopback {
            self.serverName = nil
        } else if let serverName {
            self.serverName = serverName
        } else {
            return nil
        }
        self.host = host
        self.port = port
    }

    /// Whether the host is this machine, so that the connection is plaintext. See ``Host/isLoopback``.
    public var isLoopback: Bool {
        host.isLoopback
    }

    /// `host:port`, with an IPv6 host in brackets.
    public var description: String {
        switch host {
        case .ip(.v6): "[\(host)]:\(port)"
        default: "\(host):\(port)"
        }
    }

    /// Parses `host:port`, `ip:port` or `[ipv6]:port` into its host and port.
    ///
    /// - Throws: ``ParseError`` when there is no `:` before the port, the port is not a decimal number from 0 to
    ///   65535, an IPv6 address is not in brackets, or the host is neither an IP address nor a DNS name.
    static func parseEndpoint(_ text: String) throws(ParseError) -> (host: Host, port: UInt16) {
        func failure(_ reason: String) -> ParseError {
            ParseError(value: text, expected: "address (host:port)", reason: reason)
        }
        let bracketed = text.hasPrefix("[")
        let (host, port) = try HostPortSyntax.split(text, failure: failure)
        // Bracketed hosts and dotted numbers can only be IP addresses, so their parse errors are the ones to report.
        if bracketed || (!host.isEmpty && HostPortSyntax.isDigitsAndDots(host)) {
            do throws(ParseError) {
                return (.ip(try IPAddress(parsing: host)), port)
            } catch {
                throw failure("the host \(host.quoted) is not an IP address: \(error.reason)")
            }
        }
        let absolute = host.hasSuffix(".") ? String(host.dropLast()) : host
        if let problem = DNSNameSyntax.problem(absolute) {
            throw failure("the host \(host.quoted) is neither an IP address nor a DNS name: \(problem)")
        }
        return (.name(host), port)
    }
}
