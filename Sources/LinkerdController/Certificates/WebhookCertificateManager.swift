import Foundation
import KubeModel
import LinkerdCore
import Logging
import Metrics
import ServiceLifecycle
import X509

/// Keeps the webhook's serving certificate when none is mounted: the proxy injector acts as its own CA.
///
/// Each `reconcile()`:
/// 1. reads Secret `linkerd-proxy-injector-k8s-tls` in the control-plane namespace and lets
///    `WebhookCertificateAuthority` judge it; creates it when missing, rewrites it when invalid or due for renewal
///    (see that type for the layout, lifetimes and how the old CA stays trusted during a rollover). Every write is
///    conditional (create, or update at the read `resourceVersion`), so of replicas racing, one wins and the others
///    get `409 AlreadyExists`/`Conflict`, re-read and adopt the winner's material;
/// 2. loads the Secret's leaf into the `TLSCredentialStore` (only when it changed);
/// 3. makes every webhook's `clientConfig.caBundle` in MutatingWebhookConfiguration
///    `linkerd-proxy-injector-webhook-config` equal base64(`ca.crt`), with a JSON patch sent only when one differs.
///    A missing configuration is logged and retried after `retryInterval`.
///
/// `run()` reconciles at start and then every `refreshInterval` (earlier when the certificate falls due), but after
/// `retryInterval` when a step failed or when the reconcile changed something (wrote the Secret, loaded a leaf,
/// patched a `caBundle`): a change may be another replica's or another tool's work in progress (a Secret replaced
/// under us, a `caBundle` reset), and the next look should come before replicas have long served diverging
/// material. Once a reconcile changes nothing, `refreshInterval` applies again. It sleeps on the injected `WallClock`, until cancelled or shut down
/// gracefully. Every replica runs it; no leader election is needed because the writes are conditional.
///
/// Metrics: gauge `proxy_injector_webhook_certificate_expiry_seconds` (seconds until the served leaf expires, set
/// at every reconcile) and counter `proxy_injector_webhook_certificate_renewals_total` (label `reason`: `missing`,
/// `invalid`, `leaf_expiring`, `ca_expiring`), counted by the replica whose write succeeded.
public final class WebhookCertificateManager: ServiceLifecycle.Service, Sendable {
    public struct Configuration: Sendable {
        /// Issues and judges the certificates; its `namespace` is where the Secret lives.
        public var authority: WebhookCertificateAuthority
        public var secretName: String
        public var webhookConfigurationName: String
        /// Time between reconciles when all is well.
        public var refreshInterval: Duration
        /// Time before the next attempt after a failure or a missing webhook configuration.
        public var retryInterval: Duration
        /// Conflicting writes tolerated within one reconcile before it fails (and is retried later).
        public var maximumConflicts: Int

        public init(
            namespace: String,
            secretName: String = "linkerd-proxy-injector-k8s-tls",
            webhookConfigurationName: String = "linkerd-proxy-injector-webhook-config",
            refreshInterval: Duration = .seconds(3600),
            retryInterval: Duration = .seconds(10),
            maximumConflicts: Int = 5
        ) {
            self.authority = WebhookCertificateAuthority(namespace: namespace)
            self.secretName = secretName
            self.webhookConfigurationName = webhookConfigurationName
            self.refreshInterval = refreshInterval
            self.retryInterval = retryInterval
            self.maximumConflicts = maximumConflicts
        }

        var namespace: String { authority.namespace }
    }

    /// What one `reconcile()` did.
    public struct ReconcileResult: Sendable, Hashable {
        /// Why new material was issued and written, or nil when none was.
        public var renewal: WebhookCertificateRenewalReason?
        /// Whether the Secret was created or updated (renewal, or only dropping an expired earlier CA).
        public var secretWritten: Bool
        /// Whether the store received a new leaf.
        public var storeUpdated: Bool
        /// Whether the MutatingWebhookConfiguration exists.
        public var webhookConfigurationFound: Bool
        /// Names of the webhooks whose `caBundle` was patched.
        public var patchedWebhooks: [String]
        /// When the Secret's material falls due for renewal.
        public var renewalDate: Date

        /// Whether the Secret was written, the store loaded or a `caBundle` patched.
        public var changedAnything: Bool {
            secretWritten || storeUpdated || !patchedWebhooks.isEmpty
        }
    }

