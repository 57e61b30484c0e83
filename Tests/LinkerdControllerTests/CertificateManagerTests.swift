import Foundation
import KubeClient
import KubeModel
import KubeTestServer
import LinkerdController
import LinkerdTestSupport
import Prometheus
import Synchronization
import Testing
import X509

@Suite("WebhookCertificateManager")
struct CertificateManagerTests {
    static let secretName = "linkerd-proxy-injector-k8s-tls"
    static let webhookConfigurationName = "linkerd-proxy-injector-webhook-config"
    static let webhookNames = ["linkerd-proxy-injector.linkerd.io", "second.linkerd.io"]
    static let day: Duration = .seconds(86_400)

    @Test("creates the Secret, serves its leaf, patches every caBundle, then does nothing while all is current")
    func createThenIdle() async throws {
        try await withServerAndClient { server, client in
            try seed(server, webhookConfiguration: true)
            let registry = PrometheusCollectorRegistry()
            let store = TLSCredentialStore()
            let manager = makeManager(client, store: store, clock: ManualClock(), registry: registry)

            let first = try await manager.reconcile()
            #expect(first.renewal == .missing)
            #expect(first.secretWritten && first.storeUpdated && first.webhookConfigurationFound)
            #expect(first.patchedWebhooks == Self.webhookNames)

            let secret = try await readSecret(client)
            #expect(secret.type == "kubernetes.io/tls")
            #expect(secret.metadata.labels?["linkerd.io/control-plane-component"] == "proxy-injector")
            let bundle = try storedBundle(secret)
            #expect(store.current?.leaf == bundle.leafCertificate)
            #expect(isSigned(bundle.leafCertificate, by: bundle.caCertificate))
            #expect(try dnsNames(of: bundle.leafCertificate).contains(injectorHost))
            let caBundles = try await readCABundles(client)
            #expect(caBundles == [secret.data?["ca.crt"], secret.data?["ca.crt"]])
            #expect(try certificates(inPEM: unbase64(caBundles.first ?? nil) ?? "") == [bundle.caCertificate])

            let exposition = emit(registry)
            #expect(exposition.contains(#"proxy_injector_webhook_certificate_renewals_total{reason="missing"} 1"#))
            #expect(metric("proxy_injector_webhook_certificate_expiry_seconds", in: exposition) == Double(90 * 86_400))

            let before = server.requestLog.count
            let second = try await manager.reconcile()
            #expect(second.renewal == nil)
            #expect(!second.secretWritten && !second.storeUpdated && second.patchedWebhooks.isEmpty)
            #expect(second.webhookConfigurationFound)
            #expect(second.renewalDate == first.renewalDate)
            let writes = server.requestLog[before...].filter { $0.method != "GET" }
            #expect(writes.isEmpty, "a current Secret and caBundle cause no write: \(writes)")
            #expect(store.current?.leaf == bundle.leafCertificate)
        }
    }

