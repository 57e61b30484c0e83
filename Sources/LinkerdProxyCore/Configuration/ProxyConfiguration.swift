import LinkerdCore

/// The proxy's configuration, read from its `LINKERD2_PROXY_*` environment variables by
/// ``init(environment:)``, with the upstream proxy's names, defaults and value syntax.
///
/// Durations are a whole number and a unit (`ms`, `s`, `m`, `h`, `d`), as in `10s`; Booleans are exactly `true` or
/// `false`; lists are comma-separated, with whitespace and empty entries ignored. An empty variable counts as set: a
/// list reads it as the empty list and any other value refuses it, except where a field's documentation says
/// otherwise.
///
/// The proxy does not implement, and so does not read, these upstream variables: distributed tracing
/// (`LINKERD2_PROXY_TRACE_COLLECTOR_SVC_ADDR`, `_TRACE_COLLECTOR_SVC_NAME`, `_TRACE_ATTRIBUTES_PATH`,
/// `_TRACE_SERVICE_NAME`, `_TRACE_EXTRA_ATTRIBUTES`, `_TRACE_PROTOCOL`, `OTEL_RESOURCE_ATTRIBUTES`, `HOSTNAME`); SPIRE
/// identity (`LINKERD2_PROXY_IDENTITY_SPIRE_WORKLOAD_API_ADDRESS`, `_IDENTITY_SPIRE_SOCKET`,
/// `_IDENTITY_SPIRE_EXP_BACKOFF_{MIN,MAX,JITTER}`); the multicluster gateway
/// (`LINKERD2_PROXY_INBOUND_GATEWAY_SUFFIXES`); and DNS (`LINKERD2_PROXY_DNS_MIN_TTL`, `_DNS_MAX_TTL`,
/// `_RESOLV_CONF`). Like upstream, it also ignores what the injector sets for older proxies
/// (`LINKERD2_PROXY_INBOUND_PORTS_REQUIRE_IDENTITY`, `_INBOUND_PORTS_REQUIRE_TLS`) and the `_pod_*` and `_l5d_*`
/// helper variables.
public struct ProxyConfiguration: Hashable, Sendable {
    /// The exit status for an invalid configuration: 64, `EX_USAGE`, as the upstream proxy uses.
    public static let exitCode: Int32 = 64

    /// The addresses the proxy listens on.
    public var listeners: Listeners
    /// The control-plane services the proxy is a client of.
    public var controlPlane: ControlPlane
    /// The proxy's own identity and how it obtains its certificate.
    public var identity: Identity
    /// Traffic to the pod: accepted on the inbound listener and forwarded to the application.
    public var inbound: Inbound
    /// Traffic from the pod: accepted on the outbound listener and forwarded to its destinations.
    public var outbound: Outbound
    /// The flow-control windows of the proxy's HTTP/2 client connections, in both directions.
    public var http2Client: HTTP2Windows
    /// The admin server's behaviour and the shutdown it can trigger.
    public var admin: Admin
    /// The proxy's own logs and the access log.
    public var logging: Logging
    /// How many worker threads the proxy asks for.
    public var workers: Workers

    // MARK: Listeners

    /// The addresses the proxy binds.
    public struct Listeners: Hashable, Sendable {
        /// `LINKERD2_PROXY_INBOUND_LISTEN_ADDR`, default `0.0.0.0:4143`: where iptables redirects the pod's incoming
        /// connections, and where peers' proxies connect directly.
        public var inbound: IPSocketAddress
        /// `LINKERD2_PROXY_OUTBOUND_LISTEN_ADDRS` (one or two comma-separated addresses), or when that is unset the
        /// legacy single `LINKERD2_PROXY_OUTBOUND_LISTEN_ADDR`; default `127.0.0.1:4140`. Where iptables redirects
        /// the application's outgoing connections.
        public var outbound: [IPSocketAddress]
        /// `LINKERD2_PROXY_ADMIN_LISTEN_ADDR`, default `127.0.0.1:4191`: the admin server (metrics, readiness).
        public var admin: IPSocketAddress
        /// The tap server, bound only when `LINKERD2_PROXY_TAP_SVC_NAME` is set; nil otherwise.
        public var control: TapListener?
    }

