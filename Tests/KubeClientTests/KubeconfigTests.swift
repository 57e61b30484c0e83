import Foundation
import KubeClient
import KubeModel
import LinkerdCore
import LinkerdTestSupport
import Testing

/// Expects `body` to throw a `KubeError` with code `.configuration` whose message contains every one of `fragments`.
func expectConfigurationError(
    containing fragments: [String], sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () throws -> Void
) {
    let error = #expect(throws: KubeError.self, sourceLocation: sourceLocation) { try body() }
    guard let error else { return }
    #expect(error.code == .configuration, "\(error)", sourceLocation: sourceLocation)
    for fragment in fragments {
        #expect(
            error.message.contains(fragment), "\"\(error.message)\" lacks \"\(fragment)\"",
            sourceLocation: sourceLocation)
    }
}

/// The base64 of a string's UTF-8 bytes.
func base64(_ text: String) -> String {
    Data(text.utf8).base64EncodedString()
}

@Suite("kubeconfig")
struct KubeconfigTests {
    let authority: TestCertificateAuthority

    init() throws {
        authority = try TestCertificateAuthority()
    }

    /// A one-cluster, one-user, one-context kubeconfig.
    func kubeconfig(
        server: String = "https://127.0.0.1:6443",
        clusterFields: String? = nil,
        userFields: String = "    token: abc",
        namespace: String? = nil,
        currentContext: String? = "main"
    ) -> String {
        """
        apiVersion: v1
        kind: Config
        clusters:
        - name: local
          cluster:
            server: \(server)
        \(clusterFields ?? "    certificate-authority-data: \(base64(authority.certificatePEM))")
        users:
        - name: admin
          user:
        \(userFields)
        contexts:
        - name: main
          context:
            cluster: local
            user: admin
        \(namespace.map { "    namespace: \($0)" } ?? "")
        \(currentContext.map { "current-context: \($0)" } ?? "")
        """
    }

    @Test func tokenUserWithInlineCertificateAuthority() async throws {
        try await withTemporaryDirectory { directory in
            let path = try directory.write("config", kubeconfig(namespace: "linkerd"))
            let configuration = try KubeClientConfiguration.fromKubeconfig(
                path: path, environment: DictionaryEnvironment())
            #expect(configuration.server == "https://127.0.0.1:6443")
            #expect(configuration.authentication == .bearerToken("abc"))
            #expect(configuration.certificateAuthorityPEM == Array(authority.certificatePEM.utf8))
            #expect(configuration.namespace == "linkerd")
            #expect(configuration.insecureSkipTLSVerify == false)
            #expect(configuration.clientCertificatePEM == nil)
        }
    }

    @Test func namespaceDefaultsToDefault() throws {
        let config = try KubeConfig(yaml: kubeconfig(), source: "inline")
        #expect(try KubeClientConfiguration(kubeconfig: config).namespace == "default")
    }

    @Test func tokenFileAndCertificateFilesResolveAgainstTheKubeconfigDirectory() async throws {
        try await withTemporaryDirectory { directory in
            let client = try authority.issue(commonName: "alice")
            try directory.write("kube/secrets/token", "file-token\n")
            try directory.write("kube/pki/ca.crt", authority.certificatePEM)
            try directory.write("kube/pki/client.crt", client.certificatePEM)
            try directory.write("kube/pki/client.key", client.privateKeyPEM)
            let path = try directory.write(
                "kube/config",
                kubeconfig(
                    clusterFields: "    certificate-authority: pki/ca.crt",
                    userFields: """
                            tokenFile: secrets/token
                            client-certificate: ./pki/client.crt
                            client-key: pki/../pki/client.key
                        """))
            let configuration = try KubeClientConfiguration.fromKubeconfig(
                path: path, environment: DictionaryEnvironment())
            guard case .bearerTokenFile(let tokenPath) = configuration.authentication else {
                Issue.record("expected a token file, got \(configuration.authentication)")
                return
            }
            #expect(tokenPath.hasPrefix("/"))
            #expect(tokenPath.hasSuffix("kube/secrets/token"))
            #expect(try String(contentsOfFile: tokenPath, encoding: .utf8) == "file-token\n")
            #expect(configuration.certificateAuthorityPEM == Array(authority.certificatePEM.utf8))
            #expect(configuration.clientCertificatePEM == Array(client.certificatePEM.utf8))
            #expect(configuration.clientKeyPEM == Array(client.privateKeyPEM.utf8))
        }
    }

    @Test func clientCertificateData() throws {
        let client = try authority.issue(commonName: "alice")
        let yaml = kubeconfig(
            userFields: """
                    client-certificate-data: \(base64(client.certificatePEM))
                    client-key-data: \(base64(client.privateKeyPEM))
                """)
        let configuration = try KubeClientConfiguration(kubeconfig: KubeConfig(yaml: yaml, source: "inline"))
        #expect(configuration.clientCertificatePEM == Array(client.certificatePEM.utf8))
        #expect(configuration.clientKeyPEM == Array(client.privateKeyPEM.utf8))
        #expect(configuration.authentication == .none)
    }

