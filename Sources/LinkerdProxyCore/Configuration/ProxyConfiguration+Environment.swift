import LinkerdCore

extension ProxyConfiguration {
    /// Reads the configuration from `environment`, with the upstream proxy's variable names, defaults and rules (see
    /// each field for its variable and default).
    ///
    /// This is a pure function of the variables: it reads no files and resolves no names.
    ///
    /// - Throws: ``ProxyConfigurationError`` listing every problem found, not just the first: values that do not
    ///   parse, required variables that are unset, and rules that the values break together.
    public init(environment: some EnvironmentReader) throws(ProxyConfigurationError) {
        var reader = ConfigurationReader(environment)
        let listeners = reader.listeners()
        let controlPlane = reader.controlPlane()
        let identity = reader.identity()
        let inbound = reader.inbound()
        let outbound = reader.outbound()
        let http2Client = reader.http2ClientWindows()
        let admin = reader.admin()
        let logging = reader.logging()
        let workers = reader.workers()
        // Every read that yields nil records a problem, so the problems are never empty when this guard fails.
        guard reader.problems.isEmpty, let controlPlane, let identity else {
            throw ProxyConfigurationError(problems: reader.problems)
        }
        self.init(
            listeners: listeners,
            controlPlane: controlPlane,
            identity: identity,
            inbound: inbound,
            outbound: outbound,
            http2Client: http2Client,
            admin: admin,
            logging: logging,
            workers: workers
        )
    }
}

/// The HTTP/2 window sizes the proxy's own defaults use: the protocol's default stream window, and a 1 MiB connection
/// window (about 16 streams at capacity).
private let defaultWindows = ProxyConfiguration.HTTP2Windows(
    initialStreamWindowSize: 65_535,
    initialConnectionWindowSize: 1_048_576
)

/// HTTP/2 window sizes may not exceed 2³¹ − 1 bytes.
private let windowSizes = 0...2_147_483_647

/// The range of 32-bit unsigned settings.
private let uint32Values = 0...Int(UInt32.max)

/// The IPv4 address 0.0.0.0: every interface.
private let anyIPv4 = IPAddress.v4(0)

/// The IPv4 address 127.0.0.1.
private let loopbackIPv4 = IPAddress.v4(0x7F00_0001)

extension ConfigurationReader {
    // MARK: Listeners

    fileprivate mutating func listeners() -> ProxyConfiguration.Listeners {
        let inbound = read(
            "LINKERD2_PROXY_INBOUND_LISTEN_ADDR",
            default: IPSocketAddress(ip: anyIPv4, port: 4143),
            IPSocketAddress.init(parsing:)
        )
        let defaultOutbound = IPSocketAddress(ip: loopbackIPv4, port: 4140)
        let outbound: [IPSocketAddress]
        if isSet("LINKERD2_PROXY_OUTBOUND_LISTEN_ADDRS") {
            outbound =
                read("LINKERD2_PROXY_OUTBOUND_LISTEN_ADDRS", ProxyValueSyntax.listenAddresses) ?? [defaultOutbound]
        } else {
            outbound = [
                read("LINKERD2_PROXY_OUTBOUND_LISTEN_ADDR", default: defaultOutbound, IPSocketAddress.init(parsing:))
            ]
        }
        let admin = read(
            "LINKERD2_PROXY_ADMIN_LISTEN_ADDR",
            default: IPSocketAddress(ip: loopbackIPv4, port: 4191),
            IPSocketAddress.init(parsing:)
        )
        let control = read(
            "LINKERD2_PROXY_CONTROL_LISTEN_ADDR",
            default: IPSocketAddress(ip: anyIPv4, port: 4190),
            IPSocketAddress.init(parsing:)
        )
        let tapClient = read("LINKERD2_PROXY_TAP_SVC_NAME", TLSServerName.init(parsing:))
        return ProxyConfiguration.Listeners(
            inbound: inbound,
            outbound: outbound,
            admin: admin,
            control: tapClient.map { ProxyConfiguration.TapListener(address: control, clientName: $0) }
        )
    }

    // MARK: Control plane