    /// The control (tap) listener and the one client allowed to use it.
    public struct TapListener: Hashable, Sendable {
        /// `LINKERD2_PROXY_CONTROL_LISTEN_ADDR`, default `0.0.0.0:4190`.
        public var address: IPSocketAddress
        /// `LINKERD2_PROXY_TAP_SVC_NAME`: the identity a tap client must present.
        public var clientName: TLSServerName
    }

    // MARK: Control plane

    /// The control-plane services the proxy calls, and what it tells them.
    public struct ControlPlane: Hashable, Sendable {
        /// `LINKERD2_PROXY_DESTINATION_SVC_ADDR` and `_SVC_NAME`, required: service discovery and profiles.
        public var destination: ControlPlaneAddress
        /// `LINKERD2_PROXY_DESTINATION_CONTEXT`, default empty: the context token sent with every `GetDestination`,
        /// kept exactly as given.
        public var destinationContext: String
        /// `LINKERD2_PROXY_POLICY_SVC_ADDR` and `_SVC_NAME`, required: inbound and outbound policy.
        public var policy: ControlPlaneAddress
        /// `LINKERD2_PROXY_POLICY_WORKLOAD`, required: the workload, opaque to the proxy, sent to the policy service.
        public var policyWorkload: String
        /// `LINKERD2_PROXY_IDENTITY_SVC_ADDR` and `_SVC_NAME`, required: the certificate authority.
        public var identity: ControlPlaneAddress
        /// Limits on every control-plane response stream; not applied to loopback addresses.
        public var streamLimits: StreamLimits
        /// `LINKERD2_PROXY_DESTINATION_PROFILE_SUFFIXES`, default `svc.cluster.local.`: the names the proxy may look up
        /// profiles for. `.` allows every name; an empty value allows none.
        public var profileSuffixes: [DNSSuffix]
        /// `LINKERD2_PROXY_DESTINATION_PROFILE_NETWORKS`, default none: the IP addresses the proxy may look up
        /// profiles for.
        public var profileNetworks: [CIDR]
    }

    /// Limits on a control-plane response stream. Each is optional; when set, initial ≤ idle ≤ lifetime.
    public struct StreamLimits: Hashable, Sendable {
        /// `LINKERD2_PROXY_CONTROL_STREAM_INITIAL_TIMEOUT`, default none (an empty value is none): the longest wait
        /// for the first response.
        public var initialTimeout: Duration?
        /// `LINKERD2_PROXY_CONTROL_STREAM_IDLE_TIMEOUT`, default none (an empty value is none): the longest wait
        /// between responses.
        public var idleTimeout: Duration?
        /// `LINKERD2_PROXY_CONTROL_STREAM_LIFETIME`, default none (an empty value is none): the longest a stream is
        /// kept before it is restarted.
        public var lifetime: Duration?
    }

    // MARK: Identity

    /// The proxy's identity and how it is certified.
    ///
    /// The files are not checked here, as parsing does no I/O: at startup, the directory must hold non-empty
    /// `key.p8` and `csr.der`, and the token file must be non-empty.
    public struct Identity: Hashable, Sendable {
        /// `LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS`, required: the PEM certificates (the text itself, not a path) that
        /// peers' and the control plane's certificates must chain to.
        public var trustAnchorsPEM: String
        /// `LINKERD2_PROXY_IDENTITY_LOCAL_NAME`, or else `LINKERD2_PROXY_IDENTITY_SERVER_ID` and `_SERVER_NAME`, which
        /// must be equal; required. The name the proxy's certificate is issued for and the SNI it terminates.
        public var localName: TLSServerName
        /// `LINKERD2_PROXY_IDENTITY_DIR`, required: the directory holding `key.p8` and `csr.der`.
        public var directory: String
        /// `LINKERD2_PROXY_IDENTITY_TOKEN_FILE`, required: the service-account token file, read afresh for every
        /// certificate request.
        public var tokenFile: String
        /// `LINKERD2_PROXY_IDENTITY_MIN_REFRESH`, default `10s`: the shortest wait before renewing the certificate.
        public var minRefresh: Duration
        /// `LINKERD2_PROXY_IDENTITY_MAX_REFRESH`, default `24h`: the longest wait before renewing the certificate.
        public var maxRefresh: Duration
    }