    @Test func explicitContextWinsOverCurrentContext() throws {
        let yaml = """
            clusters:
            - name: a
              cluster: {server: "https://a.example:6443", insecure-skip-tls-verify: true}
            - name: b
              cluster: {server: "https://b.example:443/prefix/"}
            users:
            - name: u
              user: {token: t}
            contexts:
            - name: first
              context: {cluster: a, user: u}
            - name: second
              context: {cluster: b, namespace: team}
            current-context: first
            """
        let config = try KubeConfig(yaml: yaml, source: "inline")
        let first = try KubeClientConfiguration(kubeconfig: config)
        #expect(first.server == "https://a.example:6443")
        #expect(first.insecureSkipTLSVerify)
        #expect(first.authentication == .bearerToken("t"))
        let second = try KubeClientConfiguration(kubeconfig: config, context: "second")
        #expect(second.server == "https://b.example:443/prefix/")
        #expect(second.authentication == .none)
        #expect(second.namespace == "team")
    }

    @Test func kubeconfigEnvironmentMergesFilesFirstDefinitionWins() async throws {
        try await withTemporaryDirectory { directory in
            let first = try directory.write(
                "one/config",
                """
                clusters:
                - name: shared
                  cluster: {server: "https://first.example"}
                users:
                - name: shared-user
                  user: {token: first-token}
                contexts:
                - name: shared
                  context: {cluster: shared, user: shared-user}
                """)
            let second = try directory.write(
                "two/config",
                """
                clusters:
                - name: shared
                  cluster: {server: "https://second.example"}
                - name: only-second
                  cluster: {server: "https://only-second.example"}
                users:
                - name: shared-user
                  user: {token: second-token}
                - name: second-user
                  user: {tokenFile: token}
                contexts:
                - name: shared
                  context: {cluster: only-second, user: second-user}
                - name: other
                  context: {cluster: only-second, user: second-user, namespace: other-ns}
                current-context: shared
                """)
            try directory.write("two/token", "second-file-token")
            let missing = "\(directory.path)/missing/config"
            let environment: DictionaryEnvironment = ["KUBECONFIG": "\(missing):\(first)::\(second)"]

            // The current context comes from the second file (the first sets none), but the "shared" context, cluster
            // and user are the first file's.
            let merged = try KubeClientConfiguration.fromKubeconfig(environment: environment)
            #expect(merged.server == "https://first.example")
            #expect(merged.authentication == .bearerToken("first-token"))

            // Entries only the second file defines are there, with paths relative to the second file.
            let other = try KubeClientConfiguration.fromKubeconfig(context: "other", environment: environment)
            #expect(other.server == "https://only-second.example")
            #expect(other.namespace == "other-ns")
            #expect(other.authentication == .bearerTokenFile(path: "\(directory.path)/two/token"))
        }
    }

    @Test func mergingKeepsTheFirstDefinitionAndCurrentContext() {
        let a = KubeConfig(
            clusters: [.init(name: "c", cluster: .init(server: "https://a"))],
            contexts: [.init(name: "x", context: .init(cluster: "c"))],
            currentContext: "x")
        let b = KubeConfig(
            clusters: [.init(name: "c", cluster: .init(server: "https://b")), .init(name: "d", cluster: .init())],
            contexts: [.init(name: "y", context: .init(cluster: "d"))],
            currentContext: "y")
        let merged = a.merging(b)
        #expect(merged.clusters.map(\.name) == ["c", "d"])
        #expect(merged.clusters[0].cluster.server == "https://a")
        #expect(merged.contexts.map(\.name) == ["x", "y"])
        #expect(merged.currentContext == "x")
        #expect(KubeConfig().merging(b).currentContext == "y")
    }

    @Test func homeKubeconfigIsTheDefault() async throws {
        try await withTemporaryDirectory { directory in
            try directory.write(".kube/config", kubeconfig(namespace: "from-home"))
            let configuration = try KubeClientConfiguration.fromKubeconfig(
                environment: DictionaryEnvironment(["HOME": directory.path]))
            #expect(configuration.namespace == "from-home")
        }
    }

    @Test func automaticFallsBackToKubeconfigOutsideAPod() async throws {
        try await withTemporaryDirectory { directory in
            try directory.write(".kube/config", kubeconfig(namespace: "outside"))
            let configuration = try KubeClientConfiguration.automatic(
                environment: DictionaryEnvironment(["HOME": directory.path, "KUBERNETES_SERVICE_HOST": "10.0.0.1"]),
                serviceAccountDirectory: "\(directory.path)/no-service-account")
            #expect(configuration.namespace == "outside")
        }
    }

