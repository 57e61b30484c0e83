import Crypto
import KubeModel
import LinkerdCore

/// Everything the injector needs from the mesh's configuration: the Helm-style values of ConfigMap
/// `linkerd-config` (key `values`) and the trust anchors.
///
/// ``defaults`` holds upstream Linkerd's defaults (control-plane.md §6.1), with empty trust anchors.
/// ``init(valuesYAML:trustAnchorsPEM:)`` reads these values keys; every other key is ignored, and an absent or
/// `null` key keeps its default:
///
/// | Key | Type | Default |
/// | --- | --- | --- |
/// | `namespace` (ours: the control-plane namespace; our chart writes it) | string | `linkerd` |
/// | `clusterDomain` | string | `cluster.local` |
/// | `identityTrustDomain` | string | `""` → `clusterDomain` |
/// | `linkerdVersion` | string | ``LinkerdVersion/current`` |
/// | `imagePullPolicy` | string | `IfNotPresent` (default of the image pull policies below) |
/// | `proxy.image.name` / `version` / `pullPolicy` | string | `cr.l5d.io/linkerd/proxy` / `linkerdVersion` / `imagePullPolicy` |
/// | `proxy.ports.admin` / `control` / `inbound` / `outbound` | port | 4191 / 4190 / 4143 / 4140 |
/// | `proxy.uid` / `proxy.gid` | integer | 2102 / -1 (no group) |
/// | `proxy.logLevel` / `logFormat` / `logHTTPHeaders` | string | `warn,linkerd=info,hickory=error` / `plain` / `off` |
/// | `proxy.opaquePorts` | port list | `25,587,3306,4444,5432,6379,9300,11211` |
/// | `proxy.defaultInboundPolicy` | policy | `all-unauthenticated` |
/// | `proxy.nativeSidecar` / `await` / `enableShutdownEndpoint` | bool | true / true / false |
/// | `proxy.waitBeforeExitSeconds` | integer ≥ 0 | 0 |
/// | `proxy.resources.{cpu,memory,ephemeral-storage}.{request,limit}` | quantity (`""` = unset) | unset |
/// | `proxy.additionalEnv` | list of EnvVar objects | `[]` |
/// | `proxy.outboundConnectTimeout` / `inboundConnectTimeout` | string | `1000ms` / `100ms` |
/// | `proxy.outboundDiscoveryCacheUnusedTimeout` / `inboundDiscoveryCacheUnusedTimeout` | string | `5s` / `90s` |
/// | `proxy.disableOutboundProtocolDetectTimeout` / `disableInboundProtocolDetectTimeout` | bool | false |
/// | `proxy.requireIdentityOnInboundPorts` | port list | empty |
/// | `proxy.enableExternalProfiles` | bool | false |
/// | `proxy.metrics.hostnameLabels` | bool | false |
/// | `proxy.accessLog` / `proxy.shutdownGracePeriod` | string | unset |
/// | `proxyInit.iptablesMode` | `nft` or `legacy` | `nft` |
/// | `proxyInit.ignoreInboundPorts` / `ignoreOutboundPorts` | port list | `4567,4568` / `4567,4568` |
/// | `proxyInit.skipSubnets` | CIDR list | empty |
/// | `proxyInit.runAsRoot` / `privileged` | bool | false / false |
/// | `proxyInit.runAsUser` / `runAsGroup` | integer | 65534 / 65534 |
/// | `proxyInit.closeWaitTimeoutSecs` | integer ≥ 0 | 0 |
/// | `proxyInit.logLevel` / `logFormat` | string | unset |
/// | `cniEnabled` / `disableIPv6` | bool | false / true |
/// | `clusterNetworks` | CIDR list | `10.0.0.0/8,100.64.0.0/10,172.16.0.0/12,192.168.0.0/16,fd00::/8` |
/// | `identity.serviceAccountTokenProjection` | bool | true |
/// | `debugContainer.image.name` / `version` / `pullPolicy` | string | `cr.l5d.io/linkerd/debug` / `linkerdVersion` / `imagePullPolicy` |
///
/// A port is an integer from 1 to 65535. A port list or CIDR list is a comma-separated string (a port list may also
/// be a single integer).
public struct MeshConfiguration: Sendable, Hashable {
    /// The control-plane namespace (values key `namespace`).
    public var controlPlaneNamespace: String
    /// The cluster's DNS domain.
    public var clusterDomain: String
    /// The identity trust domain, already resolved: `identityTrustDomain`, or ``clusterDomain`` when empty.
    public var identityTrustDomain: String
    /// The mesh version, the default tag of the proxy and debug images.
    public var linkerdVersion: String
    /// The proxy image tag: `proxy.image.version`, else ``linkerdVersion``.
    public var proxyVersion: String
    /// The trust anchors (PEM), written inline into every proxy's environment.
    public var trustAnchorsPEM: String
    /// The proxy's settings (`proxy.*`).
    public var proxy: Proxy
    /// The init container's settings (`proxyInit.*`).
    public var proxyInit: ProxyInit
    /// Whether the CNI plugin configures the pod network: the injector then adds `linkerd-network-validator`
    /// instead of `linkerd-init`.
    public var cniEnabled: Bool
    /// Whether IPv6 is off: the proxy listens on IPv4 addresses only.
    public var disableIPv6: Bool
    /// The cluster's networks, as the comma-separated CIDR list the proxy reads.
    public var clusterNetworks: [CIDR]
    /// Whether proxies authenticate with a projected token (`identity.serviceAccountTokenProjection`).
    public var serviceAccountTokenProjection: Bool
    /// The image of the optional `linkerd-debug` container (`debugContainer.image.*`).
    public var debugImage: Image

