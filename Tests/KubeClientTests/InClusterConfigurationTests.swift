import KubeClient
import KubeModel
import LinkerdCore
import LinkerdTestSupport
import Testing

@Suite("in-cluster configuration")
struct InClusterConfigurationTests {
    /// A service account directory with a token, the CA certificate and a namespace.
    func serviceAccount(in directory: TemporaryDirectory, namespace: String? = "linkerd") throws -> String {
        let authority = try TestCertificateAuthority()
        try directory.write("sa/token", "token-1\n")
        try directory.write("sa/ca.crt", authority.certificatePEM)
        if let namespace {
            try directory.write("sa/namespace", namespace)
        }
        return "\(directory.path)/sa"
    }

    @Test func readsTheServiceAccount() async throws {
        try await withTemporaryDirectory { directory in
            let sa = try serviceAccount(in: directory)
            let configuration = try KubeClientConfiguration.inCluster(
                environment: DictionaryEnvironment([
                    "KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443",
                ]),
                serviceAccountDirectory: sa)
            #expect(configuration.server == "https://10.96.0.1:443")
            #expect(configuration.authentication == .bearerTokenFile(path: "\(sa)/token"))
            #expect(configuration.namespace == "linkerd")
            #expect(configuration.certificateAuthorityPEM?.isEmpty == false)
        }
    }

    @Test func bracketsAnIPv6Host() async throws {
        try await withTemporaryDirectory { directory in
            let sa = try serviceAccount(in: directory)
            let configuration = try KubeClientConfiguration.inCluster(
                environment: DictionaryEnvironment([
                    "KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "6443",
                ]),
                serviceAccountDirectory: sa)
            #expect(configuration.server == "https://[fd00::1]:6443")
        }
    }

    @Test func namespaceFromEnvironmentThenFileThenDefault() async throws {
        try await withTemporaryDirectory { directory in
            let sa = try serviceAccount(in: directory, namespace: nil)
            var environment = DictionaryEnvironment([
                "KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443",
            ])
            #expect(
                try KubeClientConfiguration.inCluster(environment: environment, serviceAccountDirectory: sa).namespace
                    == "default")
            try directory.write("sa/namespace", "from-file\n")
            #expect(
                try KubeClientConfiguration.inCluster(environment: environment, serviceAccountDirectory: sa).namespace
                    == "from-file")
            environment.values["POD_NAMESPACE"] = "from-env"
            #expect(
                try KubeClientConfiguration.inCluster(environment: environment, serviceAccountDirectory: sa).namespace
                    == "from-env")
        }
    }

    @Test func missingPieces() async throws {
        try await withTemporaryDirectory { directory in
            let sa = try serviceAccount(in: directory)
            expectConfigurationError(containing: ["KUBERNETES_SERVICE_HOST is not set"]) {
                _ = try KubeClientConfiguration.inCluster(
                    environment: DictionaryEnvironment(), serviceAccountDirectory: sa)
            }
            expectConfigurationError(containing: ["KUBERNETES_SERVICE_PORT is not"]) {
                _ = try KubeClientConfiguration.inCluster(
                    environment: DictionaryEnvironment(["KUBERNETES_SERVICE_HOST": "10.0.0.1"]),
                    serviceAccountDirectory: sa)
            }
            expectConfigurationError(containing: ["KUBERNETES_SERVICE_PORT=\"https\" is not valid"]) {
                _ = try KubeClientConfiguration.inCluster(
                    environment: DictionaryEnvironment([
                        "KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "https",
                    ]),
                    serviceAccountDirectory: sa)
            }
            let environment = DictionaryEnvironment([
                "KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443",
            ])
            expectConfigurationError(containing: [
                "service account token file \(directory.path)/elsewhere/token does not exist"
            ]) {
                _ = try KubeClientConfiguration.inCluster(
                    environment: environment, serviceAccountDirectory: "\(directory.path)/elsewhere")
            }
            try directory.write("sa/token", "  \n")
            expectConfigurationError(containing: ["service account token file \(sa)/token is empty"]) {
                _ = try KubeClientConfiguration.inCluster(environment: environment, serviceAccountDirectory: sa)
            }
            try directory.write("sa/token", "token")
            try directory.write("sa/ca.crt", "not a certificate")
            expectConfigurationError(containing: ["service account CA certificate \(sa)/ca.crt", "PEM certificate"]) {
                _ = try KubeClientConfiguration.inCluster(environment: environment, serviceAccountDirectory: sa)
            }
        }
    }

    @Test func automaticChoosesInClusterWhenTheTokenExists() async throws {
        try await withTemporaryDirectory { directory in
            let sa = try serviceAccount(in: directory)
            let configuration = try KubeClientConfiguration.automatic(
                environment: DictionaryEnvironment([
                    "KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443",
                ]),
                serviceAccountDirectory: sa)
            #expect(configuration.server == "https://10.0.0.1:443")
        }
    }
}