    @Test func commandLineKubeconfigFlagWinsAndNamesAMissingFile() async throws {
        try await withTemporaryDirectory { directory in
            let path = try directory.write("flag-config", kubeconfig(namespace: "from-flag"))
            #expect(try KubeClientConfiguration.commandLine(kubeconfig: path).namespace == "from-flag")
            let missing = "\(directory.path)/absent"
            expectConfigurationError(containing: [missing]) {
                _ = try KubeClientConfiguration.commandLine(kubeconfig: missing)
            }
        }
    }

    // MARK: - Malformed kubeconfigs

    @Test func malformedYAMLNamesTheFile() async throws {
        try await withTemporaryDirectory { directory in
            let path = try directory.write("config", "clusters:\n  - name: [unclosed\n")
            expectConfigurationError(containing: ["kubeconfig \(path)", "is not valid YAML"]) {
                _ = try KubeClientConfiguration.fromKubeconfig(path: path, environment: DictionaryEnvironment())
            }
        }
    }

    @Test func wrongStructureNamesTheField() {
        expectConfigurationError(containing: ["kubeconfig inline", "not a valid kubeconfig", "clusters"]) {
            _ = try KubeConfig(yaml: "clusters: just-a-string\n", source: "inline")
        }
        expectConfigurationError(containing: ["clusters[0].cluster is missing"]) {
            _ = try KubeConfig(yaml: "clusters:\n- name: x\n", source: "inline")
        }
    }

    @Test func missingFile() {
        expectConfigurationError(containing: ["kubeconfig file /nonexistent/kubeconfig does not exist"]) {
            _ = try KubeClientConfiguration.fromKubeconfig(
                path: "/nonexistent/kubeconfig", environment: DictionaryEnvironment())
        }
    }

    @Test func directoryInsteadOfFile() async throws {
        try await withTemporaryDirectory { directory in
            expectConfigurationError(containing: ["kubeconfig file \(directory.path) is a directory"]) {
                _ = try KubeClientConfiguration.fromKubeconfig(
                    path: directory.path, environment: DictionaryEnvironment())
            }
        }
    }

    @Test func emptyFile() async throws {
        try await withTemporaryDirectory { directory in
            let path = try directory.write("config", "\n")
            expectConfigurationError(containing: ["kubeconfig \(path) defines no clusters, users or contexts"]) {
                _ = try KubeClientConfiguration.fromKubeconfig(path: path, environment: DictionaryEnvironment())
            }
        }
    }

    @Test func noKubeconfigAnywhere() {
        expectConfigurationError(containing: ["neither KUBECONFIG nor HOME is set"]) {
            _ = try KubeClientConfiguration.fromKubeconfig(environment: DictionaryEnvironment())
        }
        expectConfigurationError(containing: ["none of the kubeconfig files in KUBECONFIG=/a/b:/c/d exists"]) {
            _ = try KubeClientConfiguration.fromKubeconfig(
                environment: DictionaryEnvironment(["KUBECONFIG": "/a/b:/c/d"]))
        }
    }

    @Test func noCurrentContext() {
        expectConfigurationError(containing: [
            "kubeconfig inline", "no context was given and current-context is not set",
        ]) {
            _ = try KubeClientConfiguration(
                kubeconfig: KubeConfig(yaml: kubeconfig(currentContext: nil), source: "inline"))
        }
    }

    @Test func unknownContextListsTheDefinedOnes() {
        expectConfigurationError(containing: ["kubeconfig inline", "context \"staging\" is not defined", "\"main\""]) {
            _ = try KubeClientConfiguration(
                kubeconfig: KubeConfig(yaml: kubeconfig(), source: "inline"), context: "staging")
        }
    }

    @Test func contextReferencesMissingClusterOrUser() {
        let missingCluster = """
            contexts:
            - {name: c, context: {cluster: nowhere}}
            current-context: c
            """
        expectConfigurationError(containing: [
            "kubeconfig inline", "refers to cluster \"nowhere\", which is not defined",
        ]) {
            _ = try KubeClientConfiguration(kubeconfig: KubeConfig(yaml: missingCluster, source: "inline"))
        }
        let missingUser = """
            clusters:
            - {name: k, cluster: {server: "https://k"}}
            contexts:
            - {name: c, context: {cluster: k, user: nobody}}
            current-context: c
            """
        expectConfigurationError(containing: ["refers to user \"nobody\", which is not defined"]) {
            _ = try KubeClientConfiguration(kubeconfig: KubeConfig(yaml: missingUser, source: "inline"))
        }
    }

