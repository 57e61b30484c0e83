import Foundation
import KubeClient
import KubeModel
import KubeTestServer
import LinkerdCore
import LinkerdTestSupport
import Testing

@Suite("authentication and kubeconfigs against KubeTestServer", .timeLimit(.minutes(1)))
struct AuthenticationIntegrationTests {
    static var authenticated: KubeTestServer.Configuration {
        var configuration = KubeTestServer.Configuration()
        configuration.requireAuthentication = true
        return configuration
    }

    @Test func rotatedTokenFileIsPickedUpWithoutRestart() async throws {
        try await withTemporaryDirectory { directory in
            let tokenPath = try directory.write("token", "token-a\n")
            try await withServerAndClient(
                Self.authenticated,
                configure: { configuration in
                    configuration.authentication = .bearerTokenFile(path: tokenPath)
                    configuration.tokenFileCacheLifetime = .seconds(3600)
                }
            ) { server, client in
                server.acceptClientToken("token-a", as: "user-a")
                _ = try await client.list(ConfigMap.self, namespace: "default")
                #expect(server.requestUsers.last == "user-a")

                server.acceptClientToken("token-b", as: "user-b")
                try directory.write("token", "token-b\n")
                server.revokeClientToken("token-a")

                _ = try await client.list(ConfigMap.self, namespace: "default")
                #expect(server.requestUsers.last == "user-b")

                // A watch opened after another rotation picks up the token the same way.
                server.acceptClientToken("token-c", as: "user-c")
                try directory.write("token", "token-c")
                server.revokeClientToken("token-b")
                let stream = try await client.watch(ConfigMap.self, namespace: "default")
                var iterator = stream.makeAsyncIterator()
                _ = try await client.create(configMap("seen"))
                #expect(try await nextEvents(1, from: &iterator) == ["ADDED seen"])
                #expect(server.requestUsers.last == "user-c")
            }
        }
    }

    @Test func rejectedTokenIsUnauthorized() async throws {
        try await withServerAndClient(Self.authenticated, configure: { $0.authentication = .bearerToken("unknown") }) {
            _, client in
            let error = await expectKubeError(.unauthorized) {
                _ = try await client.list(ConfigMap.self, namespace: "default")
            }
            #expect(error?.isRetryable == false)
            await expectKubeError(.unauthorized) { _ = try await client.watch(ConfigMap.self, namespace: "default") }
        }
    }

    @Test func unchangedTokenFileIsNotRetried() async throws {
        try await withTemporaryDirectory { directory in
            let tokenPath = try directory.write("token", "never-accepted")
            try await withServerAndClient(
                Self.authenticated,
                configure: {
                    $0.authentication = .bearerTokenFile(path: tokenPath)
                }
            ) { server, client in
                let before = server.requestLog.count
                await expectKubeError(.unauthorized) { _ = try await client.list(ConfigMap.self, namespace: "default") }
                #expect(server.requestLog.count == before + 1)
            }
        }
    }

    @Test func kubeconfigWithTokenFromTheServer() async throws {
        try await withTemporaryDirectory { directory in
            try await withServerAndClient(Self.authenticated) { server, _ in
                server.acceptClientToken("kubeconfig-token", as: "kube-user")
                let path = try directory.write(
                    "config", server.kubeconfig(token: "kubeconfig-token", namespace: "kube-system"))
                let configuration = try KubeClientConfiguration.fromKubeconfig(
                    path: path, environment: DictionaryEnvironment())
                #expect(configuration.namespace == "kube-system")
                try await withClient(configuration) { client in
                    _ = try await client.create(configMap("via-kubeconfig", namespace: configuration.namespace))
                    #expect(server.requestUsers.last == "kube-user")
                    #expect(server.object(.configMaps, namespace: "kube-system", name: "via-kubeconfig") != nil)
                }
            }
        }
    }

    @Test func kubeconfigWithClientCertificateData() async throws {
        try await withServerAndClient(Self.authenticated) { server, _ in
            let certificate = try server.certificateAuthority.issue(commonName: "cert-user", serverAuth: false)
            let yaml = """
                apiVersion: v1
                kind: Config
                clusters:
                - name: test
                  cluster:
                    server: \(server.baseURL)
                    certificate-authority-data: \(base64(server.caCertificatePEM))
                users:
                - name: cert
                  user:
                    client-certificate-data: \(base64(certificate.certificatePEM))
                    client-key-data: \(base64(certificate.privateKeyPEM))
                contexts:
                - name: test
                  context: {cluster: test, user: cert}
                current-context: test
                """
            let configuration = try KubeClientConfiguration(kubeconfig: KubeConfig(yaml: yaml, source: "inline"))
            try await withClient(configuration) { client in
                _ = try await client.list(Namespace.self)
                #expect(server.requestUsers.last == "cert-user")
            }
        }
    }

    @Test func kubeconfigWithRelativeFilesAndTokenFile() async throws {
        try await withTemporaryDirectory { directory in
            try await withServerAndClient(Self.authenticated) { server, _ in
                server.acceptClientToken("file-token", as: "file-user")
                try directory.write("conf/ca.pem", server.caCertificatePEM)
                try directory.write("conf/secrets/token", "file-token\n")
                let path = try directory.write(
                    "conf/config",
                    """
                    clusters:
                    - name: test
                      cluster: {server: "\(server.baseURL)", certificate-authority: ca.pem}
                    users:
                    - name: file
                      user: {tokenFile: secrets/token}
                    contexts:
                    - name: test
                      context: {cluster: test, user: file, namespace: default}
                    current-context: test
                    """)
                let configuration = try KubeClientConfiguration.fromKubeconfig(
                    environment: DictionaryEnvironment(["KUBECONFIG": path]))
                try await withClient(configuration) { client in
                    _ = try await client.get(Namespace.self, name: "default")
                    #expect(server.requestUsers.last == "file-user")
                }
            }
        }
    }

    @Test func mergedKubeconfigFilesAgainstTheServer() async throws {
        try await withTemporaryDirectory { directory in
            try await withServerAndClient(Self.authenticated) { server, _ in
                server.acceptClientToken("merged-token", as: "merged-user")
                let clusters = try directory.write(
                    "clusters.yaml",
                    """
                    clusters:
                    - name: test
                      cluster:
                        server: "\(server.baseURL)"
                        certificate-authority-data: "\(base64(server.caCertificatePEM))"
                    current-context: merged
                    """)
                let users = try directory.write(
                    "users.yaml",
                    """
                    users:
                    - name: u
                      user: {token: merged-token}
                    contexts:
                    - name: merged
                      context: {cluster: test, user: u, namespace: kube-system}
                    current-context: ignored-because-the-first-file-sets-one
                    """)
                let configuration = try KubeClientConfiguration.fromKubeconfig(
                    environment: DictionaryEnvironment(["KUBECONFIG": "\(clusters):\(users)"]))
                #expect(configuration.namespace == "kube-system")
                try await withClient(configuration) { client in
                    _ = try await client.list(ConfigMap.self, namespace: configuration.namespace)
                    #expect(server.requestUsers.last == "merged-user")
                }
            }
        }
    }
}