    fileprivate mutating func controlPlane() -> ProxyConfiguration.ControlPlane? {
        let destination = controlPlaneAddress(
            "LINKERD2_PROXY_DESTINATION_SVC",
            unconfigured: "no destination service configured"
        )
        let destinationContext = value("LINKERD2_PROXY_DESTINATION_CONTEXT") ?? ""
        let policy = controlPlaneAddress("LINKERD2_PROXY_POLICY_SVC", unconfigured: "no policy service configured")
        let policyWorkload = required("LINKERD2_PROXY_POLICY_WORKLOAD", ProxyValueSyntax.nonEmpty)
        let identity = controlPlaneAddress(
            "LINKERD2_PROXY_IDENTITY_SVC",
            unconfigured: "no identity service configured"
        )
        let streamLimits = self.streamLimits()
        let profileSuffixes = read(
            "LINKERD2_PROXY_DESTINATION_PROFILE_SUFFIXES",
            default: [.name("svc.cluster.local")],
            ProxyValueSyntax.suffixes
        )
        let profileNetworks = read(
            "LINKERD2_PROXY_DESTINATION_PROFILE_NETWORKS",
            default: [],
            ProxyValueSyntax.networks
        )
        guard let destination, let policy, let policyWorkload, let identity else {
            return nil
        }
        return ProxyConfiguration.ControlPlane(
            destination: destination,
            destinationContext: destinationContext,
            policy: policy,
            policyWorkload: policyWorkload,
            identity: identity,
            streamLimits: streamLimits,
            profileSuffixes: profileSuffixes,
            profileNetworks: profileNetworks
        )
    }

    /// The service at `<prefix>_ADDR`, which is required, verified as `<prefix>_NAME` unless it is loopback.
    private mutating func controlPlaneAddress(_ prefix: String, unconfigured: String) -> ControlPlaneAddress? {
        let addressName = "\(prefix)_ADDR"
        let serverNameName = "\(prefix)_NAME"
        let endpoint = required(addressName, reason: unconfigured, ControlPlaneAddress.parseEndpoint)
        let serverName = read(serverNameName, TLSServerName.init(parsing:))
        guard let endpoint else {
            return nil
        }
        if let address = ControlPlaneAddress(host: endpoint.host, port: endpoint.port, serverName: serverName) {
            return address
        }
        if !isSet(serverNameName) {
            record(
                .missing(
                    name: serverNameName,
                    reason: "\(assignment(addressName)) is not a loopback address, so the proxy needs the name the "
                        + "server must prove"
                )
            )
        }
        return nil
    }

    private mutating func streamLimits() -> ProxyConfiguration.StreamLimits {
        let initialName = "LINKERD2_PROXY_CONTROL_STREAM_INITIAL_TIMEOUT"
        let idleName = "LINKERD2_PROXY_CONTROL_STREAM_IDLE_TIMEOUT"
        let lifetimeName = "LINKERD2_PROXY_CONTROL_STREAM_LIFETIME"
        let initial = optionalDuration(initialName, emptyIsUnset: true)
        let idle = optionalDuration(idleName, emptyIsUnset: true)
        let lifetime = optionalDuration(lifetimeName, emptyIsUnset: true)
        requireOrder((initialName, initial), notLongerThan: (idleName, idle))
        requireOrder((initialName, initial), notLongerThan: (lifetimeName, lifetime))
        requireOrder((idleName, idle), notLongerThan: (lifetimeName, lifetime))
        return ProxyConfiguration.StreamLimits(initialTimeout: initial, idleTimeout: idle, lifetime: lifetime)
    }

    // MARK: Identity

    fileprivate mutating func identity() -> ProxyConfiguration.Identity? {
        let trustAnchorsPEM = required("LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS", ProxyValueSyntax.certificatesPEM)
        let disabledName = "LINKERD2_PROXY_IDENTITY_DISABLED"
        if let disabled = value(disabledName), !disabled.isEmpty {
            record(
                .violation(
                    names: [disabledName],
                    message: "\(disabledName) is no longer supported. Identity is must be enabled."
                )
            )
        }
        let localName = self.localName()
        let directory = required("LINKERD2_PROXY_IDENTITY_DIR", ProxyValueSyntax.nonEmpty)
        let tokenFile = required("LINKERD2_PROXY_IDENTITY_TOKEN_FILE", ProxyValueSyntax.nonEmpty)
        let minRefreshName = "LINKERD2_PROXY_IDENTITY_MIN_REFRESH"
        let maxRefreshName = "LINKERD2_PROXY_IDENTITY_MAX_REFRESH"
        let minRefresh = duration(minRefreshName, default: .seconds(10))
        let maxRefresh = duration(maxRefreshName, default: .seconds(24 * 60 * 60))
        requireOrder((minRefreshName, minRefresh), notLongerThan: (maxRefreshName, maxRefresh))
        guard let trustAnchorsPEM, let localName, let directory, let tokenFile else {
            return nil
        }
        return ProxyConfiguration.Identity(
            trustAnchorsPEM: trustAnchorsPEM,
            localName: localName,
            directory: directory,
            tokenFile: tokenFile,
            minRefresh: minRefresh,
            maxRefresh: maxRefresh
        )
    }