    @Test func badBase64NamesTheFileAndField() async throws {
        try await withTemporaryDirectory { directory in
            let path = try directory.write(
                "config", kubeconfig(clusterFields: "    certificate-authority-data: not*base64!"))
            expectConfigurationError(
                containing: ["kubeconfig \(path): cluster \"local\": certificate-authority-data is not valid base64"]
            ) {
                _ = try KubeClientConfiguration.fromKubeconfig(path: path, environment: DictionaryEnvironment())
            }
        }
        expectConfigurationError(containing: ["user \"admin\": client-key-data is not valid base64"]) {
            let yaml = kubeconfig(
                userFields: """
                        client-certificate-data: \(base64(authority.certificatePEM))
                        client-key-data: "%%%"
                    """)
            _ = try KubeClientConfiguration(kubeconfig: KubeConfig(yaml: yaml, source: "inline"))
        }
    }

    @Test func certificateAuthorityThatIsNotPEM() {
        expectConfigurationError(containing: ["cluster \"local\": certificate-authority-data", "PEM certificate"]) {
            let yaml = kubeconfig(clusterFields: "    certificate-authority-data: \(base64("hello"))")
            _ = try KubeClientConfiguration(kubeconfig: KubeConfig(yaml: yaml, source: "inline"))
        }
    }

    @Test func unreadableReferencedFiles() async throws {
        try await withTemporaryDirectory { directory in
            let path = try directory.write("config", kubeconfig(clusterFields: "    certificate-authority: ca.crt"))
            expectConfigurationError(
                containing: [
                    "kubeconfig \(path): cluster \"local\": certificate-authority file "
                        + "\(directory.path)/ca.crt does not exist"
                ]
            ) {
                _ = try KubeClientConfiguration.fromKubeconfig(path: path, environment: DictionaryEnvironment())
            }
            let tokenPath = try directory.write("token-config", kubeconfig(userFields: "    tokenFile: missing-token"))
            expectConfigurationError(containing: [
                "user \"admin\": tokenFile file \(directory.path)/missing-token does not exist"
            ]) {
                _ = try KubeClientConfiguration.fromKubeconfig(path: tokenPath, environment: DictionaryEnvironment())
            }
        }
    }

    @Test func unsupportedCredentialMechanisms() {
        let exec = kubeconfig(
            userFields: """
                    exec:
                      apiVersion: client.authentication.k8s.io/v1
                      command: aws
                      args: [eks, get-token]
                """)
        expectConfigurationError(containing: ["user \"admin\" uses an exec credential plugin, which is not supported"])
        {
            _ = try KubeClientConfiguration(kubeconfig: KubeConfig(yaml: exec, source: "inline"))
        }
        let provider = kubeconfig(userFields: "    auth-provider: {name: gcp}")
        expectConfigurationError(containing: ["uses an auth-provider, which is not supported"]) {
            _ = try KubeClientConfiguration(kubeconfig: KubeConfig(yaml: provider, source: "inline"))
        }
        let basic = kubeconfig(userFields: "    username: admin\n    password: secret")
        expectConfigurationError(containing: ["basic authentication"]) {
            _ = try KubeClientConfiguration(kubeconfig: KubeConfig(yaml: basic, source: "inline"))
        }
    }

    @Test func certificateWithoutKey() throws {
        let client = try authority.issue(commonName: "alice")
        expectConfigurationError(containing: ["user \"admin\" has a client certificate but no client key"]) {
            let yaml = kubeconfig(userFields: "    client-certificate-data: \(base64(client.certificatePEM))")
            _ = try KubeClientConfiguration(kubeconfig: KubeConfig(yaml: yaml, source: "inline"))
        }
    }

    @Test func serverProblems() {
        expectConfigurationError(containing: ["cluster \"local\" has no server"]) {
            let yaml = "clusters: [{name: local, cluster: {}}]\ncontexts: [{name: c, context: {cluster: local}}]"
            _ = try KubeClientConfiguration(kubeconfig: KubeConfig(yaml: yaml, source: "inline"), context: "c")
        }
        expectConfigurationError(containing: ["server \"127.0.0.1:6443\" is not an http:// or https:// URL"]) {
            _ = try KubeClientConfiguration(
                kubeconfig: KubeConfig(yaml: kubeconfig(server: "127.0.0.1:6443"), source: "x"))
        }
        expectConfigurationError(containing: ["tls-server-name \"kubernetes\"", "not supported"]) {
            let yaml = kubeconfig(clusterFields: "    tls-server-name: kubernetes")
            _ = try KubeClientConfiguration(kubeconfig: KubeConfig(yaml: yaml, source: "inline"))
        }
    }

    @Test func tlsServerNameEqualToTheHostIsAccepted() throws {
        let yaml = kubeconfig(clusterFields: "    tls-server-name: 127.0.0.1")
        #expect(try KubeClientConfiguration(kubeconfig: KubeConfig(yaml: yaml, source: "inline")).server != "")
    }
}