    public let configuration: Configuration
    private let api: any KubeAPI
    private let store: TLSCredentialStore
    private let clock: any WallClock
    private let logger: Logger
    private let expiryGauge: Gauge
    /// By `WebhookCertificateRenewalReason.label`.
    private let renewalCounters: [String: Counter]

    public init(
        api: any KubeAPI,
        store: TLSCredentialStore,
        configuration: Configuration,
        clock: any WallClock = SystemWallClock(),
        metricsFactory: any MetricsFactory = MetricsSystem.factory,
        logger: Logger = Logger(label: "linkerd.proxy-injector.webhook-certificate")
    ) {
        self.api = api
        self.store = store
        self.configuration = configuration
        self.clock = clock
        var logger = logger
        logger[metadataKey: "secret"] = "\(configuration.namespace)/\(configuration.secretName)"
        self.logger = logger
        expiryGauge = Gauge(label: "proxy_injector_webhook_certificate_expiry_seconds", factory: metricsFactory)
        renewalCounters = Dictionary(
            uniqueKeysWithValues: WebhookCertificateRenewalReason.labels.map { label in
                let counter = Counter(
                    label: "proxy_injector_webhook_certificate_renewals_total", dimensions: [("reason", label)],
                    factory: metricsFactory)
                return (label, counter)
            })
    }

    /// Reconciles now and periodically until cancelled or shut down gracefully; failures are logged and retried.
    public func run() async throws {
        do {
            try await cancelWhenGracefulShutdown { try await self.loop() }
        } catch is CancellationError {
            return
        }
    }

    private func loop() async throws {
        while !Task.isCancelled {
            let wake: Date
            do {
                let result = try await reconcile()
                let settled = result.webhookConfigurationFound && !result.changedAnything
                let interval = settled ? configuration.refreshInterval : configuration.retryInterval
                wake = min(clock.now().addingTimeInterval(interval.inSeconds), result.renewalDate)
            } catch  where Task.isCancelled {
                throw CancellationError()
            } catch {
                logger.error("webhook certificate reconcile failed; retrying", metadata: ["error": "\(error)"])
                wake = clock.now().addingTimeInterval(configuration.retryInterval.inSeconds)
            }
            // At least a second, so a renewal date in the past (a misconfigured lifetime) cannot spin the loop.
            try await clock.sleep(until: max(wake, clock.now().addingTimeInterval(1)))
        }
    }

    /// One pass: Secret, store, then `caBundle`. Throws `KubeError` when the API fails (other than the handled
    /// conflicts and a missing webhook configuration), and `WebhookCertificateManagerError`.
    @discardableResult
    public func reconcile() async throws -> ReconcileResult {
        let (bundle, renewal, written) = try await ensureSecret()
        if written {
            logger.info(
                "wrote webhook certificate Secret",
                metadata: [
                    "reason": "\(renewal?.description ?? "normalising: expired CAs dropped or material re-encoded")",
                    "notAfter": "\(bundle.leafCertificate.notValidAfter)",
                ])
        }
        if let renewal {
            renewalCounters[renewal.label]?.increment()
        }

        let storeUpdated = store.current?.leaf != bundle.leafCertificate
        if storeUpdated {
            try store.update(certificateChainPEM: try bundle.certificatePEM, privateKeyPEM: try bundle.privateKeyPEM)
        }
        expiryGauge.record(bundle.leafCertificate.notValidAfter.timeIntervalSince(clock.now()))

        let patched = try await ensureCABundle(Data(try bundle.caBundlePEM.utf8).base64EncodedString())
        return ReconcileResult(
            renewal: renewal,
            secretWritten: written,
            storeUpdated: storeUpdated,
            webhookConfigurationFound: patched != nil,
            patchedWebhooks: patched ?? [],
            renewalDate: configuration.authority.renewalDate(of: bundle)
        )
    }