    // MARK: Traffic

    /// Traffic arriving at the pod.
    public struct Inbound: Hashable, Sendable {
        /// `LINKERD2_PROXY_INBOUND_DETECT_TIMEOUT`, default `10s`: how long to wait for the first bytes of a
        /// connection when detecting TLS and HTTP.
        public var detectTimeout: Duration
        /// How accepted connections are handled.
        public var accept: Accept
        /// How connections to the application are made.
        public var connect: Connect
        /// The HTTP/2 server settings, from `LINKERD2_PROXY_INBOUND_SERVER_HTTP2_*`.
        public var http2Server: HTTP2Server
        /// `LINKERD2_PROXY_INBOUND_HTTP_QUEUE_CAPACITY`, default 10000, and `_HTTP_FAILFAST_TIMEOUT`, default `1s`:
        /// the request queue of each inbound target.
        public var httpQueue: Queue
        /// `LINKERD2_PROXY_INBOUND_MAX_IN_FLIGHT`, default 100000: requests beyond this many at once are refused.
        public var maxInFlightRequests: Int
        /// `LINKERD2_PROXY_MAX_IDLE_CONNS_PER_ENDPOINT` (no `INBOUND_` in the name), default 10000, and
        /// `LINKERD2_PROXY_INBOUND_HTTP1_CONNECTION_POOL_IDLE_TIMEOUT`, default `3s`.
        public var http1Pool: HTTP1Pool
        /// `LINKERD2_PROXY_INBOUND_DISCOVERY_IDLE_TIMEOUT`, default `90s`: how long unused discovery results and
        /// clients stay cached.
        public var discoveryIdleTimeout: Duration
        /// `LINKERD2_PROXY_INBOUND_DEFAULT_POLICY`, default `all-unauthenticated`: the policy of ports the policy
        /// service says nothing about.
        public var defaultPolicy: InboundDefaultPolicy
        /// `LINKERD2_PROXY_POLICY_CLUSTER_NETWORKS`, default none: the networks the `cluster-*` policies allow.
        public var clusterNetworks: [CIDR]
        /// `LINKERD2_PROXY_INBOUND_PORTS`, default none: the ports whose policy is watched from startup. The
        /// policy watcher should add the admin port, which upstream always watches.
        public var ports: PortList
        /// `LINKERD2_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION`, default none: the opaque ports, whose default
        /// policy skips protocol detection.
        public var opaquePorts: PortList
        /// `LINKERD2_PROXY_INBOUND_IPS`, default none (allow every address): the only original-destination
        /// addresses inbound connections may target.
        public var allowedIPs: [IPAddress]
        /// `LINKERD2_PROXY_DESTINATION_PROFILE_INITIAL_TIMEOUT`, default `500ms`: how long to wait for a profile
        /// before routing without one.
        public var profileInitialTimeout: Duration
        /// `LINKERD2_PROXY_INBOUND_METRICS_AUTHORITY_LABELS`, default false; only the value `unsafe` sets it: label
        /// inbound request metrics with the `:authority`.
        public var authorityLabels: Bool
    }

