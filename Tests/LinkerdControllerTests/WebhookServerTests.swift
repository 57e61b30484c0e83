import AsyncHTTPClient
import Foundation
import KubeClient
import KubeModel
import KubeTestServer
import LinkerdController
import LinkerdCore
import LinkerdInject
import LinkerdTestSupport
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Prometheus
import Testing

@Suite("WebhookServer over HTTPS on a real socket", .timeLimit(.minutes(1)))
struct WebhookServerTests {
    @Test func answersReviewsOnOneKeptAliveConnection() async throws {
        let tls = try ServingTLS()
        try await withWebhookServer(credentials: tls.store) { server, port in
            try await withClient(trusting: tls) { client in
                for index in 0..<5 {
                    let reply = try await client.send(
                        .POST, port: port, body: try Fixtures.review(uid: "uid-\(index)", object: Fixtures.pod()))
                    #expect(reply.status == 200)
                    #expect(reply.headers.first(name: "Content-Type") == "application/json")
                    let answer = try JSONDecoder().decode(AdmissionReview.self, from: reply.body)
                    #expect(answer.response?.uid == "uid-\(index)")
                    #expect(answer.response?.patchType == "JSONPatch")
                }
                // Early answers (404, 405) keep the connection too.
                #expect(try await client.send(.POST, port: port, path: "/inject", body: Data("{}".utf8)).status == 404)
                #expect(try await client.send(.GET, port: port).status == 405)
                #expect(try await client.send(.POST, port: port, body: Data()).status == 200)
            }
            #expect(server.acceptedConnections == 1)
        }
    }

    @Test func bodyOverTenMegabytesIsAnswered413() async throws {
        let tls = try ServingTLS()
        try await withWebhookServer(credentials: tls.store) { server, port in
            try await withClient(trusting: tls) { client in
                let tooLarge = Data(repeating: UInt8(ascii: " "), count: 10 * 1024 * 1024 + 1)
                let reply = try await client.send(.POST, port: port, body: tooLarge)
                #expect(reply.status == 413)
                #expect(reply.headers.first(name: "Connection") == "close")
                // The server still serves, on a new connection.
                let next = try await client.send(.POST, port: port, body: try Fixtures.review(object: Fixtures.pod()))
                #expect(next.status == 200)
            }
            #expect(server.acceptedConnections == 2)
        }
    }

    @Test func exactlyTenMegabytesIsRead() async throws {
        let tls = try ServingTLS()
        try await withWebhookServer(credentials: tls.store) { _, port in
            try await withClient(trusting: tls) { client in
                // Valid JSON padded with spaces to the limit: read whole, then rejected as not an AdmissionReview.
                var body = Data("[]".utf8)
                body.append(Data(repeating: UInt8(ascii: " "), count: 10 * 1024 * 1024 - body.count))
                let reply = try await client.send(.POST, port: port, body: body)
                #expect(reply.status == 400)
            }
        }
    }

