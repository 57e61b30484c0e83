import Foundation
import KubeModel
import KubeTestServer
import LinkerdTestSupport
import NIOHTTP1
import Testing

@Suite("authentication, TokenReview and SelfSubjectAccessReview", .timeLimit(.minutes(1)))
struct AuthenticationTests {
    let tokenReviews = "/apis/authentication.k8s.io/v1/tokenreviews"

    func review(_ client: RawClient, token: String, audiences: [String]? = nil) async throws -> JSONValue {
        var spec: JSONValue = ["token": .string(token)]
        if let audiences {
            spec["audiences"] = .array(audiences.map(JSONValue.string))
        }
        let reply = try await client.send(
            .POST, tokenReviews,
            json: ["apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec])
        #expect(reply.status == 201)
        #expect(reply.json["kind"] == "TokenReview")
        return reply.json["status"] ?? .null
    }

    @Test func tokenReviewWithAudiences() async throws {
        try await withServer { server, client async throws in
            let user = UserInfo(
                username: "system:serviceaccount:linkerd:linkerd-identity", uid: "u-1",
                groups: ["system:serviceaccounts"])
            server.registerServiceAccountToken("bound", user: user, audiences: ["identity.l5d.io", "other"])
            server.registerServiceAccountToken("legacy", user: user, audiences: nil)

            let bound = try await review(client, token: "bound", audiences: ["identity.l5d.io", "unrelated"])
            #expect(bound["authenticated"] == true)
            #expect(bound["audiences"] == ["identity.l5d.io"])
            #expect(bound.value(atPath: "user.username") == "system:serviceaccount:linkerd:linkerd-identity")
            #expect(bound.value(atPath: "user.groups") == ["system:serviceaccounts"])

            let wrongAudience = try await review(client, token: "bound", audiences: ["unrelated"])
            #expect(wrongAudience["authenticated"] == false)
            #expect(wrongAudience["error"]?.stringValue?.contains("invalid for the target audiences") == true)

            let noAudienceRequested = try await review(client, token: "bound")
            #expect(noAudienceRequested["authenticated"] == false, "the token lacks the API server's audience")

            let legacy = try await review(client, token: "legacy")
            #expect(legacy["authenticated"] == true)
            #expect(legacy["audiences"] == ["https://kubernetes.default.svc"])
            #expect(try await review(client, token: "legacy", audiences: ["identity.l5d.io"])["authenticated"] == false)

            let unknown = try await review(client, token: "nobody")
            #expect(unknown["authenticated"] == false)
            #expect(unknown["error"] == "token not found")
            #expect(server.objects(.tokenReviews).isEmpty, "reviews are not stored")
        }
    }

    @Test func selfSubjectAccessReviews() async throws {
        try await withServer { server, client async throws in
            server.denyAccess(verb: "create", resource: "secrets", namespace: "linkerd")
            func allowed(_ verb: String, _ resource: String, _ namespace: String) async throws -> JSONValue? {
                let reply = try await client.send(
                    .POST, "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                    json: [
                        "spec": [
                            "resourceAttributes": [
                                "verb": .string(verb), "resource": .string(resource), "namespace": .string(namespace),
                            ]
                        ]
                    ])
                #expect(reply.status == 201)
                return reply.json.value(atPath: "status.allowed")
            }
            #expect(try await allowed("create", "secrets", "linkerd") == false)
            #expect(try await allowed("create", "secrets", "default") == true)
            #expect(try await allowed("get", "secrets", "linkerd") == true)
        }
    }

    @Test func requiredAuthenticationByToken() async throws {
        var configuration = KubeTestServer.Configuration()
        configuration.requireAuthentication = true
        try await withServer(configuration) { server, anonymous async throws in
            let denied = try await anonymous.get("/api/v1/namespaces")
            #expect(denied.status == 401)
            #expect(denied.json["reason"] == "Unauthorized")
            #expect(denied.json["kind"] == "Status")

            server.acceptClientToken("secret-a", as: "alice")
            let alice = try RawClient(server, token: "secret-a")
            #expect(try await alice.get("/api/v1/namespaces").status == 200)
            #expect(try await RawClient(server, token: "wrong").get("/api/v1/namespaces").status == 401)

            server.registerServiceAccountToken(
                "sa", user: UserInfo(username: "system:serviceaccount:default:app"), audiences: nil)
            #expect(try await RawClient(server, token: "sa").get("/api/v1/namespaces").status == 200)

            server.revokeClientToken("secret-a")
            #expect(try await alice.get("/api/v1/namespaces").status == 401)
            #expect(server.requestUsers == ["alice", "system:serviceaccount:default:app"])
            #expect(server.requestLog.count == 5)
            #expect(server.requestLog.map(\.user) == [nil, "alice", nil, "system:serviceaccount:default:app", nil])
        }
    }

    @Test func requiredAuthenticationByClientCertificate() async throws {
        var configuration = KubeTestServer.Configuration()
        configuration.requireAuthentication = true
        try await withServer(configuration) { server, _ async throws in
            let certificate = try server.certificateAuthority.issue(commonName: "carol", serverAuth: false)
            let carol = try RawClient(server, certificate: certificate)
            #expect(try await carol.get("/api/v1/namespaces").status == 200)
            #expect(try await carol.get("/version").status == 200)
            #expect(server.requestUsers == ["carol", "carol"])
        }
    }

    @Test func anonymousRequestsWhenNotRequired() async throws {
        try await withServer { server, client async throws in
            #expect(try await client.get("/api/v1/namespaces").status == 200)
            #expect(try await RawClient(server, token: "unknown").get("/api/v1/namespaces").status == 200)
            #expect(server.requestUsers.isEmpty)
            #expect(server.requestLog.map(\.path) == ["/api/v1/namespaces", "/api/v1/namespaces"])
        }
    }

    @Test func kubeconfigText() async throws {
        try await withServer { server, _ async throws in
            let text = server.kubeconfig(token: "tok", namespace: "linkerd")
            #expect(text.contains("server: \"\(server.baseURL)\""))
            #expect(
                text.contains("certificate-authority-data: \(Data(server.caCertificatePEM.utf8).base64EncodedString())")
            )
            #expect(text.contains("token: \"tok\""))
            #expect(text.contains("namespace: \"linkerd\""))
            #expect(text.contains("current-context: kube-test-server"))
            let anonymous = server.kubeconfig(token: nil)
            #expect(anonymous.contains("user: {}"))
            #expect(!anonymous.contains("namespace:"))
        }
        var plain = KubeTestServer.Configuration()
        plain.tls = false
        try await withServer(plain) { server, client async throws in
            #expect(server.baseURL.hasPrefix("http://"))
            #expect(!server.kubeconfig(token: nil).contains("certificate-authority-data"))
            #expect(try await client.get("/version").status == 200)
        }
    }
}