    /// Traffic leaving the pod.
    public struct Outbound: Hashable, Sendable {
        /// `LINKERD2_PROXY_OUTBOUND_DETECT_TIMEOUT`, default `10s`: how long to wait for the first bytes of a
        /// connection when detecting HTTP.
        public var detectTimeout: Duration
        /// How accepted connections are handled.
        public var accept: Accept
        /// How connections to destinations, and to non-loopback control-plane services, are made.
        public var connect: Connect
        /// The HTTP/2 server settings, from `LINKERD2_PROXY_OUTBOUND_SERVER_HTTP2_*`.
        public var http2Server: HTTP2Server
        /// `LINKERD2_PROXY_OUTBOUND_HTTP_QUEUE_CAPACITY`, default 10000, and `_HTTP_FAILFAST_TIMEOUT`, default `3s`:
        /// the request queue of each balancer.
        public var httpQueue: Queue
        /// `LINKERD2_PROXY_OUTBOUND_TCP_QUEUE_CAPACITY`, default 10000, and `_TCP_FAILFAST_TIMEOUT`, default `3s`:
        /// the connection queue of each balancer.
        public var tcpQueue: Queue
        /// `LINKERD2_PROXY_OUTBOUND_MAX_IN_FLIGHT`, default 100000: requests beyond this many at once are refused.
        public var maxInFlightRequests: Int
        /// `LINKERD2_PROXY_OUTBOUND_MAX_IDLE_CONNS_PER_ENDPOINT`, default 10000, and
        /// `LINKERD2_PROXY_OUTBOUND_HTTP1_CONNECTION_POOL_IDLE_TIMEOUT`, default `3s`.
        public var http1Pool: HTTP1Pool
        /// `LINKERD2_PROXY_OUTBOUND_DISCOVERY_IDLE_TIMEOUT`, default `5s`: how long unused discovery results,
        /// balancers and clients stay cached.
        public var discoveryIdleTimeout: Duration
        /// `LINKERD2_PROXY_INGRESS_MODE`, default false: route HTTP by `l5d-dst-override` or the host name instead of
        /// the original destination.
        public var ingressMode: Bool
        /// `LINKERD2_PROXY_OUTBOUND_DISABLE_INFORMATIONAL_HEADERS`, default ``ingressMode``: leave out
        /// `l5d-proxy-error` and `l5d-proxy-connection`.
        public var disableInformationalHeaders: Bool
        /// `LINKERD2_PROXY_OUTBOUND_METRICS_HOSTNAME_LABELS`, default false: label route metrics with the host name.
        public var hostnameLabels: Bool
    }

    /// How a listener treats the connections it accepts.
    public struct Accept: Hashable, Sendable {
        /// `LINKERD2_PROXY_{INBOUND,OUTBOUND}_ACCEPT_KEEPALIVE`, default none: the TCP keepalive idle time.
        public var keepalive: Duration?
        /// `LINKERD2_PROXY_{INBOUND,OUTBOUND}_ACCEPT_USER_TIMEOUT`, default none: `TCP_USER_TIMEOUT` (Linux).
        public var userTimeout: Duration?
        /// `LINKERD2_PROXY_{INBOUND,OUTBOUND}_TCP_LISTEN_BACKLOG`, default none (the system's default).
        public var listenBacklog: Int?
    }

    /// How the proxy opens connections.
    public struct Connect: Hashable, Sendable {
        /// `LINKERD2_PROXY_{INBOUND,OUTBOUND}_CONNECT_TIMEOUT`, default `300ms` inbound and `1s` outbound.
        public var timeout: Duration
        /// `LINKERD2_PROXY_{INBOUND,OUTBOUND}_CONNECT_KEEPALIVE`, default none: the TCP keepalive idle time.
        public var keepalive: Duration?
        /// `LINKERD2_PROXY_{INBOUND,OUTBOUND}_CONNECT_USER_TIMEOUT`, default none: `TCP_USER_TIMEOUT` (Linux).
        public var userTimeout: Duration?
        /// `LINKERD2_PROXY_{INBOUND,OUTBOUND}_CONNECT_EXP_BACKOFF_{MIN,MAX,JITTER}`, default `100ms`, `10s`
        /// inbound or `60s` outbound, and 0.1: the delay between reconnection attempts.
        public var backoff: Backoff
    }

