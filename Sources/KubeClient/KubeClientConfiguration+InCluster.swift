import KubeModel
import LinkerdCore

extension KubeClientConfiguration {
    /// Where Kubernetes mounts a pod's service account token, CA certificate and namespace.
    public static let defaultServiceAccountDirectory = "/var/run/secrets/kubernetes.io/serviceaccount"

    /// The configuration of a process running in a pod, the way client-go builds it.
    ///
    /// - The server is `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT` (an IPv6 host is bracketed).
    /// - Requests authenticate with `<directory>/token`, re-read as it rotates.
    /// - The server certificate must be signed by `<directory>/ca.crt`.
    /// - The namespace is `$POD_NAMESPACE`, else the content of `<directory>/namespace`, else `default`.
    ///
    /// - Throws: `KubeError` code `.configuration` naming the variable or file that is missing or invalid.
    public static func inCluster(
        environment: some EnvironmentReader = ProcessEnvironment(),
        serviceAccountDirectory: String = defaultServiceAccountDirectory
    ) throws(KubeError) -> KubeClientConfiguration {
        guard let host = environment.string("KUBERNETES_SERVICE_HOST") else {
            throw KubeError(
                code: .configuration,
                message: "not running in a Kubernetes pod: KUBERNETES_SERVICE_HOST is not set")
        }
        let port: UInt16?
        do {
            port = try environment.port("KUBERNETES_SERVICE_PORT")
        } catch {
            throw KubeError(code: .configuration, message: "in-cluster configuration: \(error)")
        }
        guard let port else {
            throw KubeError(
                code: .configuration,
                message: "KUBERNETES_SERVICE_HOST is set but KUBERNETES_SERVICE_PORT is not")
        }
        guard port > 0 else {
            throw KubeError(code: .configuration, message: "KUBERNETES_SERVICE_PORT must not be 0")
        }
        let urlHost = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host

        let directory =
            serviceAccountDirectory.hasSuffix("/")
            ? String(serviceAccountDirectory.dropLast()) : serviceAccountDirectory
        let tokenPath = "\(directory)/token"
        let token = try ConfigurationFile.readText(tokenPath, what: "service account token")
        guard !token.trimmingWhitespace.isEmpty else {
            throw KubeError(code: .configuration, message: "service account token file \(tokenPath) is empty")
        }
        let authorityPath = "\(directory)/ca.crt"
        let authority = try ConfigurationFile.read(authorityPath, what: "service account CA certificate")
        _ = try TLSMaterial.certificates(fromPEM: authority, what: "service account CA certificate \(authorityPath)")

        let namespace: String
        let namespacePath = "\(directory)/namespace"
        if let fromEnvironment = environment.string("POD_NAMESPACE") {
            namespace = fromEnvironment
        } else if ConfigurationFile.exists(namespacePath),
            case let fromFile = try ConfigurationFile.readText(namespacePath, what: "service account namespace")
                .trimmingWhitespace,
            !fromFile.isEmpty
        {
            namespace = fromFile
        } else {
            namespace = "default"
        }

        return KubeClientConfiguration(
            server: "https://\(urlHost):\(port)",
            certificateAuthorityPEM: authority,
            authentication: .bearerTokenFile(path: tokenPath),
            namespace: namespace
        )
    }

    /// The in-cluster configuration when running in a pod (`KUBERNETES_SERVICE_HOST` is set and the service account
    /// token file exists), otherwise the kubeconfig's current context as ``fromKubeconfig(path:context:environment:)``
    /// finds it.
    ///
    /// - Throws: `KubeError` code `.configuration` from whichever of the two was chosen.
    public static func automatic(
        environment: some EnvironmentReader = ProcessEnvironment(),
        serviceAccountDirectory: String = defaultServiceAccountDirectory
    ) throws(KubeError) -> KubeClientConfiguration {
        let directory =
            serviceAccountDirectory.hasSuffix("/")
            ? String(serviceAccountDirectory.dropLast()) : serviceAccountDirectory
        if environment.string("KUBERNETES_SERVICE_HOST") != nil, ConfigurationFile.exists("\(directory)/token") {
            return try inCluster(environment: environment, serviceAccountDirectory: directory)
        }
        return try fromKubeconfig(environment: environment)
    }

    /// What a control-plane executable's `--kubeconfig` flag means: that file's current context when given, otherwise
    /// ``automatic(environment:serviceAccountDirectory:)``.
    ///
    /// - Throws: `KubeError` code `.configuration` from whichever was chosen.
    public static func commandLine(kubeconfig: String?) throws(KubeError) -> KubeClientConfiguration {
        if let kubeconfig {
            return try fromKubeconfig(path: kubeconfig)
        }
        return try automatic()
    }
}
