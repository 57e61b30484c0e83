import Foundation
import KubeModel
import KubeRuntime
import LinkerdCore
import LinkerdInject
import Logging
import Metrics
import NIOCore
import NIOPosix
import NIOSSL
import Prometheus
import ServiceLifecycle

/// The `linkerd-controller` process, assembled: everything it runs, built from `Settings`, an API server and a
/// clock, so the executable and the end-to-end tests start exactly the same thing.
///
/// Every replica runs:
/// - `WebhookServer`, the proxy injector on HTTPS (8443), answering from the `MeshConfigurationSource` (the mounted
///   values and trust roots, re-read when they change) and a namespace `Reflector`'s cache;
/// - the serving certificate: `MountedCertificateWatcher` when `tls.crt` exists in `tlsDirectory` (cert-manager,
///   Helm), otherwise `WebhookCertificateManager` (its own CA, the Secret, the webhook's `caBundle`);
/// - `AdminServer` (9995): `/metrics`, `/ping`, and `/ready` once a serving certificate is loaded.
///
/// Only the leader (a Lease in the control-plane namespace) runs the `MeshAuditor`, the reconcile loop that reports
/// and, where opted in, restarts pods left without a proxy or with an outdated one.
public struct ProxyInjectorController: Sendable {
    public struct Settings: Sendable {
        /// The control-plane namespace (`--controller-namespace`).
        public var controlPlaneNamespace: String = "linkerd"
        /// The webhook's listening address (`--addr`).
        public var webhookHost: String = "0.0.0.0"
        public var webhookPort: Int = 8443
        /// The admin server's listening address (`--admin-addr`).
        public var adminHost: String = "0.0.0.0"
        public var adminPort: Int = 9995
        /// The mounted `values` of ConfigMap `linkerd-config` (`--values`).
        public var valuesPath: String = "/var/run/linkerd/config/values"
        /// The mounted trust-anchor bundle (`--trust-roots`).
        public var trustRootsPath: String = "/var/run/linkerd/identity/trust-roots/ca-bundle.crt"
        /// Where a mounted serving certificate would be (`--tls-dir`); without `tls.crt` there, the controller
        /// issues its own.
        public var tlsDirectory: String = MountedCertificateWatcher.defaultDirectory
        /// TLS 1.3 unless configured otherwise (`--min-tls-version`).
        public var minimumTLSVersion: TLSVersion = .tlsv13
        /// This replica's name in the leader-election Lease; nil means `POD_NAME` from the environment (the
        /// manifests set it from `metadata.name`), else the host name.
        public var identity: String?
        /// How often the self-managed certificate is checked.
        public var certificateRefreshInterval: Duration = .seconds(3600)
        /// How often a mounted certificate is checked for changes.
        public var certificatePollInterval: Duration = .seconds(10)
        /// The mesh auditor's settings.
        public var audit: MeshAuditor.Configuration = MeshAuditor.Configuration()

        public init() {}

        /// Settings for one machine (tests, the demo, load tests): both servers on 127.0.0.1 with free ports (see
        /// `webhook.waitUntilBound()`), the mesh configuration in `directory` (`values`, `ca-bundle.crt`), no
        /// mounted certificate (so the controller issues its own), and a fixed leader identity.
        public static func loopback(directory: URL, identity: String) -> Settings {
            var settings = Settings()
            settings.webhookHost = "127.0.0.1"
            settings.webhookPort = 0
            settings.adminHost = "127.0.0.1"
            settings.adminPort = 0
            settings.valuesPath = directory.appendingPathComponent("values").path
            settings.trustRootsPath = directory.appendingPathComponent("ca-bundle.crt").path
            settings.tlsDirectory = directory.appendingPathComponent("no-mounted-tls").path
            settings.identity = identity
            return settings
        }
    }

    public let settings: Settings
    /// The Prometheus registry `/metrics` serves; every component's metrics are created in it.
    public let registry: PrometheusCollectorRegistry
    public let credentials: TLSCredentialStore
    public let webhook: WebhookServer
    public let admin: AdminServer
    public let configuration: MeshConfigurationSource
    private let namespaces: Reflector<Namespace>
    private let certificates: any ServiceLifecycle.Service
    private let leaderElected: LeaderElectedServices

    public init(
        settings: Settings, api: any KubeAPI, clock: any WallClock = SystemWallClock(),
        registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(), logger: Logger,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        self.settings = settings
        self.registry = registry
        let metrics = PrometheusMetricsFactory(registry: registry)
        let credentials = TLSCredentialStore(minimumTLSVersion: settings.minimumTLSVersion)
        self.credentials = credentials
        let configuration = MeshConfigurationSource(
            valuesPath: settings.valuesPath, trustRootsPath: settings.trustRootsPath, logger: logger,
            metricsFactory: metrics)
        self.configuration = configuration
        namespaces = Reflector(watcher: Watcher<Namespace>(api: api, clock: clock, logger: logger))
        let events = EventRecorder(api: api, component: "linkerd-proxy-injector", clock: clock, logger: logger)
        let owners = OwnerResolver(api: api)
        let handler = AdmissionHandler(
            configuration: { try configuration.current() },
            namespaces: NamespaceAnnotationLookup(store: namespaces.store, api: api), owners: owners, events: events,
            metricsFactory: metrics, logger: logger, clock: clock)
        webhook = WebhookServer(
            configuration: .init(host: settings.webhookHost, port: settings.webhookPort), credentials: credentials,
            handler: handler, logger: logger, eventLoopGroup: eventLoopGroup)
        admin = AdminServer(
            configuration: .init(host: settings.adminHost, port: settings.adminPort), registry: registry,
            isReady: { credentials.sslContext != nil }, logger: logger, eventLoopGroup: eventLoopGroup)

        let mountedCertificate = URL(fileURLWithPath: settings.tlsDirectory).appendingPathComponent("tls.crt").path
        if FileManager.default.fileExists(atPath: mountedCertificate) {
            certificates = MountedCertificateWatcher(
                directory: settings.tlsDirectory, store: credentials, pollInterval: settings.certificatePollInterval,
                clock: clock, logger: logger)
        } else {
            certificates = WebhookCertificateManager(
                api: api, store: credentials,
                configuration: .init(
                    namespace: settings.controlPlaneNamespace,
                    refreshInterval: settings.certificateRefreshInterval),
                clock: clock, metricsFactory: metrics, logger: logger)
        }

        let auditor = MeshAuditor(
            api: api, meshConfiguration: { try configuration.current() }, configuration: settings.audit,
            clock: clock, metricsFactory: metrics, logger: logger)
        let elector = LeaderElector(
            api: api,
            configuration: .init(
                leaseName: "linkerd-proxy-injector", namespace: settings.controlPlaneNamespace,
                identity: settings.identity ?? Self.defaultIdentity()),
            clock: clock, metricsFactory: metrics, logger: logger)
        leaderElected = LeaderElectedServices(elector: elector, services: [auditor])
    }

    private static func defaultIdentity() -> String {
        if let podName = ProcessInfo.processInfo.environment["POD_NAME"], !podName.isEmpty {
            return podName
        }
        return ProcessInfo.processInfo.hostName
    }

    /// Everything to run, in one `ServiceGroup` (the executable adds signal handling).
    public var services: [any ServiceLifecycle.Service] {
        [namespaces, certificates, webhook, admin, leaderElected]
    }
}
