import Foundation
import KubeModel
import KubeTestServer
import LinkerdTestSupport
import NIOHTTP1
import Testing

@Suite("mutating admission webhooks on pod create", .timeLimit(.minutes(1)))
struct AdmissionTests {
    let pods = "/api/v1/namespaces/default/pods"

    /// A webhook for pod CREATE.
    func webhook(
        _ clientConfig: MutatingWebhookConfiguration.ClientConfig, name: String = "inject.linkerd.io",
        failurePolicy: String? = nil, namespaceSelector: LabelSelector? = nil, objectSelector: LabelSelector? = nil,
        timeoutSeconds: Int? = nil
    ) -> MutatingWebhookConfiguration {
        let rule = MutatingWebhookConfiguration.Rule(
            operations: ["CREATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["pods"], scope: "*")
        return MutatingWebhookConfiguration(
            metadata: ObjectMeta(name: "\(name)-configuration"),
            webhooks: [
                MutatingWebhookConfiguration.Webhook(
                    name: name, clientConfig: clientConfig, rules: [rule], failurePolicy: failurePolicy,
                    namespaceSelector: namespaceSelector, objectSelector: objectSelector,
                    timeoutSeconds: timeoutSeconds)
            ])
    }

    /// A webhook server that adds an annotation and a proxy container.
    func injector() async throws -> TestWebhookServer {
        try await TestWebhookServer.start { request in
            TestWebhookServer.patch(
                JSONPatch([
                    .add(path: "/metadata/annotations", value: ["linkerd.io/proxy-version": "test"]),
                    .add(path: "/spec/containers/-", value: ["name": "linkerd-proxy", "image": "proxy:test"]),
                ]),
                for: request)
        }
    }

    /// The client config of a webhook that is not listening any more.
    func unreachable() async throws -> MutatingWebhookConfiguration.ClientConfig {
        let gone = try await TestWebhookServer.start { _ in TestWebhookServer.Response(status: 500) }
        await gone.shutdown()
        return gone.clientConfig(path: "/inject")
    }

    /// Runs `body` against a fresh server, then shuts down both the server and `hook`.
    func withServerAndWebhook(
        _ hook: TestWebhookServer, _ body: (KubeTestServer, RawClient) async throws -> Void
    ) async throws {
        do {
            try await withServer(.init(), body)
        } catch {
            await hook.shutdown()
            throw error
        }
        await hook.shutdown()
    }

    func containerNames(_ pod: JSONValue?) -> [String] {
        pod?.value(atPath: "spec.containers")?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
    }

    @Test func podIsPatchedByTheWebhook() async throws {
        let hook = try await injector()
        try await withServerAndWebhook(hook) { server, client async throws in
            try server.put(webhook(hook.clientConfig(path: "/inject")))
            let created = try await client.send(.POST, pods, json: pod("web", labels: ["app": "web"]))
            #expect(created.status == 201)
            #expect(containerNames(created.json) == ["app", "linkerd-proxy"])
            let stored = server.object(.pods, namespace: "default", name: "web")
            #expect(containerNames(stored) == ["app", "linkerd-proxy"])
            #expect(stored?.value(atPath: "metadata.annotations")?["linkerd.io/proxy-version"] == "test")

            let record = try #require(server.admissionLog.first)
            #expect(server.admissionLog.count == 1)
            #expect(record.webhook == "inject.linkerd.io")
            #expect(record.configuration == "inject.linkerd.io-configuration")
            guard case .patched = record.outcome else {
                Issue.record("expected a patch, got \(record.outcome)")
                return
            }
            #expect(record.request.operation == "CREATE")
            #expect(record.request.namespace == "default")
            #expect(record.request.name == "web")
            #expect(record.request.kind == AdmissionReview.GroupVersionKind(group: "", version: "v1", kind: "Pod"))
            #expect(record.request.resource.resource == "pods")
            #expect(record.request.userInfo.username == "system:anonymous")
            #expect(record.request.object?.value(atPath: "metadata.labels")?["app"] == "web")
            #expect(record.request.dryRun == false)

            let sent = try #require(hook.requests.first)
            #expect(sent.method == "POST")
            #expect(sent.uri == "/inject")
            #expect(sent.headers["content-type"] == "application/json")
            let review = try JSONDecoder().decode(AdmissionReview.self, from: sent.body)
            #expect(review.apiVersion == "admission.k8s.io/v1")
            #expect(review.kind == "AdmissionReview")
            #expect(review.request?.uid == record.request.uid)
        }
    }

    @Test func theWebhookSeesTheRequestingUserAndDryRun() async throws {
        let hook = try await injector()
        try await withServerAndWebhook(hook) { server, _ async throws in
            try server.put(webhook(hook.clientConfig()))
            server.acceptClientToken("deployer-token", as: "deployer")
            let client = try RawClient(server, token: "deployer-token")
            let reply = try await client.send(.POST, "\(pods)?dryRun=All", json: pod("dry"))
            #expect(reply.status == 201)
            #expect(containerNames(reply.json) == ["app", "linkerd-proxy"])
            #expect(server.object(.pods, namespace: "default", name: "dry") == nil)
            #expect(server.admissionLog.first?.request.dryRun == true)
            #expect(server.admissionLog.first?.request.userInfo.username == "deployer")
        }
    }

    @Test func unreachableWebhookUnderIgnore() async throws {
        let config = try await unreachable()
        try await withServer { server, client async throws in
            try server.put(webhook(config, failurePolicy: "Ignore"))
            let created = try await client.send(.POST, pods, json: pod("web"))
            #expect(created.status == 201)
            #expect(containerNames(server.object(.pods, namespace: "default", name: "web")) == ["app"])
            guard case .failed(_, let ignored)? = server.admissionLog.first?.outcome else {
                Issue.record("expected a failed call, got \(String(describing: server.admissionLog.first))")
                return
            }
            #expect(ignored)
        }
    }

    @Test func unreachableWebhookUnderFail() async throws {
        let config = try await unreachable()
        try await withServer { server, client async throws in
            try server.put(webhook(config, failurePolicy: "Fail"))
            let rejected = try await client.send(.POST, pods, json: pod("web"))
            #expect(rejected.status == 500)
            #expect(rejected.json["reason"] == "InternalError")
            #expect(
                rejected.message.hasPrefix("Internal error occurred: failed calling webhook \"inject.linkerd.io\": "))
            #expect(server.object(.pods, namespace: "default", name: "web") == nil)
            guard case .failed(_, let ignored)? = server.admissionLog.first?.outcome else {
                Issue.record("expected a failed call")
                return
            }
            #expect(!ignored)
        }
    }

    @Test func failurePolicyDefaultsToFail() async throws {
        let config = try await unreachable()
        try await withServer { server, client async throws in
            try server.put(webhook(config))
            #expect(try await client.send(.POST, pods, json: pod("web")).status == 500)
        }
    }

    @Test func namespaceSelectorExcludesANamespace() async throws {
        let hook = try await injector()
        try await withServerAndWebhook(hook) { server, client async throws in
            let selector = LabelSelector(matchExpressions: [
                .init(key: "config.linkerd.io/admission-webhooks", operator: "NotIn", values: ["disabled"]),
                .init(key: "kubernetes.io/metadata.name", operator: "NotIn", values: ["kube-system"]),
            ])
            try server.put(webhook(hook.clientConfig(), namespaceSelector: selector))
            try server.put(
                Namespace(
                    metadata: ObjectMeta(name: "quiet", labels: ["config.linkerd.io/admission-webhooks": "disabled"])))
            #expect(try await client.send(.POST, "/api/v1/namespaces/quiet/pods", json: pod("a")).status == 201)
            #expect(try await client.send(.POST, "/api/v1/namespaces/kube-system/pods", json: pod("b")).status == 201)
            #expect(server.admissionLog.isEmpty)
            #expect(hook.requests.isEmpty)
            #expect(containerNames(server.object(.pods, namespace: "quiet", name: "a")) == ["app"])

            #expect(try await client.send(.POST, pods, json: pod("c")).status == 201)
            #expect(server.admissionLog.count == 1)
        }
    }

    @Test func objectSelectorPicksPods() async throws {
        let hook = try await injector()
        try await withServerAndWebhook(hook) { server, client async throws in
            try server.put(webhook(hook.clientConfig(), objectSelector: LabelSelector(matchLabels: ["inject": "yes"])))
            _ = try await client.send(.POST, pods, json: pod("plain"))
            _ = try await client.send(.POST, pods, json: pod("meshed", labels: ["inject": "yes"]))
            #expect(server.admissionLog.map(\.request.name) == ["meshed"])
            #expect(containerNames(server.object(.pods, namespace: "default", name: "plain")) == ["app"])
            #expect(
                containerNames(server.object(.pods, namespace: "default", name: "meshed")) == ["app", "linkerd-proxy"])
        }
    }