    @Test("renews the leaf under the same CA, rotates the CA keeping the old one trusted, then drops it")
    func renewal() async throws {
        try await withServerAndClient { server, client in
            try seed(server, webhookConfiguration: true)
            let clock = ManualClock()
            let registry = PrometheusCollectorRegistry()
            let store = TLSCredentialStore()
            let manager = makeManager(client, store: store, clock: clock, registry: registry)
            try await manager.reconcile()
            let original = try storedBundle(try await readSecret(client))
            let originalCABundle = try await readCABundles(client)

            // 61 days: 29 of 90 left, less than a third: a new leaf, same CA, caBundle untouched.
            clock.advance(by: Self.day * 61)
            let leafRenewal = try await manager.reconcile()
            guard case .leafExpiring = leafRenewal.renewal else {
                Issue.record("expected a leaf renewal, got \(String(describing: leafRenewal.renewal))")
                return
            }
            #expect(leafRenewal.patchedWebhooks.isEmpty)
            let renewed = try storedBundle(try await readSecret(client))
            #expect(renewed.caCertificate == original.caCertificate)
            #expect(renewed.leafCertificate != original.leafCertificate)
            #expect(store.current?.leaf == renewed.leafCertificate)
            #expect(try await readCABundles(client) == originalCABundle)

            // 340 days: the CA has 25 days left: new CA and leaf; ca.crt and caBundle hold the new CA and the old.
            clock.advance(by: Self.day * 279)
            let rotation = try await manager.reconcile()
            guard case .authorityExpiring = rotation.renewal else {
                Issue.record("expected a CA rotation, got \(String(describing: rotation.renewal))")
                return
            }
            #expect(rotation.patchedWebhooks == Self.webhookNames)
            let rotated = try storedBundle(try await readSecret(client))
            #expect(rotated.caCertificate != original.caCertificate)
            #expect(rotated.previousCACertificates == [original.caCertificate])
            #expect(isSigned(rotated.leafCertificate, by: rotated.caCertificate))
            #expect(store.current?.leaf == rotated.leafCertificate)
            let rotatedCABundle = try #require(try await readCABundles(client).first ?? nil)
            #expect(
                try certificates(inPEM: unbase64(rotatedCABundle) ?? "") == [
                    rotated.caCertificate, original.caCertificate,
                ])

            // 366 days: the old CA has expired and leaves ca.crt and the caBundle; the leaf stays.
            clock.advance(by: Self.day * 26)
            let pruning = try await manager.reconcile()
            #expect(pruning.renewal == nil)
            #expect(pruning.secretWritten && !pruning.storeUpdated)
            #expect(pruning.patchedWebhooks == Self.webhookNames)
            let pruned = try storedBundle(try await readSecret(client))
            #expect(pruned.previousCACertificates.isEmpty)
            #expect(pruned.leafCertificate == rotated.leafCertificate)
            let prunedCABundle = try #require(try await readCABundles(client).first ?? nil)
            #expect(try certificates(inPEM: unbase64(prunedCABundle) ?? "") == [rotated.caCertificate])

            let exposition = emit(registry)
            #expect(
                exposition.contains(#"proxy_injector_webhook_certificate_renewals_total{reason="leaf_expiring"} 1"#))
            #expect(exposition.contains(#"proxy_injector_webhook_certificate_renewals_total{reason="ca_expiring"} 1"#))
            let remaining = rotated.leafCertificate.notValidAfter.timeIntervalSince(clock.now())
            #expect(metric("proxy_injector_webhook_certificate_expiry_seconds", in: exposition) == remaining)
        }
    }

    @Test("an invalid Secret is replaced, keeping keys it does not own; one of the wrong type is recreated")
    func replacesInvalid() async throws {
        try await withServerAndClient { server, client in
            try seed(server, webhookConfiguration: true)
            let store = TLSCredentialStore()
            let manager = makeManager(client, store: store, clock: ManualClock())
            let garbage = Secret(
                metadata: ObjectMeta(name: Self.secretName, namespace: "linkerd"), type: "kubernetes.io/tls",
                data: ["tls.crt": base64("garbage"), "tls.key": base64("garbage"), "extra": base64("keep me")])
            try server.put(garbage)

            let result = try await manager.reconcile()
            guard case .invalid(let problem) = result.renewal else {
                Issue.record("expected an invalid-Secret renewal, got \(String(describing: result.renewal))")
                return
            }
            #expect(problem == "key tls.crt does not hold valid PEM: no PEM block")
            let replaced = try await readSecret(client)
            #expect(replaced.data?["extra"] == base64("keep me"))
            let bundle = try storedBundle(replaced)
            #expect(store.current?.leaf == bundle.leafCertificate)
            #expect(try await readCABundles(client).first == replaced.data?["ca.crt"])

            try server.put(
                Secret(metadata: ObjectMeta(name: Self.secretName, namespace: "linkerd"), type: "Opaque", data: [:]))
            let recreated = try await manager.reconcile()
            #expect(recreated.renewal == .missing)
            #expect(try await readSecret(client).type == "kubernetes.io/tls")
            #expect(store.current?.leaf == (try storedBundle(try await readSecret(client))).leafCertificate)
        }
    }

    @Test("a replica that loses the race to create or to replace the Secret adopts the winner's material")
    func concurrentReplicas() async throws {
        for existing in [false, true] {
            try await withServerAndClient { server, client in
                try seed(server, webhookConfiguration: true)
                if existing {
                    try server.put(
                        Secret(
                            metadata: ObjectMeta(name: Self.secretName, namespace: "linkerd"),
                            type: "kubernetes.io/tls",
                            data: ["tls.crt": base64("stale")]))
                }
                let clock = ManualClock()
                let winnerStore = TLSCredentialStore()
                let winner = makeManager(client, store: winnerStore, clock: clock)
                // The winner reconciles just before the loser's write reaches the server.
                let racing = RacingAPI(base: client) { try await winner.reconcile() }
                let loserStore = TLSCredentialStore()
                let loser = makeManager(racing, store: loserStore, clock: clock)

                let result = try await loser.reconcile()
                #expect(racing.raced, "the winner wrote first")
                #expect(result.renewal == nil, "existing: \(existing)")
                #expect(!result.secretWritten)
                #expect(result.patchedWebhooks.isEmpty, "the winner already patched the caBundle")
                let bundle = try storedBundle(try await readSecret(client))
                #expect(loserStore.current?.leaf == bundle.leafCertificate)
                #expect(winnerStore.current?.leaf == bundle.leafCertificate)
                #expect(try await readCABundles(client).first == (try await readSecret(client)).data?["ca.crt"])
            }
        }
    }