    @Test func tls12ClientIsRefusedByDefault() async throws {
        let tls = try ServingTLS()
        try await withWebhookServer(credentials: tls.store) { _, port in
            try await withClient(trusting: tls, maximumTLSVersion: .tlsv12) { client in
                await #expect(throws: (any Error).self) {
                    _ = try await client.send(.POST, port: port, body: try Fixtures.review(object: Fixtures.pod()))
                }
            }
            try await withClient(trusting: tls, maximumTLSVersion: .tlsv13) { client in
                let reply = try await client.send(.POST, port: port, body: Data())
                #expect(reply.status == 200)
            }
        }
    }

    @Test func connectionsWaitForACertificateAndPickUpRenewals() async throws {
        let tls = try ServingTLS()
        let store = TLSCredentialStore()
        try await withWebhookServer(credentials: store) { _, port in
            try await withClient(trusting: tls) { client in
                await #expect(throws: (any Error).self) {
                    _ = try await client.send(.POST, port: port, body: Data())
                }
            }
            try store.update(certificateChainPEM: tls.leaf.certificatePEM, privateKeyPEM: tls.leaf.privateKeyPEM)
            try await withClient(trusting: tls) { client in
                let reply = try await client.send(.POST, port: port, body: Data())
                #expect(reply.status == 200)
            }
            // A certificate from another CA: new connections get it, so clients of the old CA fail.
            let other = try ServingTLS()
            try store.update(certificateChainPEM: other.leaf.certificatePEM, privateKeyPEM: other.leaf.privateKeyPEM)
            try await withClient(trusting: other) { client in
                let reply = try await client.send(.POST, port: port, body: Data())
                #expect(reply.status == 200)
            }
            try await withClient(trusting: tls) { client in
                await #expect(throws: (any Error).self) {
                    _ = try await client.send(.POST, port: port, body: Data())
                }
            }
        }
    }

    @Test func silentConnectionIsClosedAfterTheHeaderTimeout() async throws {
        let tls = try ServingTLS()
        var configuration = WebhookServer.Configuration(host: "127.0.0.1", port: 0)
        configuration.headerReadTimeout = .milliseconds(200)
        try await withWebhookServer(configuration: configuration, credentials: tls.store) { _, port in
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(host: "127.0.0.1", port: port).get()
            try await withThrowingTaskGroup(of: Bool.self) { group in
                group.addTask {
                    try await channel.closeFuture.get()
                    return true
                }
                group.addTask {
                    try await Task.sleep(for: .seconds(10))
                    return false
                }
                let closedByServer = try await group.next() ?? false
                group.cancelAll()
                #expect(closedByServer, "the server kept a connection that never sent a request head")
                if !closedByServer { try await channel.close() }
            }
        }
    }

    @Test func injectsPodsCreatedThroughTheAPIServer() async throws {
        let tls = try ServingTLS()
        try await withServerAndClient { apiServer, client in
            try apiServer.put(.namespaces, ["metadata": ["name": "linkerd"]])
            try apiServer.put(
                .namespaces,
                ["metadata": ["name": "apps", "annotations": .object([MeshKeys.inject: "enabled"])]])
            let deployment = try apiServer.put(
                .deployments, ["metadata": ["name": "web", "namespace": "apps"], "spec": ["template": [:]]])
            let deploymentUID = try #require(deployment["metadata"]?["uid"]?.stringValue)
            let replicaSet = try apiServer.put(
                .replicaSets,
                [
                    "metadata": [
                        "name": "web-7d9f", "namespace": "apps",
                        "ownerReferences": [
                            Fixtures.ownerReference(kind: "Deployment", name: "web", uid: deploymentUID)
                        ],
                    ],
                    "spec": ["template": [:]],
                ])
            let replicaSetUID = try #require(replicaSet["metadata"]?["uid"]?.stringValue)
            let logger = Logger(label: "test.webhook")
            let handler = AdmissionHandler(
                configuration: { Fixtures.configuration },
                namespaces: NamespaceAnnotationLookup(api: client),
                owners: OwnerResolver(api: client),
                events: EventRecorder(
                    api: client, component: "linkerd-proxy-injector", clock: SystemWallClock(), logger: logger),
                metricsFactory: PrometheusMetricsFactory(registry: PrometheusCollectorRegistry()),
                logger: logger)
            try await withWebhookServer(credentials: tls.store, handler: handler) { _, port in
                apiServer.routeService(
                    namespace: "linkerd", name: "linkerd-proxy-injector",
                    to: KubeTestServer.ServiceRoute(host: "127.0.0.1", port: port))
                _ = try await client.create(
                    MutatingWebhookConfiguration(
                        metadata: ObjectMeta(name: "linkerd-proxy-injector-webhook-config"),
                        webhooks: [
                            .init(
                                name: "linkerd-proxy-injector.linkerd.io",
                                clientConfig: .init(
                                    service: .init(
                                        namespace: "linkerd", name: "linkerd-proxy-injector", path: "/", port: 443),
                                    caBundle: Data(tls.authority.certificatePEM.utf8).base64EncodedString()),
                                rules: [
                                    .init(
                                        operations: ["CREATE"], apiGroups: [""], apiVersions: ["v1"],
                                        resources: ["pods", "services"], scope: "Namespaced")
                                ],
                                failurePolicy: "Fail")
                        ]))
                let pod = Fixtures.pod(
                    name: nil, generateName: "web-7d9f-", namespace: "apps",
                    ownerReferences: [
                        Fixtures.ownerReference(kind: "ReplicaSet", name: "web-7d9f", uid: replicaSetUID)
                    ])
                let created = try await client.create(.pods, namespace: "apps", object: pod, subresource: nil)
                #expect(created.containerNames.contains(MeshKeys.proxyContainerName))
                try await eventually("an Injected event on the Deployment") {
                    apiServer.objects(.events, namespace: "apps").contains { event in
                        event["reason"] == "Injected" && event["involvedObject"]?["kind"] == "Deployment"
                            && event["involvedObject"]?["name"] == "web"
                            && event["involvedObject"]?["uid"] == .string(deploymentUID)
                    }
                }
            }
        }
    }
}

