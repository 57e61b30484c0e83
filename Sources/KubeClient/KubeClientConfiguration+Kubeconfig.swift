import Foundation
import KubeModel
import LinkerdCore

extension KubeClientConfiguration {
    /// The configuration of a kubeconfig context, as kubectl would use it.
    ///
    /// - Parameter context: the context to use; nil uses the kubeconfig's `current-context`.
    /// - Throws: `KubeError` code `.configuration`, naming the kubeconfig file, when the context, its cluster or its
    ///   user is missing; when base64 data or a PEM file is invalid; when a referenced file cannot be read; and when
    ///   the user needs an unsupported mechanism (`exec`, `auth-provider`, basic authentication).
    public init(kubeconfig: KubeConfig, context: String? = nil) throws(KubeError) {
        let origin = Self.origin(of: kubeconfig)
        guard let contextName = context ?? kubeconfig.currentContext.flatMap({ $0.isEmpty ? nil : $0 }) else {
            throw KubeError(
                code: .configuration,
                message: "kubeconfig \(origin): no context was given and current-context is not set")
        }
        guard let namedContext = kubeconfig.contexts.first(where: { $0.name == contextName }) else {
            let available = kubeconfig.contexts.map { "\"\($0.name)\"" }.joined(separator: ", ")
            throw KubeError(
                code: .configuration,
                message: "kubeconfig \(origin): context \"\(contextName)\" is not defined"
                    + (available.isEmpty ? " (there are no contexts)" : " (contexts: \(available))"))
        }
        let contextSource = namedContext.source ?? origin
        let clusterName = namedContext.context.cluster
        guard let namedCluster = kubeconfig.clusters.first(where: { $0.name == clusterName }) else {
            throw KubeError(
                code: .configuration,
                message:
                    "kubeconfig \(contextSource): context \"\(contextName)\" refers to cluster \"\(clusterName)\", "
                    + "which is not defined")
        }
        self = try Self.connection(to: namedCluster, origin: origin)

        if let userName = namedContext.context.user, !userName.isEmpty {
            guard let namedUser = kubeconfig.users.first(where: { $0.name == userName }) else {
                throw KubeError(
                    code: .configuration,
                    message: "kubeconfig \(contextSource): context \"\(contextName)\" refers to user \"\(userName)\", "
                        + "which is not defined")
            }
            try applyCredentials(of: namedUser, origin: origin)
        }
        if let namespace = namedContext.context.namespace, !namespace.isEmpty {
            self.namespace = namespace
        }
    }

    /// The configuration of a context of the kubeconfig that kubectl would read.
    ///
    /// The files are, in order of preference: `path`; the colon-separated files of `$KUBECONFIG`, merged with the
    /// first file to define a name winning and `current-context` taken from the first file that sets it (files that
    /// do not exist are skipped, as kubectl does); `$HOME/.kube/config`.
    ///
    /// - Parameter context: the context to use; nil uses `current-context`.
    /// - Throws: `KubeError` code `.configuration` when no kubeconfig file exists, when one cannot be read or parsed,
    ///   and for everything ``init(kubeconfig:context:)`` rejects.
    public static func fromKubeconfig(
        path: String? = nil,
        context: String? = nil,
        environment: some EnvironmentReader = ProcessEnvironment()
    ) throws(KubeError) -> KubeClientConfiguration {
        let paths: [String]
        if let path {
            paths = [path]
        } else if let list = environment.string("KUBECONFIG") {
            let listed = list.split(separator: ":").map(String.init).filter { !$0.isEmpty }
            paths = listed.filter(ConfigurationFile.exists)
            guard !paths.isEmpty else {
                throw KubeError(
                    code: .configuration, message: "none of the kubeconfig files in KUBECONFIG=\(list) exists")
            }
        } else if let home = environment.string("HOME") {
            paths = ["\(home.hasSuffix("/") ? String(home.dropLast()) : home)/.kube/config"]
        } else {
            throw KubeError(
                code: .configuration,
                message: "no kubeconfig to read: neither KUBECONFIG nor HOME is set, and this is not a pod")
        }
        var merged = KubeConfig()
        for path in paths {
            merged = merged.merging(try KubeConfig.load(path: path))
        }
        if merged.clusters.isEmpty, merged.contexts.isEmpty, merged.users.isEmpty {
            throw KubeError(
                code: .configuration,
                message: "kubeconfig \(paths.joined(separator: ":")) defines no clusters, users or contexts")
        }
        return try KubeClientConfiguration(kubeconfig: merged, context: context)
    }

    // MARK: - Pieces