    /// Lowercase hex SHA-256 of the bytes of ``trustAnchorsPEM``, the value of `linkerd.io/trust-root-sha256`.
    public var trustRootSHA256: String {
        SHA256.hash(data: Array(trustAnchorsPEM.utf8)).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }

    /// A container image: name, tag and pull policy.
    public struct Image: Sendable, Hashable {
        public var name: String
        public var version: String
        public var pullPolicy: String

        public init(name: String, version: String, pullPolicy: String) {
            self.name = name
            self.version = version
            self.pullPolicy = pullPolicy
        }

        /// `name:version`.
        public var reference: String { "\(name):\(version)" }
    }

    /// The proxy's four ports.
    public struct Ports: Sendable, Hashable {
        public var admin: Int = 4191
        public var control: Int = 4190
        public var inbound: Int = 4143
        public var outbound: Int = 4140

        public init() {}
    }

    /// Requests and limits for one resource; nil is unset.
    public struct ResourceConstraint: Sendable, Hashable {
        public var request: Quantity?
        public var limit: Quantity?

        public init(request: Quantity? = nil, limit: Quantity? = nil) {
            self.request = request
            self.limit = limit
        }
    }

    /// The proxy's resources (`proxy.resources`); also applied to the init container.
    public struct Resources: Sendable, Hashable {
        public var cpu = ResourceConstraint()
        public var memory = ResourceConstraint()
        public var ephemeralStorage = ResourceConstraint()

        public init() {}
    }

    /// The proxy's settings.
    public struct Proxy: Sendable, Hashable {
        public var imageName = "cr.l5d.io/linkerd/proxy"
        public var imagePullPolicy = "IfNotPresent"
        public var ports = Ports()
        public var uid: Int64 = 2102
        /// -1 leaves the group unset.
        public var gid: Int64 = -1
        public var logLevel = "warn,linkerd=info,hickory=error"
        public var logFormat = "plain"
        /// `off` hides HTTP headers and requests from the proxy's logs; `insecure` shows them.
        public var logHTTPHeaders = "off"
        public var opaquePorts = PortList(ports: 25, 587, 3306, 4444, 5432, 6379, 9300, 11211)
        public var defaultInboundPolicy = DefaultInboundPolicy.allUnauthenticated
        public var nativeSidecar = true
        public var await = true
        public var enableShutdownEndpoint = false
        public var waitBeforeExitSeconds: UInt64 = 0
        public var resources = Resources()
        /// Extra proxy environment variables: `EnvVar` objects, each with a string `name`, kept as JSON so that
        /// every field of them survives.
        public var additionalEnv: [JSONValue] = []
        public var outboundConnectTimeout = "1000ms"
        public var inboundConnectTimeout = "100ms"
        public var outboundDiscoveryCacheUnusedTimeout = "5s"
        public var inboundDiscoveryCacheUnusedTimeout = "90s"
        public var disableOutboundProtocolDetectTimeout = false
        public var disableInboundProtocolDetectTimeout = false
        public var requireIdentityOnInboundPorts: PortList = []
        public var enableExternalProfiles = false
        public var metricsHostnameLabels = false
        /// Empty: no access log.
        public var accessLog = ""
        /// Empty: the proxy's default.
        public var shutdownGracePeriod = ""

        public init() {}
    }

    /// The `linkerd-init` container's settings.
    public struct ProxyInit: Sendable, Hashable {
        /// `nft` or `legacy`.
        public var iptablesMode = "nft"
        public var ignoreInboundPorts = PortList(ports: 4567, 4568)
        public var ignoreOutboundPorts = PortList(ports: 4567, 4568)
        public var skipSubnets: [CIDR] = []
        public var runAsRoot = false
        public var privileged = false
        public var runAsUser: Int64 = 65534
        public var runAsGroup: Int64 = 65534
        /// 0: no `--timeout-close-wait-secs`.
        public var closeWaitTimeoutSecs: Int64 = 0
        /// Empty: proxy-init's default.
        public var logLevel = ""
        /// Empty: proxy-init's default.
        public var logFormat = ""