    /// `LINKERD2_PROXY_IDENTITY_LOCAL_NAME` when it is set (even empty), or else the server id and server name, which
    /// must both be set and equal.
    private mutating func localName() -> TLSServerName? {
        let localNameName = "LINKERD2_PROXY_IDENTITY_LOCAL_NAME"
        let serverIDName = "LINKERD2_PROXY_IDENTITY_SERVER_ID"
        let serverNameName = "LINKERD2_PROXY_IDENTITY_SERVER_NAME"
        if isSet(localNameName) {
            return read(localNameName, TLSServerName.init(parsing:))
        }
        let serverID = read(serverIDName, TLSServerName.init(parsing:))
        let serverName = read(serverNameName, TLSServerName.init(parsing:))
        switch (isSet(serverIDName), isSet(serverNameName)) {
        case (false, false):
            record(
                .missing(
                    name: localNameName,
                    reason: "it names the proxy's identity (or set \(serverIDName) and \(serverNameName) to one name)"
                )
            )
        case (true, false):
            record(.missing(name: serverNameName, reason: "\(serverIDName) is set, and the two must be equal"))
        case (false, true):
            record(.missing(name: serverIDName, reason: "\(serverNameName) is set, and the two must be equal"))
        case (true, true):
            if let serverID, let serverName, serverID != serverName {
                record(
                    .violation(
                        names: [serverIDName, serverNameName],
                        message: "linkerd identity requires a TLS Id and server name to be the same: "
                            + "\(assignment(serverIDName)) differs from \(assignment(serverNameName))"
                    )
                )
            }
        }
        return serverID == serverName ? serverID : nil
    }

    // MARK: Traffic

