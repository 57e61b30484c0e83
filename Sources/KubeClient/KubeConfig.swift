import Foundation
import KubeModel
import LinkerdCore
import Yams

/// A kubeconfig file (`~/.kube/config`): the clusters, users and contexts that `kubectl` uses, with the fields this
/// client supports.
///
/// ``load(path:)`` reads one file and makes its relative paths absolute against the file's directory;
/// ``merging(_:)`` combines files the way `KUBECONFIG=a:b` does. Turn a context into a client configuration with
/// `KubeClientConfiguration(kubeconfig:context:)`.
public struct KubeConfig: Codable, Hashable, Sendable {
    public var apiVersion: String?
    public var kind: String?
    public var clusters: [NamedCluster]
    public var users: [NamedUser]
    public var contexts: [NamedContext]
    public var currentContext: String?

    /// A `clusters[]` entry.
    public struct NamedCluster: Codable, Hashable, Sendable {
        public var name: String
        public var cluster: Cluster
        /// The kubeconfig file the entry was read from, for error messages; not part of the YAML.
        public var source: String?

        public init(name: String, cluster: Cluster, source: String? = nil) {
            self.name = name
            self.cluster = cluster
            self.source = source
        }

        enum CodingKeys: String, CodingKey {
            case name, cluster
        }
    }

    /// How to reach and trust one API server.
    public struct Cluster: Codable, Hashable, Sendable {
        public var server: String?
        /// A path to a PEM CA file.
        public var certificateAuthority: String?
        /// Base64 of PEM CA certificates; wins over ``certificateAuthority``.
        public var certificateAuthorityData: String?
        public var insecureSkipTLSVerify: Bool?
        /// The name to verify the server certificate against. Only supported when it equals the server's host.
        public var tlsServerName: String?

        public init(
            server: String? = nil, certificateAuthority: String? = nil, certificateAuthorityData: String? = nil,
            insecureSkipTLSVerify: Bool? = nil, tlsServerName: String? = nil
        ) {
            self.server = server
            self.certificateAuthority = certificateAuthority
            self.certificateAuthorityData = certificateAuthorityData
            self.insecureSkipTLSVerify = insecureSkipTLSVerify
            self.tlsServerName = tlsServerName
        }

        enum CodingKeys: String, CodingKey {
            case server
            case certificateAuthority = "certificate-authority"
            case certificateAuthorityData = "certificate-authority-data"
            case insecureSkipTLSVerify = "insecure-skip-tls-verify"
            case tlsServerName = "tls-server-name"
        }
    }

    /// A `users[]` entry.
    public struct NamedUser: Codable, Hashable, Sendable {
        public var name: String
        public var user: User
        /// The kubeconfig file the entry was read from, for error messages; not part of the YAML.
        public var source: String?

        public init(name: String, user: User, source: String? = nil) {
            self.name = name
            self.user = user
            self.source = source
        }

        enum CodingKeys: String, CodingKey {
            case name, user
        }
    }

    /// How to authenticate. `exec`, `auth-provider` and `username`/`password` are read only to be rejected with a
    /// clear error: this client does not run credential plugins or basic authentication.
    public struct User: Codable, Hashable, Sendable {
        public var token: String?
        /// A path to a file holding the token; re-read as it rotates. ``token`` wins when both are set.
        public var tokenFile: String?
        /// A path to a PEM client certificate.
        public var clientCertificate: String?
        /// Base64 of a PEM client certificate; wins over ``clientCertificate``.
        public var clientCertificateData: String?
        /// A path to a PEM private key.
        public var clientKey: String?
        /// Base64 of a PEM private key; wins over ``clientKey``.
        public var clientKeyData: String?
        public var exec: JSONValue?
        public var authProvider: JSONValue?
        public var username: String?
        public var password: String?

        public init(
            token: String? = nil, tokenFile: String? = nil, clientCertificate: String? = nil,
            clientCertificateData: String? = nil, clientKey: String? = nil, clientKeyData: String? = nil
        ) {
            self.token = token
            self.tokenFile = tokenFile
            self.clientCertificate = clientCertificate
            self.clientCertificateData = clientCertificateData
            self.clientKey = clientKey
            self.clientKeyData = clientKeyData
        }

        enum CodingKeys: String, CodingKey {
            case token, tokenFile, exec, username, password
            case clientCertificate = "client-certificate"
            case clientCertificateData = "client-certificate-data"
            case clientKey = "client-key"
            case clientKeyData = "client-key-data"
            case authProvider = "auth-provider"
        }
    }

    /// A `contexts[]` entry.
    public struct NamedContext: Codable, Hashable, Sendable {
        public var name: String
        public var context: Context
        /// The kubeconfig file the entry was read from, for error messages; not part of the YAML.
        public var source: String?

        public init(name: String, context: Context, source: String? = nil) {
            self.name = name
            self.context = context
            self.source = source
        }