    /// An exponential backoff: `min · 2ⁿ`, capped at `max`, plus a random jitter of up to `jitter` times that.
    public struct Backoff: Hashable, Sendable {
        /// `…_EXP_BACKOFF_MIN`: the first delay. Given together with ``max``.
        public var min: Duration
        /// `…_EXP_BACKOFF_MAX`: the longest delay; greater than zero and not shorter than ``min``.
        public var max: Duration
        /// `…_EXP_BACKOFF_JITTER`, from 0 to 100; 0 when ``min`` and ``max`` are given without it.
        public var jitter: Double
    }

    /// A bounded queue that fails requests waiting too long.
    public struct Queue: Hashable, Sendable {
        /// `…_QUEUE_CAPACITY`: the most entries waiting at once.
        public var capacity: Int
        /// `…_FAILFAST_TIMEOUT`: how long the queue may stay unable to make progress before it fails its entries.
        public var failfastTimeout: Duration
    }

    /// The HTTP/1 connection pool of each endpoint.
    public struct HTTP1Pool: Hashable, Sendable {
        /// The most idle connections kept per endpoint.
        public var maxIdlePerEndpoint: Int
        /// How long an idle connection is kept.
        public var idleTimeout: Duration
    }

    /// HTTP/2 flow-control windows, in bytes.
    public struct HTTP2Windows: Hashable, Sendable {
        /// `LINKERD2_PROXY_HTTP2_INITIAL_STREAM_WINDOW_SIZE` for clients, default 65535.
        public var initialStreamWindowSize: Int
        /// `LINKERD2_PROXY_HTTP2_INITIAL_CONNECTION_WINDOW_SIZE` for clients, default 1048576.
        public var initialConnectionWindowSize: Int
    }

    /// The settings of an HTTP/2 server, read from variables named `LINKERD2_PROXY_{INBOUND,OUTBOUND}_SERVER_HTTP2_*`.
    /// A limit left unset is the HTTP/2 library's default.
    public struct HTTP2Server: Hashable, Sendable {
        /// `…_KEEP_ALIVE_INTERVAL` and `…_KEEP_ALIVE_TIMEOUT`, given together; default none (no pings).
        public var keepAlive: HTTP2KeepAlive?
        /// `…_ADAPTIVE_FLOW_CONTROL=true` for adaptive windows; otherwise fixed windows from
        /// `…_INITIAL_STREAM_WINDOW_SIZE` and `…_INITIAL_CONNECTION_WINDOW_SIZE`, given together, default 65535 and
        /// 1048576.
        public var flowControl: HTTP2FlowControl
        /// `…_MAX_CONCURRENT_STREAMS`, default none.
        public var maxConcurrentStreams: Int?
        /// `…_MAX_FRAME_SIZE`, default none; from 16384 to 16777215.
        public var maxFrameSize: Int?
        /// `…_MAX_HEADER_LIST_SIZE`, default none.
        public var maxHeaderListSize: Int?
        /// `…_MAX_PENDING_ACCEPT_RESET_STREAMS`, default none.
        public var maxPendingAcceptResetStreams: Int?
        /// `…_MAX_SEND_BUF_SIZE`, default none: the most bytes buffered for sending per stream.
        public var maxSendBufferSize: Int?
    }

    /// HTTP/2 keepalive pings.
    public struct HTTP2KeepAlive: Hashable, Sendable {
        /// How often a ping is sent.
        public var interval: Duration
        /// How long to wait for its acknowledgement before closing the connection.
        public var timeout: Duration
    }

    /// How an HTTP/2 server sizes its flow-control windows.
    public enum HTTP2FlowControl: Hashable, Sendable {
        /// Windows that grow with the measured bandwidth-delay product.
        case adaptive
        /// Windows of fixed sizes.
        case fixed(HTTP2Windows)
    }

    /// The policy of inbound ports the policy service says nothing about.
    public enum InboundDefaultPolicy: String, Hashable, Sendable, CaseIterable {
        /// Refuse every connection.
        case deny
        /// Allow only meshed (mTLS) clients.
        case allAuthenticated = "all-authenticated"
        /// Allow every client.
        case allUnauthenticated = "all-unauthenticated"
        /// Allow every client, but report the connections a deny would have refused.
        case audit
        /// Allow only meshed clients from the cluster networks; needs `LINKERD2_PROXY_POLICY_CLUSTER_NETWORKS`.
        case clusterAuthenticated = "cluster-authenticated"
        /// Allow every client from the cluster networks; needs `LINKERD2_PROXY_POLICY_CLUSTER_NETWORKS`.
        case clusterUnauthenticated = "cluster-unauthenticated"