    fileprivate mutating func inbound() -> ProxyConfiguration.Inbound {
        let detectTimeout = duration("LINKERD2_PROXY_INBOUND_DETECT_TIMEOUT", default: .seconds(10))
        let accept = self.accept("INBOUND")
        let connect = self.connect(
            "INBOUND",
            timeout: .milliseconds(300),
            backoff: ProxyConfiguration.Backoff(min: .milliseconds(100), max: .seconds(10), jitter: 0.1)
        )
        let http2Server = self.http2Server("INBOUND")
        let httpQueue = queue("LINKERD2_PROXY_INBOUND_HTTP", failfastTimeout: .seconds(1))
        let maxInFlightRequests = count("LINKERD2_PROXY_INBOUND_MAX_IN_FLIGHT") ?? 100_000
        let http1Pool = ProxyConfiguration.HTTP1Pool(
            maxIdlePerEndpoint: count("LINKERD2_PROXY_MAX_IDLE_CONNS_PER_ENDPOINT") ?? 10_000,
            idleTimeout: duration("LINKERD2_PROXY_INBOUND_HTTP1_CONNECTION_POOL_IDLE_TIMEOUT", default: .seconds(3))
        )
        let discoveryIdleTimeout = duration("LINKERD2_PROXY_INBOUND_DISCOVERY_IDLE_TIMEOUT", default: .seconds(90))
        let clusterNetworksName = "LINKERD2_PROXY_POLICY_CLUSTER_NETWORKS"
        let clusterNetworks = read(clusterNetworksName, ProxyValueSyntax.networks)
        // A cluster-* policy is refused for want of networks only when the networks are known to be absent, not when
        // they failed to parse (which is reported on its own).
        let lacksClusterNetworks = clusterNetworks?.isEmpty ?? !isSet(clusterNetworksName)
        let defaultPolicy = read(
            "LINKERD2_PROXY_INBOUND_DEFAULT_POLICY",
            default: ProxyConfiguration.InboundDefaultPolicy.allUnauthenticated
        ) { text throws(ParseError) in
            guard let policy = ProxyConfiguration.InboundDefaultPolicy(rawValue: text) else {
                let names = ProxyConfiguration.InboundDefaultPolicy.allCases.map(\.rawValue)
                throw ParseError(
                    value: text,
                    expected: "default policy",
                    reason: "expected one of \(names.joined(separator: ", "))"
                )
            }
            guard !(policy.needsClusterNetworks && lacksClusterNetworks) else {
                throw ParseError(
                    value: text,
                    expected: "default policy",
                    reason: "\(text) needs the networks in \(clusterNetworksName), which is unset or empty"
                )
            }
            return policy
        }
        let ports = read("LINKERD2_PROXY_INBOUND_PORTS", default: [], ProxyValueSyntax.ports)
        let opaquePorts = read(
            "LINKERD2_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION",
            default: [],
            ProxyValueSyntax.ports
        )
        let allowedIPs = read("LINKERD2_PROXY_INBOUND_IPS", default: [], ProxyValueSyntax.ipAddresses)
        let profileInitialTimeout = duration(
            "LINKERD2_PROXY_DESTINATION_PROFILE_INITIAL_TIMEOUT",
            default: .milliseconds(500)
        )
        let authorityLabels = read("LINKERD2_PROXY_INBOUND_METRICS_AUTHORITY_LABELS", default: false) {
            text throws(ParseError) in
            guard text == "unsafe" else {
                throw ParseError(value: text, expected: "label setting", reason: "expected \"unsafe\"")
            }
            return true
        }
        return ProxyConfiguration.Inbound(
            detectTimeout: detectTimeout,
            accept: accept,
            connect: connect,
            http2Server: http2Server,
            httpQueue: httpQueue,
            maxInFlightRequests: maxInFlightRequests,
            http1Pool: http1Pool,
            discoveryIdleTimeout: discoveryIdleTimeout,
            defaultPolicy: defaultPolicy,
            clusterNetworks: clusterNetworks ?? [],
            ports: ports,
            opaquePorts: opaquePorts,
            allowedIPs: allowedIPs,
            profileInitialTimeout: profileInitialTimeout,
            authorityLabels: authorityLabels
        )
    }

    fileprivate mutating func outbound() -> ProxyConfiguration.Outbound {
        let detectTimeout = duration("LINKERD2_PROXY_OUTBOUND_DETECT_TIMEOUT", default: .seconds(10))
        let accept = self.accept("OUTBOUND")
        let connect = self.connect(
            "OUTBOUND",
            timeout: .seconds(1),
            backoff: ProxyConfiguration.Backoff(min: .milliseconds(100), max: .seconds(60), jitter: 0.1)
        )
        let http2Server = self.http2Server("OUTBOUND")
        let httpQueue = queue("LINKERD2_PROXY_OUTBOUND_HTTP", failfastTimeout: .seconds(3))
        let tcpQueue = queue("LINKERD2_PROXY_OUTBOUND_TCP", failfastTimeout: .seconds(3))
        let maxInFlightRequests = count("LINKERD2_PROXY_OUTBOUND_MAX_IN_FLIGHT") ?? 100_000
        let http1Pool = ProxyConfiguration.HTTP1Pool(
            maxIdlePerEndpoint: count("LINKERD2_PROXY_OUTBOUND_MAX_IDLE_CONNS_PER_ENDPOINT") ?? 10_000,
            idleTimeout: duration("LINKERD2_PROXY_OUTBOUND_HTTP1_CONNECTION_POOL_IDLE_TIMEOUT", default: .seconds(3))
        )
        let discoveryIdleTimeout = duration("LINKERD2_PROXY_OUTBOUND_DISCOVERY_IDLE_TIMEOUT", default: .seconds(5))
        let ingressMode = bool("LINKERD2_PROXY_INGRESS_MODE", default: false)
        let disableInformationalHeaders = bool(
            "LINKERD2_PROXY_OUTBOUND_DISABLE_INFORMATIONAL_HEADERS",
            default: ingressMode
        )
        let hostnameLabels = bool("LINKERD2_PROXY_OUTBOUND_METRICS_HOSTNAME_LABELS", default: false)
        return ProxyConfiguration.Outbound(
            detectTimeout: detectTimeout,
            accept: accept,
            connect: connect,
            http2Server: http2Server,
            httpQueue: httpQueue,
            tcpQueue: tcpQueue,
            maxInFlightRequests: maxInFlightRequests,
            http1Pool: http1Pool,
            discoveryIdleTimeout: discoveryIdleTimeout,
            ingressMode: ingressMode,
            disableInformationalHeaders: disableInformationalHeaders,
            hostnameLabels: hostnameLabels
        )
    }

