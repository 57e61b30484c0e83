import Foundation
import KubeModel
import LinkerdController
import LinkerdCore
import LinkerdIdentity
import Logging
import Metrics
import NIOPosix
import Prometheus
import ServiceLifecycle

/// The `linkerd-identity` process, assembled from `Settings`, an API server and a clock, so the executable and the
/// tests start exactly the same thing:
/// - `IssuerWatcher`: the trust anchors and the issuer, loaded at start (a failure ends the process with the file at
///   fault) and reloaded when the mounted Secret changes;
/// - `IdentityServer`: Certify over gRPC with TLS (its own certificate, issued by the issuer), bound only once a
///   SelfSubjectAccessReview shows it may create TokenReviews (`TokenReviewPermission`; denied ends the process);
/// - `AdminServer`: `/metrics`, `/ping`, and `/ready` once the issuer is loaded and the gRPC server is serving.
///
/// Events (`IssuerUpdated`, `IssuerUpdateSkipped`, `IssuerValidationFailed`) are about the Deployment
/// `linkerd-identity` in the control-plane namespace.
public struct IdentityController: Sendable {
    public struct Settings: Sendable {
        /// The gRPC address (`--addr`).
        public var host: String = "0.0.0.0"
        public var port: Int = 8080
        /// The admin address (`--admin-addr`).
        public var adminHost: String = "0.0.0.0"
        public var adminPort: Int = 9990
        /// The mounted issuer Secret (`--issuer`).
        public var issuerDirectory: String = "/var/run/linkerd/identity/issuer"
        /// The mounted trust-anchor bundle (`--trust-anchors`).
        public var trustAnchorsPath: String = "/var/run/linkerd/identity/trust-roots/ca-bundle.crt"
        /// `--identity-trust-domain`.
        public var trustDomain: String = "cluster.local"
        /// `--controller-namespace`.
        public var controlPlaneNamespace: String = "linkerd"
        /// `--identity-issuance-lifetime` and `--identity-clock-skew-allowance`.
        public var issuance: IssuanceSettings = IssuanceSettings()
        /// `--plaintext` (loopback only).
        public var plaintext: Bool = false
        /// How often the issuer directory is checked.
        public var issuerPollInterval: Duration = .seconds(10)
        /// The deadline of one Certify call.
        public var certify: CertifyService.Configuration = CertifyService.Configuration()
        /// The largest Certify request.
        public var maximumRequestBytes: Int = 64 * 1024
        /// How the startup TokenReview permission check retries when the API server cannot answer it.
        public var permissionCheck: TokenReviewPermission.Retry = TokenReviewPermission.Retry()

        public init() {}

        /// Both servers on 127.0.0.1 with free ports (see `server.waitUntilBound()`, `admin.waitUntilBound()`).
        public static func loopback(issuerDirectory: String, trustAnchorsPath: String) -> Settings {
            var settings = Settings()
            settings.host = "127.0.0.1"
            settings.port = 0
            settings.adminHost = "127.0.0.1"
            settings.adminPort = 0
            settings.issuerDirectory = issuerDirectory
            settings.trustAnchorsPath = trustAnchorsPath
            return settings
        }
    }

    public let settings: Settings
    public let registry: PrometheusCollectorRegistry
    public let authority: IdentityAuthority
    public let watcher: IssuerWatcher
    public let server: IdentityServer
    public let admin: AdminServer

    /// - Throws: `ParseError` for a namespace or trust domain that makes no identity name;
    ///   `IdentityServerError` for plaintext on a non-loopback address.
    public init(
        settings: Settings, api: any KubeAPI, clock: any WallClock = SystemWallClock(),
        registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(), logger: Logger,
        eventLoopGroup: MultiThreadedEventLoopGroup = .singleton
    ) throws {
        self.settings = settings
        self.registry = registry
        let metrics = PrometheusMetricsFactory(registry: registry)
        let authority = try IdentityAuthority(
            controlPlaneNamespace: settings.controlPlaneNamespace, trustDomain: settings.trustDomain,
            tokenReviewer: TokenReviewer(api: api), settings: settings.issuance)
        self.authority = authority
        let events = EventRecorder(api: api, component: "linkerd-identity", clock: clock, logger: logger)
        let target = ObjectReference(
            apiVersion: "apps/v1", kind: "Deployment", namespace: settings.controlPlaneNamespace,
            name: "linkerd-identity")
        let service = CertifyService(
            authority: authority, configuration: settings.certify, events: events, eventTarget: target, clock: clock,
            metricsFactory: metrics, logger: logger)
        let server = try IdentityServer(
            configuration: .init(
                host: settings.host, port: settings.port, plaintext: settings.plaintext,
                maximumRequestBytes: settings.maximumRequestBytes),
            service: service, authority: authority,
            certificate: try ServerCertificate(
                controlPlaneNamespace: settings.controlPlaneNamespace, trustDomain: settings.trustDomain,
                settings: settings.issuance),
            permission: TokenReviewPermission(
                api: api, retry: settings.permissionCheck, clock: clock, logger: logger),
            clock: clock, logger: logger, eventLoopGroup: eventLoopGroup)
        self.server = server
        watcher = IssuerWatcher(
            issuerDirectory: settings.issuerDirectory, trustAnchorsPath: settings.trustAnchorsPath,
            authority: authority, pollInterval: settings.issuerPollInterval, events: events, eventTarget: target,
            clock: clock, metricsFactory: metrics, logger: logger,
            onUpdate: { issuer in server.issuerUpdated(issuer, now: clock.now()) })
        admin = AdminServer(
            configuration: .init(host: settings.adminHost, port: settings.adminPort), registry: registry,
            isReady: { authority.issuer != nil && server.isServing }, logger: logger, eventLoopGroup: eventLoopGroup)
    }

    /// Everything to run, in one `ServiceGroup` (the executable adds signal handling).
    public var services: [any ServiceLifecycle.Service] {
        [watcher, server, admin]
    }
}