/// A serving certificate for 127.0.0.1 from a fresh CA, in a `TLSCredentialStore` with the default settings.
private struct ServingTLS {
    let authority: TestCertificateAuthority
    let leaf: IssuedCertificate
    let store: TLSCredentialStore

    init() throws {
        authority = try TestCertificateAuthority(commonName: "webhook test CA")
        leaf = try authority.issue(
            commonName: "linkerd-proxy-injector.linkerd.svc",
            dnsNames: ["linkerd-proxy-injector.linkerd.svc", "localhost"], ipAddresses: ["127.0.0.1"],
            clientAuth: false)
        store = TLSCredentialStore()
        try store.update(certificateChainPEM: leaf.certificatePEM, privateKeyPEM: leaf.privateKeyPEM)
    }
}

/// Runs a `WebhookServer` on a free loopback port for the duration of `body`, then cancels it and waits for it.
private func withWebhookServer(
    configuration: WebhookServer.Configuration = WebhookServer.Configuration(host: "127.0.0.1", port: 0),
    credentials: TLSCredentialStore, handler: AdmissionHandler = HandlerUnderTest().handler,
    _ body: (WebhookServer, Int) async throws -> Void
) async throws {
    let server = WebhookServer(
        configuration: configuration, credentials: credentials, handler: handler, logger: Logger(label: "test.webhook"))
    try await whileServing({ try await server.run() }, bound: { try await server.waitUntilBound() }) { port in
        try await body(server, port)
    }
}

/// An HTTPS client with a connection pool of its own (so connection reuse can be observed).
private struct TestClient {
    let http: HTTPClient

    struct Reply {
        var status: Int
        var headers: HTTPHeaders
        var body: Data
    }

    func send(_ method: HTTPMethod, port: Int, path: String = "/", body: Data? = nil) async throws -> Reply {
        var request = HTTPClientRequest(url: "https://127.0.0.1:\(port)\(path)")
        request.method = method
        if let body {
            request.body = .bytes(ByteBuffer(bytes: body))
            request.headers.add(name: "Content-Type", value: "application/json")
        }
        let response = try await http.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 16 * 1024 * 1024)
        return Reply(status: Int(response.status.code), headers: response.headers, body: Data(bytes.readableBytesView))
    }
}

private func withClient(
    trusting tls: ServingTLS, maximumTLSVersion: TLSVersion? = nil, _ body: (TestClient) async throws -> Void
) async throws {
    var configuration = TLSConfiguration.makeClientConfiguration()
    configuration.trustRoots = .certificates([
        try NIOSSLCertificate(bytes: Array(tls.authority.certificatePEM.utf8), format: .pem)
    ])
    if let maximumTLSVersion {
        configuration.maximumTLSVersion = maximumTLSVersion
    }
    var clientConfiguration = HTTPClient.Configuration(tlsConfiguration: configuration)
    clientConfiguration.connectionPool.retryConnectionEstablishment = false
    let http = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: clientConfiguration)
    do {
        try await body(TestClient(http: http))
    } catch {
        try? await http.shutdown()
        throw error
    }
    try await http.shutdown()
}