    @Test("run() serves at once, retries a missing webhook configuration after retryInterval, stops when cancelled")
    func runLoop() async throws {
        try await withServerAndClient { server, client in
            try seed(server, webhookConfiguration: false)
            let clock = ManualClock()
            let store = TLSCredentialStore()
            var configuration = WebhookCertificateManager.Configuration(namespace: "linkerd")
            configuration.retryInterval = .seconds(10)
            let manager = WebhookCertificateManager(
                api: client, store: store, configuration: configuration, clock: clock)

            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await manager.run() }
                try await eventually("the leaf served") { store.sslContext != nil }
                try await clock.waitForSleepers(atLeast: 1)
                #expect(try await readCABundles(client).isEmpty)

                try server.put(makeWebhookConfiguration())
                clock.advance(by: .seconds(10))
                try await eventually("the caBundle patched after the retry") {
                    let bundles = try await readCABundles(client)
                    return !bundles.isEmpty && bundles.allSatisfy { $0 != nil }
                }
                let secret = try await readSecret(client)
                #expect(try await readCABundles(client) == [secret.data?["ca.crt"], secret.data?["ca.crt"]])
                group.cancelAll()
                try await group.waitForAll()
            }
        }
    }

    @Test("run() looks again after retryInterval when a reconcile changed something, else after refreshInterval")
    func runLoopRechecksAfterChanges() async throws {
        try await withServerAndClient { server, client in
            try seed(server, webhookConfiguration: true)
            let clock = ManualClock()
            let store = TLSCredentialStore()
            var configuration = WebhookCertificateManager.Configuration(namespace: "linkerd")
            configuration.retryInterval = .seconds(10)
            configuration.refreshInterval = .seconds(3600)
            let manager = WebhookCertificateManager(
                api: client, store: store, configuration: configuration, clock: clock)

            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await manager.run() }
                try await eventually("the leaf served") { store.sslContext != nil }
                try await clock.waitForSleepers(atLeast: 1)

                // Another replica replaces the Secret: seen 10 s after a reconcile that wrote it.
                let first = try replaceSecret(server, now: clock.now())
                clock.advance(by: .seconds(10))
                try await eventually("the replaced leaf served") { store.current?.leaf == first.leafCertificate }
                try await clock.waitForSleepers(atLeast: 1)

                // Having loaded it, the manager looks again 10 s later.
                let second = try replaceSecret(server, now: clock.now())
                clock.advance(by: .seconds(10))
                try await eventually("the second replacement served") {
                    store.current?.leaf == second.leafCertificate
                }
                group.cancelAll()
                try await group.waitForAll()
            }
        }
    }

    // MARK: - Helpers

    /// Puts a new, valid Secret on the server, as another replica replacing it would; returns its material.
    private func replaceSecret(_ server: KubeTestServer, now: Date) throws -> WebhookCertificateBundle {
        let bundle = try WebhookCertificateAuthority(namespace: "linkerd").issue(now: now)
        try server.put(
            Secret(
                metadata: ObjectMeta(name: Self.secretName, namespace: "linkerd"), type: "kubernetes.io/tls",
                data: try bundle.secretData))
        return bundle
    }

    private func seed(_ server: KubeTestServer, webhookConfiguration: Bool) throws {
        try server.put(Namespace(metadata: ObjectMeta(name: "linkerd")))
        if webhookConfiguration {
            try server.put(makeWebhookConfiguration())
        }
    }

    /// The configuration as the chart installs it, with a placeholder caBundle on the first webhook and none on
    /// the second.
    private func makeWebhookConfiguration() -> MutatingWebhookConfiguration {
        let service = MutatingWebhookConfiguration.ServiceReference(
            namespace: "linkerd", name: "linkerd-proxy-injector", path: "/", port: 443)
        return MutatingWebhookConfiguration(
            metadata: ObjectMeta(name: Self.webhookConfigurationName),
            webhooks: [
                .init(
                    name: Self.webhookNames[0], clientConfig: .init(service: service, caBundle: base64("placeholder")),
                    failurePolicy: "Ignore"),
                .init(name: Self.webhookNames[1], clientConfig: .init(service: service), failurePolicy: "Ignore"),
            ])
    }

    private func makeManager(
        _ api: any KubeAPI, store: TLSCredentialStore, clock: ManualClock,
        registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()
    ) -> WebhookCertificateManager {
        WebhookCertificateManager(
            api: api, store: store, configuration: .init(namespace: "linkerd"), clock: clock,
            metricsFactory: PrometheusMetricsFactory(registry: registry))
    }

    private func readSecret(_ client: KubeClient) async throws -> Secret {
        try await client.get(Secret.self, namespace: "linkerd", name: Self.secretName)
    }

    /// The caBundle of each webhook, in order; empty when the configuration does not exist.
    private func readCABundles(_ client: KubeClient) async throws -> [String?] {
        do {
            let configuration = try await client.get(
                MutatingWebhookConfiguration.self, name: Self.webhookConfigurationName)
            return configuration.webhooks?.map(\.clientConfig.caBundle) ?? []
        } catch let error as KubeError where error.code == .notFound {
            return []
        }
    }

    private func emit(_ registry: PrometheusCollectorRegistry) -> String {
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return String(decoding: buffer, as: UTF8.self)
    }

    /// The value of an unlabelled sample in a Prometheus exposition.
    private func metric(_ name: String, in exposition: String) -> Double? {
        exposition.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap {
            Double($0.split(separator: " ")[1])
        }
    }
}