    /// Brings the Secret to valid material; returns it, why it was issued (nil when kept) and whether it was
    /// written.
    private func ensureSecret() async throws -> (WebhookCertificateBundle, WebhookCertificateRenewalReason?, Bool) {
        let authority = configuration.authority
        for _ in 0...configuration.maximumConflicts {
            var secret = try await readSecret()
            if let existing = secret, existing.type != WebhookCertificateAuthority.secretType {
                // A Secret's type is immutable: the only way to fix it is to recreate it.
                logger.warning(
                    "Secret has the wrong type; recreating it",
                    metadata: ["type": "\(existing.type ?? "<none>")"])
                try await ignoringNotFound {
                    try await api.delete(
                        Secret.self, namespace: configuration.namespace, name: configuration.secretName)
                }
                secret = nil
            }
            let now = clock.now()
            let assessment = authority.assess(secretData: secret?.data, now: now)
            let bundle = try authority.resolve(assessment, now: now)
            let desired = try bundle.secretData
            do {
                if var secret {
                    // Keys this manager does not own are kept.
                    let merged = (secret.data ?? [:]).merging(desired) { _, new in new }
                    guard merged != secret.data else { return (bundle, nil, false) }
                    secret.data = merged
                    _ = try await api.update(secret)
                } else {
                    _ = try await api.create(makeSecret(data: desired))
                }
                return (bundle, assessment.renewalReason, true)
            } catch let error as KubeError where error.code == .alreadyExists || error.code == .conflict {
                logger.info("another replica wrote the Secret first; reading it again", metadata: ["error": "\(error)"])
            }
        }
        throw WebhookCertificateManagerError.tooManyConflicts(
            secret: "\(configuration.namespace)/\(configuration.secretName)",
            attempts: configuration.maximumConflicts + 1)
    }

    private func readSecret() async throws -> Secret? {
        do {
            return try await api.get(Secret.self, namespace: configuration.namespace, name: configuration.secretName)
        } catch let error as KubeError where error.code == .notFound {
            return nil
        }
    }

    private func makeSecret(data: [String: String]) -> Secret {
        let metadata = ObjectMeta(
            name: configuration.secretName,
            namespace: configuration.namespace,
            labels: [
                "linkerd.io/control-plane-component": "proxy-injector",
                "linkerd.io/control-plane-ns": configuration.namespace,
            ]
        )
        return Secret(metadata: metadata, type: WebhookCertificateAuthority.secretType, data: data)
    }

    /// Patches the `caBundle` of every webhook that differs; returns their names, or nil when the configuration
    /// does not exist.
    private func ensureCABundle(_ caBundle: String) async throws -> [String]? {
        let webhookConfiguration: MutatingWebhookConfiguration
        do {
            webhookConfiguration = try await api.get(
                MutatingWebhookConfiguration.self, name: configuration.webhookConfigurationName)
        } catch let error as KubeError where error.code == .notFound {
            logger.warning(
                "MutatingWebhookConfiguration not found; retrying later",
                metadata: ["name": "\(configuration.webhookConfigurationName)"])
            return nil
        }
        var operations: [JSONPatch.Operation] = []
        var patched: [String] = []
        for (index, webhook) in (webhookConfiguration.webhooks ?? []).enumerated()
        where webhook.clientConfig.caBundle != caBundle {
            // The `test` makes the patch fail instead of hitting the wrong webhook if the list changed meanwhile.
            operations.append(.test(path: "/webhooks/\(index)/name", value: .string(webhook.name)))
            operations.append(.add(path: "/webhooks/\(index)/clientConfig/caBundle", value: .string(caBundle)))
            patched.append(webhook.name)
        }
        guard !operations.isEmpty else { return [] }
        let _: MutatingWebhookConfiguration = try await api.patch(
            MutatingWebhookConfiguration.self, name: configuration.webhookConfigurationName,
            patch: .json(JSONPatch(operations)))
        logger.info("patched caBundle of the webhook configuration", metadata: ["webhooks": "\(patched)"])
        return patched
    }

    private func ignoringNotFound(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let error as KubeError where error.code == .notFound {
            return
        }
    }
}

/// Why `WebhookCertificateManager.reconcile()` gave up.
public enum WebhookCertificateManagerError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Every write of the Secret lost a race with another writer.
    case tooManyConflicts(secret: String, attempts: Int)

    public var description: String {
        switch self {
        case .tooManyConflicts(let secret, let attempts):
            "gave up writing Secret \(secret) after \(attempts) conflicting attempts"
        }
    }
}