    /// The accept settings of `direction` (`INBOUND` or `OUTBOUND`).
    private mutating func accept(_ direction: String) -> ProxyConfiguration.Accept {
        ProxyConfiguration.Accept(
            keepalive: optionalDuration("LINKERD2_PROXY_\(direction)_ACCEPT_KEEPALIVE"),
            userTimeout: optionalDuration("LINKERD2_PROXY_\(direction)_ACCEPT_USER_TIMEOUT"),
            listenBacklog: count("LINKERD2_PROXY_\(direction)_TCP_LISTEN_BACKLOG", in: uint32Values)
        )
    }

    /// The connect settings of `direction` (`INBOUND` or `OUTBOUND`), with its default timeout and backoff.
    private mutating func connect(
        _ direction: String,
        timeout: Duration,
        backoff: ProxyConfiguration.Backoff
    ) -> ProxyConfiguration.Connect {
        let prefix = "LINKERD2_PROXY_\(direction)_CONNECT"
        return ProxyConfiguration.Connect(
            timeout: duration("\(prefix)_TIMEOUT", default: timeout),
            keepalive: optionalDuration("\(prefix)_KEEPALIVE"),
            userTimeout: optionalDuration("\(prefix)_USER_TIMEOUT"),
            backoff: self.backoff("\(prefix)_EXP_BACKOFF", default: backoff)
        )
    }

    /// The backoff of `<prefix>_MIN`, `_MAX` and `_JITTER`, or `defaultBackoff` when none is set. MIN and MAX go
    /// together; JITTER is optional, and 0 when left out.
    private mutating func backoff(
        _ prefix: String,
        default defaultBackoff: ProxyConfiguration.Backoff
    ) -> ProxyConfiguration.Backoff {
        let minName = "\(prefix)_MIN"
        let maxName = "\(prefix)_MAX"
        let jitterName = "\(prefix)_JITTER"
        let min = optionalDuration(minName)
        let max = optionalDuration(maxName)
        let jitter = read(jitterName, ProxyValueSyntax.jitter)
        guard isSet(minName) || isSet(maxName) else {
            if isSet(jitterName) {
                record(
                    .violation(
                        names: [jitterName, minName, maxName],
                        message: "\(jitterName) needs \(minName) and \(maxName), which are not set"
                    )
                )
            }
            return defaultBackoff
        }
        guard requireTogether([minName, maxName]), let min, let max else {
            return defaultBackoff
        }
        if max == .zero {
            record(.invalid(name: maxName, value: value(maxName) ?? "", reason: "the maximum backoff must be above 0"))
        }
        requireOrder((minName, min), notLongerThan: (maxName, max))
        return ProxyConfiguration.Backoff(min: min, max: max, jitter: jitter ?? 0)
    }

    /// The queue of `<prefix>_QUEUE_CAPACITY`, default 10000, and `<prefix>_FAILFAST_TIMEOUT`.
    private mutating func queue(_ prefix: String, failfastTimeout: Duration) -> ProxyConfiguration.Queue {
        ProxyConfiguration.Queue(
            capacity: count("\(prefix)_QUEUE_CAPACITY") ?? 10_000,
            failfastTimeout: duration("\(prefix)_FAILFAST_TIMEOUT", default: failfastTimeout)
        )
    }