    @Test func rulesForOtherOperationsOrResourcesDoNotApply() async throws {
        let hook = try await injector()
        try await withServerAndWebhook(hook) { server, client async throws in
            var configuration = webhook(hook.clientConfig())
            configuration.webhooks?[0].rules = [
                .init(operations: ["UPDATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["pods"])
            ]
            try server.put(configuration)
            _ = try await client.send(.POST, pods, json: pod("a"))
            _ = try await client.send(.POST, "/api/v1/namespaces/default/configmaps", json: configMap("c"))
            #expect(server.admissionLog.isEmpty)
        }
    }

    @Test func deniedRequest() async throws {
        let hook = try await TestWebhookServer.start { request in
            AdmissionReview.Response(
                uid: request.uid, allowed: false,
                result: Status.failure(code: 403, reason: "Forbidden", message: "pods must not run as root"))
        }
        try await withServerAndWebhook(hook) { server, client async throws in
            try server.put(webhook(hook.clientConfig(), name: "policy.example.com"))
            let denied = try await client.send(.POST, pods, json: pod("root"))
            #expect(denied.status == 403)
            #expect(
                denied.message
                    == "admission webhook \"policy.example.com\" denied the request: pods must not run as root")
            #expect(server.admissionLog.first?.outcome == .denied(message: denied.message))
            #expect(server.object(.pods, namespace: "default", name: "root") == nil)
        }
    }

    @Test func mismatchedUIDIsAFailedCall() async throws {
        let hook = try await TestWebhookServer.start { _ in
            AdmissionReview.Response(uid: "not-the-request", allowed: true)
        }
        try await withServerAndWebhook(hook) { server, client async throws in
            try server.put(webhook(hook.clientConfig()))
            let rejected = try await client.send(.POST, pods, json: pod("web"))
            #expect(rejected.status == 500)
            #expect(rejected.message.contains("expected response.uid"))
        }
    }

    @Test func untrustedWebhookCertificateIsAFailedCall() async throws {
        let hook = try await injector()
        try await withServerAndWebhook(hook) { server, client async throws in
            let stranger = try TestCertificateAuthority(commonName: "someone else")
            let config = MutatingWebhookConfiguration.ClientConfig(
                url: hook.url, caBundle: Data(stranger.certificatePEM.utf8).base64EncodedString())
            try server.put(webhook(config, failurePolicy: "Fail"))
            let rejected = try await client.send(.POST, pods, json: pod("web"))
            #expect(rejected.status == 500)
            #expect(hook.requests.isEmpty)
        }
    }

    @Test func slowWebhookTimesOut() async throws {
        let hook = try await TestWebhookServer.start { request in
            // Far longer than the 1 s timeout, so that the deadline, not the answer, ends the call even when the
            // parallel test run slows everything down.
            try? await Task.sleep(for: .seconds(8))
            return AdmissionReview.Response(uid: request.uid, allowed: true)
        }
        try await withServerAndWebhook(hook) { server, client async throws in
            try server.put(webhook(hook.clientConfig(), failurePolicy: "Ignore", timeoutSeconds: 1))
            let started = ContinuousClock.now
            #expect(try await client.send(.POST, pods, json: pod("web")).status == 201)
            #expect(started.duration(to: .now) < .seconds(7))
            guard case .failed(let message, true)? = server.admissionLog.first?.outcome else {
                Issue.record("expected an ignored failure")
                return
            }
            #expect(message.contains("context deadline exceeded"))
        }
    }

    @Test func serviceWithoutARouteIsUnreachable() async throws {
        try await withServer { server, client async throws in
            let config = MutatingWebhookConfiguration.ClientConfig(
                service: .init(namespace: "linkerd", name: "linkerd-proxy-injector", path: "/"))
            try server.put(webhook(config))
            let rejected = try await client.send(.POST, pods, json: pod("web"))
            #expect(rejected.status == 500)
            #expect(rejected.message.contains("has no endpoints"))
        }
    }

    @Test func routedServiceIsCalledAndVerifiedByItsServiceName() async throws {
        let serviceName = "linkerd-proxy-injector.linkerd.svc"
        let named = try await TestWebhookServer.start(dnsNames: [serviceName], ipAddresses: []) { request in
            TestWebhookServer.patch(
                JSONPatch([.add(path: "/spec/containers/-", value: ["name": "linkerd-proxy", "image": "p"])]),
                for: request)
        }
        let misnamed = try await TestWebhookServer.start(
            certificateAuthority: named.certificateAuthority, dnsNames: ["localhost"], ipAddresses: []
        ) {
            request in AdmissionReview.Response(uid: request.uid, allowed: true)
        }
        do {
            try await callThroughRoutedService(named: named, misnamed: misnamed)
        } catch {
            await misnamed.shutdown()
            throw error
        }
        await misnamed.shutdown()
    }

    private func callThroughRoutedService(named: TestWebhookServer, misnamed: TestWebhookServer) async throws {
        try await withServerAndWebhook(named) { server, client async throws in
            let config = MutatingWebhookConfiguration.ClientConfig(
                service: .init(namespace: "linkerd", name: "linkerd-proxy-injector", path: "/inject", port: 443),
                caBundle: named.caBundle)
            try server.put(webhook(config))
            server.routeService(
                namespace: "linkerd", name: "linkerd-proxy-injector", to: .init(host: "127.0.0.1", port: named.port))
            let created = try await client.send(.POST, pods, json: pod("web"))
            #expect(created.status == 201)
            #expect(containerNames(created.json).contains("linkerd-proxy"))
            #expect(named.requests.map(\.uri) == ["/inject"])

            // A certificate that does not name the Service fails host-name verification.
            server.routeService(
                namespace: "linkerd", name: "linkerd-proxy-injector",
                to: .init(host: "127.0.0.1", port: misnamed.port))
            let rejected = try await client.send(.POST, pods, json: pod("api"))
            #expect(rejected.status == 500)
            #expect(misnamed.requests.isEmpty)
        }
    }

    @Test func unapplicablePatchIsRejectedWhateverThePolicy() async throws {
        let hook = try await TestWebhookServer.start { request in
            TestWebhookServer.patch(JSONPatch([.remove(path: "/spec/nothing")]), for: request)
        }
        try await withServerAndWebhook(hook) { server, client async throws in
            try server.put(webhook(hook.clientConfig(), failurePolicy: "Ignore"))
            let rejected = try await client.send(.POST, pods, json: pod("web"))
            #expect(rejected.status == 500)
            #expect(rejected.json["reason"] == "InternalError")
        }
    }

    @Test func directPutBypassesWebhooks() async throws {
        let config = try await unreachable()
        try await withServer { server, _ async throws in
            try server.put(webhook(config))
            try server.put(.pods, pod("direct", namespace: "default"))
            #expect(server.admissionLog.isEmpty)
        }
    }
}