        enum CodingKeys: String, CodingKey {
            case name, context
        }
    }

    /// A cluster, a user and a default namespace.
    public struct Context: Codable, Hashable, Sendable {
        public var cluster: String
        /// Nil or empty for no credentials beyond the cluster's.
        public var user: String?
        public var namespace: String?

        public init(cluster: String, user: String? = nil, namespace: String? = nil) {
            self.cluster = cluster
            self.user = user
            self.namespace = namespace
        }
    }

    public init(
        clusters: [NamedCluster] = [], users: [NamedUser] = [], contexts: [NamedContext] = [],
        currentContext: String? = nil
    ) {
        self.apiVersion = "v1"
        self.kind = "Config"
        self.clusters = clusters
        self.users = users
        self.contexts = contexts
        self.currentContext = currentContext
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        apiVersion = try container.decodeIfPresent(String.self, forKey: .apiVersion)
        kind = try container.decodeIfPresent(String.self, forKey: .kind)
        clusters = try container.decodeIfPresent([NamedCluster].self, forKey: .clusters) ?? []
        users = try container.decodeIfPresent([NamedUser].self, forKey: .users) ?? []
        contexts = try container.decodeIfPresent([NamedContext].self, forKey: .contexts) ?? []
        currentContext = try container.decodeIfPresent(String.self, forKey: .currentContext)
    }

    enum CodingKeys: String, CodingKey {
        case apiVersion, kind, clusters, users, contexts
        case currentContext = "current-context"
    }
}

// MARK: - Reading and merging

extension KubeConfig {
    /// Parses kubeconfig YAML. Entries are tagged with `source`; relative paths are left as written.
    ///
    /// - Parameter source: the file (or other origin) of the text, named in errors and in the entries' `source`.
    /// - Throws: `KubeError` code `.configuration` when the text is not YAML or not shaped like a kubeconfig.
    public init(yaml: String, source: String) throws(KubeError) {
        if yaml.trimmingWhitespace.isEmpty {
            self.init()
            return
        }
        do {
            self = try YAMLDecoder().decode(KubeConfig.self, from: yaml)
        } catch let error as DecodingError {
            if case .dataCorrupted(let context) = error, let yamlError = context.underlyingError as? YamlError {
                throw Self.invalidYAML(yamlError, source: source)
            }
            throw KubeError(
                code: .configuration,
                message: "kubeconfig \(source) is not a valid kubeconfig: \(DecodingFailure.describe(error))")
        } catch {
            throw Self.invalidYAML(error, source: source)
        }
        for index in clusters.indices { clusters[index].source = source }
        for index in users.indices { users[index].source = source }
        for index in contexts.indices { contexts[index].source = source }
    }

    /// The error for text that the YAML parser rejects, quoting the first line of the parser's message (which names
    /// the line and column).
    private static func invalidYAML(_ error: any Error, source: String) -> KubeError {
        let firstLine = String(describing: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
        return KubeError(code: .configuration, message: "kubeconfig \(source) is not valid YAML: \(firstLine)")
    }

    /// Reads the kubeconfig file at `path`, resolving its relative `certificate-authority`, `client-certificate`,
    /// `client-key` and `tokenFile` paths against the file's directory, as kubectl does.
    ///
    /// - Throws: `KubeError` code `.configuration` when the file cannot be read or parsed.
    public static func load(path: String) throws(KubeError) -> KubeConfig {
        var config = try KubeConfig(yaml: ConfigurationFile.readText(path, what: "kubeconfig"), source: path)
        let directory = ConfigurationFile.directory(of: path)
        func resolve(_ value: inout String?) {
            value = value.map { ConfigurationFile.resolve($0, against: directory) }
        }
        for index in config.clusters.indices {
            resolve(&config.clusters[index].cluster.certificateAuthority)
        }
        for index in config.users.indices {
            resolve(&config.users[index].user.tokenFile)
            resolve(&config.users[index].user.clientCertificate)
            resolve(&config.users[index].user.clientKey)
        }
        return config
    }

    /// This kubeconfig with the entries of `other` added the way kubectl merges `KUBECONFIG` files: an entry whose
    /// name this one already has is ignored, and `other`'s current context is used only when this one sets none.
    public func merging(_ other: KubeConfig) -> KubeConfig {
        var merged = self
        let clusterNames = Set(clusters.map(\.name))
        merged.clusters += other.clusters.filter { !clusterNames.contains($0.name) }
        let userNames = Set(users.map(\.name))
        merged.users += other.users.filter { !userNames.contains($0.name) }
        let contextNames = Set(contexts.map(\.name))
        merged.contexts += other.contexts.filter { !contextNames.contains($0.name) }
        if merged.currentContext?.isEmpty ?? true {
            merged.currentContext = other.currentContext
        }
        return merged
    }
}