/// A `KubeAPI` that runs `race` once, just before the first write of a Secret is sent: another replica's
/// reconcile slipped in between this one's read and write.
private final class RacingAPI: KubeAPI {
    private let base: any KubeAPI
    private let race: Mutex<(@Sendable () async throws -> Void)?>
    private let ran = Mutex(false)

    init(base: any KubeAPI, race: @escaping @Sendable () async throws -> Void) {
        self.base = base
        self.race = Mutex(race)
    }

    var raced: Bool { ran.withLock { $0 } }

    private func raceBeforeWriting(_ resource: ResourceType) async throws {
        guard resource == .secrets, let race = race.withLock({ $0.take() }) else { return }
        try await race()
        ran.withLock { $0 = true }
    }

    func get<T: Decodable & Sendable>(
        _ resource: ResourceType, namespace: String?, name: String, subresource: String?, as type: T.Type
    ) async throws -> T {
        try await base.get(resource, namespace: namespace, name: name, subresource: subresource, as: type)
    }

    func list<T: Codable & Sendable>(
        _ resource: ResourceType, namespace: String?, options: ListOptions, as type: T.Type
    ) async throws -> ObjectList<T> {
        try await base.list(resource, namespace: namespace, options: options, as: type)
    }

    func create<T: Codable & Sendable>(
        _ resource: ResourceType, namespace: String?, object: T, subresource: String?
    ) async throws -> T {
        try await raceBeforeWriting(resource)
        return try await base.create(resource, namespace: namespace, object: object, subresource: subresource)
    }

    func update<T: Codable & Sendable>(
        _ resource: ResourceType, namespace: String?, name: String, object: T, subresource: String?
    ) async throws -> T {
        try await raceBeforeWriting(resource)
        return try await base.update(
            resource, namespace: namespace, name: name, object: object, subresource: subresource)
    }

    func patch<T: Decodable & Sendable>(
        _ resource: ResourceType, namespace: String?, name: String, patch: Patch, subresource: String?, as type: T.Type
    ) async throws -> T {
        try await base.patch(
            resource, namespace: namespace, name: name, patch: patch, subresource: subresource, as: type)
    }

    func delete(_ resource: ResourceType, namespace: String?, name: String) async throws {
        try await base.delete(resource, namespace: namespace, name: name)
    }

    func watch<T: Decodable & Sendable>(
        _ resource: ResourceType, namespace: String?, options: WatchOptions, as type: T.Type
    ) async throws -> AsyncThrowingStream<WatchEvent<T>, any Error> {
        try await base.watch(resource, namespace: namespace, options: options, as: type)
    }
}