    /// The HTTP/2 server settings of `direction` (`INBOUND` or `OUTBOUND`).
    private mutating func http2Server(_ direction: String) -> ProxyConfiguration.HTTP2Server {
        let prefix = "LINKERD2_PROXY_\(direction)_SERVER_HTTP2"
        let intervalName = "\(prefix)_KEEP_ALIVE_INTERVAL"
        let timeoutName = "\(prefix)_KEEP_ALIVE_TIMEOUT"
        let interval = optionalDuration(intervalName)
        let timeout = optionalDuration(timeoutName)
        var keepAlive: ProxyConfiguration.HTTP2KeepAlive?
        if requireTogether([intervalName, timeoutName]), let interval, let timeout {
            keepAlive = ProxyConfiguration.HTTP2KeepAlive(interval: interval, timeout: timeout)
        }
        let adaptive = bool("\(prefix)_ADAPTIVE_FLOW_CONTROL", default: false)
        let streamWindowName = "\(prefix)_INITIAL_STREAM_WINDOW_SIZE"
        let connectionWindowName = "\(prefix)_INITIAL_CONNECTION_WINDOW_SIZE"
        let streamWindow = count(streamWindowName, in: windowSizes)
        let connectionWindow = count(connectionWindowName, in: windowSizes)
        var windows = defaultWindows
        if requireTogether([streamWindowName, connectionWindowName]), let streamWindow, let connectionWindow {
            windows = ProxyConfiguration.HTTP2Windows(
                initialStreamWindowSize: streamWindow,
                initialConnectionWindowSize: connectionWindow
            )
        }
        return ProxyConfiguration.HTTP2Server(
            keepAlive: keepAlive,
            flowControl: adaptive ? .adaptive : .fixed(windows),
            maxConcurrentStreams: count("\(prefix)_MAX_CONCURRENT_STREAMS", in: uint32Values),
            maxFrameSize: count("\(prefix)_MAX_FRAME_SIZE", in: 16_384...16_777_215),
            maxHeaderListSize: count("\(prefix)_MAX_HEADER_LIST_SIZE", in: uint32Values),
            maxPendingAcceptResetStreams: count("\(prefix)_MAX_PENDING_ACCEPT_RESET_STREAMS"),
            maxSendBufferSize: count("\(prefix)_MAX_SEND_BUF_SIZE", in: uint32Values)
        )
    }

    fileprivate mutating func http2ClientWindows() -> ProxyConfiguration.HTTP2Windows {
        ProxyConfiguration.HTTP2Windows(
            initialStreamWindowSize: count("LINKERD2_PROXY_HTTP2_INITIAL_STREAM_WINDOW_SIZE", in: windowSizes)
                ?? defaultWindows.initialStreamWindowSize,
            initialConnectionWindowSize: count("LINKERD2_PROXY_HTTP2_INITIAL_CONNECTION_WINDOW_SIZE", in: windowSizes)
                ?? defaultWindows.initialConnectionWindowSize
        )
    }

    // MARK: Admin, logging, workers

    fileprivate mutating func admin() -> ProxyConfiguration.Admin {
        ProxyConfiguration.Admin(
            metricsRetainIdle: duration("LINKERD2_PROXY_METRICS_RETAIN_IDLE", default: .seconds(10 * 60)),
            shutdownEndpointEnabled: bool("LINKERD2_PROXY_SHUTDOWN_ENDPOINT_ENABLED", default: false),
            shutdownGracePeriod: duration("LINKERD2_PROXY_SHUTDOWN_GRACE_PERIOD", default: .seconds(120))
        )
    }

    fileprivate mutating func logging() -> ProxyConfiguration.Logging {
        let filter =
            read("LINKERD2_PROXY_LOG", emptyIsUnset: true) { text throws(ParseError) in try LogFilter(parsing: text) }
            ?? .proxyDefault
        let isJSON = value("LINKERD2_PROXY_LOG_FORMAT")?.lowercased() == "json"
        let format: ProxyConfiguration.LogFormat = isJSON ? .json : .plain
        let accessLog = read("LINKERD2_PROXY_ACCESS_LOG", emptyIsUnset: true) { text throws(ParseError) in
            guard let format = ProxyConfiguration.AccessLogFormat(rawValue: text.lowercased()) else {
                throw ParseError(value: text, expected: "access log format", reason: "expected \"apache\" or \"json\"")
            }
            return format
        }
        return ProxyConfiguration.Logging(filter: filter, format: format, accessLog: accessLog)
    }

    fileprivate mutating func workers() -> ProxyConfiguration.Workers {
        let positive = ProxyValueSyntax.count(in: 1...Int.max)
        let minimum = read("LINKERD2_PROXY_CORES_MIN", positive)
        let cores = read("LINKERD2_PROXY_CORES", positive)
        return ProxyConfiguration.Workers(
            minimum: minimum ?? cores ?? 1,
            maximum: read("LINKERD2_PROXY_CORES_MAX", positive),
            maximumRatio: read("LINKERD2_PROXY_CORES_MAX_RATIO", ProxyValueSyntax.ratio)
        )
    }
}