        /// Whether the policy is about the cluster networks, so that it needs them configured.
        public var needsClusterNetworks: Bool {
            self == .clusterAuthenticated || self == .clusterUnauthenticated
        }
    }

    // MARK: Admin, logging, workers

    /// The admin server's behaviour.
    public struct Admin: Hashable, Sendable {
        /// `LINKERD2_PROXY_METRICS_RETAIN_IDLE`, default `10m`: metric series not updated for this long are dropped.
        public var metricsRetainIdle: Duration
        /// `LINKERD2_PROXY_SHUTDOWN_ENDPOINT_ENABLED`, default false: serve `POST /shutdown` to localhost clients.
        public var shutdownEndpointEnabled: Bool
        /// `LINKERD2_PROXY_SHUTDOWN_GRACE_PERIOD`, default `120s`: how long connections may drain at shutdown.
        public var shutdownGracePeriod: Duration
    }

    /// The proxy's logs.
    public struct Logging: Hashable, Sendable {
        /// `LINKERD2_PROXY_LOG`, default `warn,linkerd=info,hickory=error` (also when empty): the log filter, in
        /// tracing's `EnvFilter` syntax (see ``LogFilter``). `off` disables logging.
        public var filter: LogFilter
        /// `LINKERD2_PROXY_LOG_FORMAT`: ``LogFormat/json`` for `json` in any case, ``LogFormat/plain`` otherwise.
        public var format: LogFormat
        /// `LINKERD2_PROXY_ACCESS_LOG`, `apache` or `json` in any case, default none (an empty value is none): the
        /// format of the inbound HTTP access log, written to standard error.
        public var accessLog: AccessLogFormat?

        /// Whether logging is on: false when ``filter`` is only `off`.
        public var isEnabled: Bool {
            filter.directives != [LogFilter.Directive(target: nil, level: .off)]
        }
    }

    /// How log lines are written.
    public enum LogFormat: String, Hashable, Sendable {
        /// Human-readable lines.
        case plain
        /// One JSON object per line.
        case json
    }

    /// How access-log lines are written.
    public enum AccessLogFormat: String, Hashable, Sendable, CaseIterable {
        /// Apache's Common Log Format.
        case apache
        /// One JSON object per line.
        case json
    }

    /// The worker-thread count the proxy asks for, and how it is capped.
    public struct Workers: Hashable, Sendable {
        /// `LINKERD2_PROXY_CORES_MIN`, or else `LINKERD2_PROXY_CORES`, default 1, at least 1: the requested number of
        /// worker threads. 1 means a single-threaded runtime.
        public var minimum: Int
        /// `LINKERD2_PROXY_CORES_MAX`, default none, at least 1: the most worker threads.
        public var maximum: Int?
        /// `LINKERD2_PROXY_CORES_MAX_RATIO`, default none, greater than 0: the most worker threads as a share of the
        /// available processors, rounded; used when ``maximum`` is unset.
        public var maximumRatio: Double?

        /// The number of worker threads to run on a machine with `availableProcessors` processors (at least 1).
        ///
        /// The cap is ``maximum``, else ``maximumRatio`` of the processors (when that rounds to at least 1), else 1;
        /// the result is the cap raised to ``minimum`` and then lowered to the processors available.
        public func count(availableProcessors: Int) -> Int {
            let available = Swift.max(availableProcessors, 1)
            var cap = 1
            if let maximum {
                cap = maximum
            } else if let maximumRatio, maximumRatio.isFinite {
                let scaled = Swift.min((Double(available) * maximumRatio).rounded(), Double(available))
                if scaled >= 1 {
                    cap = Int(scaled)
                }
            }
            return Swift.min(Swift.max(cap, minimum), available)
        }
    }
}