    /// The server address and trust settings of a cluster entry.
    private static func connection(
        to named: KubeConfig.NamedCluster, origin: String
    ) throws(KubeError) -> KubeClientConfiguration {
        let source = named.source ?? origin
        let what = "kubeconfig \(source): cluster \"\(named.name)\""
        let cluster = named.cluster
        guard let server = cluster.server, !server.isEmpty else {
            throw KubeError(code: .configuration, message: "\(what) has no server")
        }
        guard let components = URLComponents(string: server), let scheme = components.scheme,
            scheme == "https" || scheme == "http", let host = components.host, !host.isEmpty
        else {
            throw KubeError(
                code: .configuration, message: "\(what): server \"\(server)\" is not an http:// or https:// URL")
        }
        if let serverName = cluster.tlsServerName, !serverName.isEmpty,
            serverName.lowercased() != host.trimmingCharacters(in: CharacterSet(charactersIn: "[]")).lowercased()
        {
            throw KubeError(
                code: .configuration,
                message: "\(what): tls-server-name \"\(serverName)\" differs from the server's host \"\(host)\"; "
                    + "verifying the server certificate against another name is not supported")
        }
        var configuration = KubeClientConfiguration(
            server: server, insecureSkipTLSVerify: cluster.insecureSkipTLSVerify ?? false)
        if let data = cluster.certificateAuthorityData, !data.isEmpty {
            let pem = try decodeBase64(data, what: "\(what): certificate-authority-data")
            _ = try TLSMaterial.certificates(fromPEM: pem, what: "\(what): certificate-authority-data")
            configuration.certificateAuthorityPEM = pem
        } else if let path = cluster.certificateAuthority, !path.isEmpty {
            let pem = try ConfigurationFile.read(path, what: "\(what): certificate-authority")
            _ = try TLSMaterial.certificates(fromPEM: pem, what: "\(what): certificate-authority \(path)")
            configuration.certificateAuthorityPEM = pem
        }
        return configuration
    }

    /// Sets the authentication and client certificate of a user entry.
    private mutating func applyCredentials(of named: KubeConfig.NamedUser, origin: String) throws(KubeError) {
        let what = "kubeconfig \(named.source ?? origin): user \"\(named.name)\""
        let user = named.user
        if user.exec != nil {
            throw KubeError(
                code: .configuration,
                message: "\(what) uses an exec credential plugin, which is not supported; use a token, a tokenFile "
                    + "or a client certificate")
        }
        if user.authProvider != nil {
            throw KubeError(
                code: .configuration,
                message: "\(what) uses an auth-provider, which is not supported; use a token, a tokenFile or a "
                    + "client certificate")
        }
        if user.username != nil || user.password != nil {
            throw KubeError(
                code: .configuration,
                message: "\(what) uses basic authentication (username/password), which is not supported")
        }

        if let token = user.token, !token.isEmpty {
            authentication = .bearerToken(token)
        } else if let path = user.tokenFile, !path.isEmpty {
            let token = try ConfigurationFile.readText(path, what: "\(what): tokenFile")
            guard !token.trimmingWhitespace.isEmpty else {
                throw KubeError(code: .configuration, message: "\(what): tokenFile \(path) is empty")
            }
            authentication = .bearerTokenFile(path: path)
        }

        let certificate = try pemData(
            data: user.clientCertificateData, file: user.clientCertificate, field: "client-certificate", what: what)
        let key = try pemData(data: user.clientKeyData, file: user.clientKey, field: "client-key", what: what)
        switch (certificate, key) {
        case (nil, nil):
            return
        case (let certificate?, let key?):
            _ = try TLSMaterial.certificates(fromPEM: certificate, what: "\(what): client certificate")
            _ = try TLSMaterial.privateKey(fromPEM: key, what: "\(what): client key")
            clientCertificatePEM = certificate
            clientKeyPEM = key
        case (.some, nil):
            throw KubeError(code: .configuration, message: "\(what) has a client certificate but no client key")
        case (nil, .some):
            throw KubeError(code: .configuration, message: "\(what) has a client key but no client certificate")
        }
    }

    /// The bytes of `<field>-data` (base64) or else of the file `<field>`; nil when neither is set.
    private func pemData(data: String?, file: String?, field: String, what: String) throws(KubeError) -> [UInt8]? {
        if let data, !data.isEmpty {
            return try Self.decodeBase64(data, what: "\(what): \(field)-data")
        }
        if let file, !file.isEmpty {
            return try ConfigurationFile.read(file, what: "\(what): \(field)")
        }
        return nil
    }

    /// Decodes standard base64, ignoring line breaks and spaces.
    private static func decodeBase64(_ text: String, what: String) throws(KubeError) -> [UInt8] {
        let compact = text.filter { !$0.isWhitespace }
        guard let data = Data(base64Encoded: compact) else {
            throw KubeError(code: .configuration, message: "\(what) is not valid base64")
        }
        return Array(data)
    }

    /// The files a kubeconfig was read from, for error messages about the whole document.
    private static func origin(of kubeconfig: KubeConfig) -> String {
        var sources: [String] = []
        let all = kubeconfig.contexts.map(\.source) + kubeconfig.clusters.map(\.source) + kubeconfig.users.map(\.source)
        for case let source? in all where !sources.contains(source) {
            sources.append(source)
        }
        return sources.isEmpty ? "(in memory)" : sources.joined(separator: ":")
    }
}