        public init() {}
    }

    /// Upstream Linkerd's defaults, with empty trust anchors.
    public static let defaults = MeshConfiguration(
        controlPlaneNamespace: "linkerd",
        clusterDomain: "cluster.local",
        identityTrustDomain: "cluster.local",
        linkerdVersion: LinkerdVersion.current,
        proxyVersion: LinkerdVersion.current,
        trustAnchorsPEM: "",
        proxy: Proxy(),
        proxyInit: ProxyInit(),
        cniEnabled: false,
        disableIPv6: true,
        clusterNetworks: defaultClusterNetworks,
        serviceAccountTokenProjection: true,
        debugImage: Image(name: "cr.l5d.io/linkerd/debug", version: LinkerdVersion.current, pullPolicy: "IfNotPresent")
    )

    /// Parses the `values` document of ConfigMap `linkerd-config` (YAML or JSON); absent keys keep ``defaults``.
    ///
    /// - Throws: ``MeshConfigurationError`` naming the key path and value when a value has the wrong type or is out
    ///   of range, or naming no key when the document is not YAML or not a mapping.
    public init(valuesYAML: String, trustAnchorsPEM: String) throws(MeshConfigurationError) {
        self = try ValuesParser(document: try ValuesDocument.parse(valuesYAML)).configuration()
        self.trustAnchorsPEM = trustAnchorsPEM
    }

    private init(
        controlPlaneNamespace: String, clusterDomain: String, identityTrustDomain: String, linkerdVersion: String,
        proxyVersion: String, trustAnchorsPEM: String, proxy: Proxy, proxyInit: ProxyInit, cniEnabled: Bool,
        disableIPv6: Bool, clusterNetworks: [CIDR], serviceAccountTokenProjection: Bool, debugImage: Image
    ) {
        self.controlPlaneNamespace = controlPlaneNamespace
        self.clusterDomain = clusterDomain
        self.identityTrustDomain = identityTrustDomain
        self.linkerdVersion = linkerdVersion
        self.proxyVersion = proxyVersion
        self.trustAnchorsPEM = trustAnchorsPEM
        self.proxy = proxy
        self.proxyInit = proxyInit
        self.cniEnabled = cniEnabled
        self.disableIPv6 = disableIPv6
        self.clusterNetworks = clusterNetworks
        self.serviceAccountTokenProjection = serviceAccountTokenProjection
        self.debugImage = debugImage
    }

    /// `10.0.0.0/8,100.64.0.0/10,172.16.0.0/12,192.168.0.0/16,fd00::/8`.
    static let defaultClusterNetworks: [CIDR] = {
        // A constant that parses; an empty list would only be reached if LinkerdCore's parser broke.
        (try? CIDR.parseList("10.0.0.0/8,100.64.0.0/10,172.16.0.0/12,192.168.0.0/16,fd00::/8")) ?? []
    }()
}

/// The proxy's policy for inbound connections that no Server or authorization policy covers.
public enum DefaultInboundPolicy: String, Sendable, Hashable, CaseIterable {
    case allUnauthenticated = "all-unauthenticated"
    case allAuthenticated = "all-authenticated"
    case clusterUnauthenticated = "cluster-unauthenticated"
    case clusterAuthenticated = "cluster-authenticated"
    case deny
    case audit

    /// The accepted values, comma-separated, for messages.
    static let allNames = allCases.map(\.rawValue).joined(separator: ", ")
}

/// A mesh configuration value that could not be used.
public struct MeshConfigurationError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The dotted path of the key, such as `proxy.ports.admin`; empty when the document as a whole is at fault.
    public var keyPath: String
    /// The offending value as JSON text, such as `"abc"` or `5.5`; empty when the document as a whole is at fault.
    public var value: String
    /// Why the value was rejected.
    public var reason: String

    public init(keyPath: String, value: String, reason: String) {
        self.keyPath = keyPath
        self.value = value
        self.reason = reason
    }

    /// `mesh configuration value proxy.uid=5.5 is invalid: expected an integer`, or
    /// `mesh configuration values are invalid: <reason>` for the whole document.
    public var description: String {
        if keyPath.isEmpty {
            return "mesh configuration values are invalid: \(reason)"
        }
        return "mesh configuration value \(keyPath)=\(value) is invalid: \(reason)"
    }
}

extension PortList {
    /// The list of the single ports `ports`, in that order.
    init(ports: UInt16...) {
        self.init(ports.map { PortRange($0) })
    }
}
