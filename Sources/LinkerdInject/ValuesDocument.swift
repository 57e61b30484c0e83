import KubeModel
import LinkerdCore
import Yams

/// The values document of ConfigMap `linkerd-config`, read from YAML (or JSON, which YAML includes) into JSON.
enum ValuesDocument {
    /// The top-level mapping of `text`; an empty document is the empty mapping.
    ///
    /// - Throws: ``MeshConfigurationError`` when `text` is not YAML or its top level is not a mapping.
    static func parse(_ text: String) throws(MeshConfigurationError) -> [String: JSONValue] {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw MeshConfigurationError(keyPath: "", value: "", reason: "not YAML or JSON: \(error)")
        }
        guard let root else { return [:] }
        var budget = YAMLConversion.maximumValues
        let value: JSONValue
        do throws(YAMLConversion.Failure) {
            value = try YAMLConversion.json(from: root, budget: &budget)
        } catch {
            throw MeshConfigurationError(keyPath: "", value: "", reason: error.description)
        }
        switch value {
        case .object(let members):
            return members
        case .null:
            return [:]
        case let other:
            throw MeshConfigurationError(
                keyPath: "", value: "", reason: "the document is a \(other.typeName), expected a mapping of keys")
        }
    }
}

/// YAML to JSON for every reader of YAML documents (the values document, `linkerd inject` manifests), bounded so
/// that aliases cannot expand a small document into an enormous value.
public enum YAMLConversion {
    /// Why a YAML node has no JSON value: a precise reason, with the line and column when known.
    public struct Failure: Error, Hashable, Sendable, CustomStringConvertible {
        public var description: String

        public init(_ description: String) {
            self.description = description
        }
    }

    /// The most values (scalars, mappings and sequences) one document may expand to. Aliases let a small document
    /// name the same node many times; the bound keeps such a document from exhausting memory and time.
    public static let maximumValues = 1_000_000

    /// The JSON form of a composed YAML node, counting every value it expands to against `budget`.
    ///
    /// Scalars resolve as YAML's core schema types them: `null`, booleans, integers (exact in `Int64`; larger ones
    /// become doubles), floats; every other scalar, quoted or a timestamp, stays the string it was written as.
    ///
    /// - Throws: ``Failure`` when the document expands to more than `budget` values, a number is not finite
    ///   (`.inf`, `.nan`: JSON has no such numbers), a mapping key is not a scalar or appears twice.
    public static func json(from node: Node, budget: inout Int) throws(Failure) -> JSONValue {
        budget -= 1
        guard budget >= 0 else {
            throw Failure("the document expands to more than \(maximumValues) values (through aliases?)")
        }
        switch node {
        case .scalar(let scalar):
            // `Tag.name` is internal to Yams; its description is the resolved tag name.
            switch Tag.Name(rawValue: node.tag.description) {
            case .null:
                return .null
            case .bool:
                return node.bool.map(JSONValue.bool) ?? .string(scalar.string)
            case .int:
                if let integer = Int64.construct(from: scalar) { return .integer(integer) }
                return try finite(node, scalar)
            case .float:
                return try finite(node, scalar)
            default:
                return .string(scalar.string)
            }
        case .mapping(let mapping):
            var members: [String: JSONValue] = [:]
            for (key, value) in mapping {
                guard case .scalar(let keyScalar) = key else {
                    throw Failure("a mapping key at \(location(key.mark)) is not a scalar")
                }
                guard members.updateValue(try json(from: value, budget: &budget), forKey: keyScalar.string) == nil
                else {
                    throw Failure("the key \(keyScalar.string.quoted) at \(location(key.mark)) appears twice")
                }
            }
            return .object(members)
        case .sequence(let sequence):
            var elements: [JSONValue] = []
            for element in sequence {
                elements.append(try json(from: element, budget: &budget))
            }
            return .array(elements)
        case .alias:
            // The composer replaces each alias with the node it names, so an alias node is never read.
            throw Failure("an unresolved alias at \(location(node.mark))")
        }
    }

    private static func finite(_ node: Node, _ scalar: Node.Scalar) throws(Failure) -> JSONValue {
        guard let number = node.float else { return .string(scalar.string) }
        guard number.isFinite else {
            throw Failure(
                "the number \(scalar.string) at \(location(node.mark)) is not finite; JSON has no such numbers")
        }
        return .double(number)
    }

    private static func location(_ mark: Mark?) -> String {
        guard let mark else { return "an unknown position" }
        return "line \(mark.line), column \(mark.column)"
    }
}

/// Reads typed settings out of the values document, naming the key path of any value it rejects.
struct ValuesParser {
    let document: [String: JSONValue]

    /// The configuration the document describes, over ``MeshConfiguration/defaults``.
    func configuration() throws(MeshConfigurationError) -> MeshConfiguration {
        var configuration = MeshConfiguration.defaults
        if let namespace = try nonEmptyString("namespace") {
            configuration.controlPlaneNamespace = namespace
        }
        if let domain = try nonEmptyString("clusterDomain") {
            configuration.clusterDomain = domain
        }
        configuration.identityTrustDomain = try nonEmptyString("identityTrustDomain") ?? configuration.clusterDomain
        if let version = try nonEmptyString("linkerdVersion") {
            configuration.linkerdVersion = version
        }
        let pullPolicy = try nonEmptyString("imagePullPolicy") ?? "IfNotPresent"

        var proxy = MeshConfiguration.Proxy()
        proxy.imageName = try nonEmptyString("proxy.image.name") ?? proxy.imageName
        proxy.imagePullPolicy = try nonEmptyString("proxy.image.pullPolicy") ?? pullPolicy
        configuration.proxyVersion = try nonEmptyString("proxy.image.version") ?? configuration.linkerdVersion
        proxy.ports.admin = try port("proxy.ports.admin") ?? proxy.ports.admin
        proxy.ports.control = try port("proxy.ports.control") ?? proxy.ports.control
        proxy.ports.inbound = try port("proxy.ports.inbound") ?? proxy.ports.inbound
        proxy.ports.outbound = try port("proxy.ports.outbound") ?? proxy.ports.outbound
        proxy.uid = try integer("proxy.uid", in: 0...Int64(UInt32.max)) ?? proxy.uid
        proxy.gid = try integer("proxy.gid", in: -1...Int64(UInt32.max)) ?? proxy.gid
        proxy.logLevel = try nonEmptyString("proxy.logLevel") ?? proxy.logLevel
        proxy.logFormat = try nonEmptyString("proxy.logFormat") ?? proxy.logFormat
        proxy.logHTTPHeaders = try nonEmptyString("proxy.logHTTPHeaders") ?? proxy.logHTTPHeaders
        proxy.opaquePorts = try portList("proxy.opaquePorts") ?? proxy.opaquePorts
        if let policy = try nonEmptyString("proxy.defaultInboundPolicy") {
            guard let parsed = DefaultInboundPolicy(rawValue: policy) else {
                throw failure("proxy.defaultInboundPolicy", "expected one of \(DefaultInboundPolicy.allNames)")
            }
            proxy.defaultInboundPolicy = parsed
        }
        proxy.nativeSidecar = try bool("proxy.nativeSidecar") ?? proxy.nativeSidecar
        proxy.await = try bool("proxy.await") ?? proxy.await
        proxy.enableShutdownEndpoint = try bool("proxy.enableShutdownEndpoint") ?? proxy.enableShutdownEndpoint
        if let seconds = try integer("proxy.waitBeforeExitSeconds", in: 0...Int64.max) {
            proxy.waitBeforeExitSeconds = UInt64(seconds)
        }
        proxy.resources.cpu = try constraint("proxy.resources.cpu")
        proxy.resources.memory = try constraint("proxy.resources.memory")
        proxy.resources.ephemeralStorage = try constraint("proxy.resources.ephemeral-storage")
        proxy.additionalEnv = try environment("proxy.additionalEnv")
        proxy.outboundConnectTimeout = try nonEmptyString("proxy.outboundConnectTimeout") ?? "1000ms"
        proxy.inboundConnectTimeout = try nonEmptyString("proxy.inboundConnectTimeout") ?? "100ms"
        proxy.outboundDiscoveryCacheUnusedTimeout =
            try nonEmptyString("proxy.outboundDiscoveryCacheUnusedTimeout") ?? "5s"
        proxy.inboundDiscoveryCacheUnusedTimeout =
            try nonEmptyString("proxy.inboundDiscoveryCacheUnusedTimeout") ?? "90s"
        proxy.disableOutboundProtocolDetectTimeout = try bool("proxy.disableOutboundProtocolDetectTimeout") ?? false
        proxy.disableInboundProtocolDetectTimeout = try bool("proxy.disableInboundProtocolDetectTimeout") ?? false
        proxy.requireIdentityOnInboundPorts = try portList("proxy.requireIdentityOnInboundPorts") ?? []
        proxy.enableExternalProfiles = try bool("proxy.enableExternalProfiles") ?? false
        proxy.metricsHostnameLabels = try bool("proxy.metrics.hostnameLabels") ?? false
        proxy.accessLog = try nonEmptyString("proxy.accessLog") ?? ""
        proxy.shutdownGracePeriod = try nonEmptyString("proxy.shutdownGracePeriod") ?? ""
        configuration.proxy = proxy

        var proxyInit = MeshConfiguration.ProxyInit()
        if let mode = try nonEmptyString("proxyInit.iptablesMode") {
            guard mode == "nft" || mode == "legacy" else {
                throw failure("proxyInit.iptablesMode", "expected nft or legacy")
            }
            proxyInit.iptablesMode = mode
        }
        proxyInit.ignoreInboundPorts = try portList("proxyInit.ignoreInboundPorts") ?? proxyInit.ignoreInboundPorts
        proxyInit.ignoreOutboundPorts = try portList("proxyInit.ignoreOutboundPorts") ?? proxyInit.ignoreOutboundPorts
        proxyInit.skipSubnets = try cidrList("proxyInit.skipSubnets") ?? []
        proxyInit.runAsRoot = try bool("proxyInit.runAsRoot") ?? false
        proxyInit.privileged = try bool("proxyInit.privileged") ?? false
        proxyInit.runAsUser = try integer("proxyInit.runAsUser", in: 0...Int64(UInt32.max)) ?? proxyInit.runAsUser
        proxyInit.runAsGroup = try integer("proxyInit.runAsGroup", in: 0...Int64(UInt32.max)) ?? proxyInit.runAsGroup
        proxyInit.closeWaitTimeoutSecs = try integer("proxyInit.closeWaitTimeoutSecs", in: 0...Int64.max) ?? 0
        proxyInit.logLevel = try nonEmptyString("proxyInit.logLevel") ?? ""
        proxyInit.logFormat = try nonEmptyString("proxyInit.logFormat") ?? ""
        configuration.proxyInit = proxyInit

        configuration.cniEnabled = try bool("cniEnabled") ?? false
        configuration.disableIPv6 = try bool("disableIPv6") ?? true
        configuration.clusterNetworks = try cidrList("clusterNetworks") ?? configuration.clusterNetworks
        configuration.serviceAccountTokenProjection = try bool("identity.serviceAccountTokenProjection") ?? true
        configuration.debugImage = MeshConfiguration.Image(
            name: try nonEmptyString("debugContainer.image.name") ?? configuration.debugImage.name,
            version: try nonEmptyString("debugContainer.image.version") ?? configuration.linkerdVersion,
            pullPolicy: try nonEmptyString("debugContainer.image.pullPolicy") ?? pullPolicy
        )
        return configuration
    }

    // MARK: - Typed lookups

    /// The value at a dotted key path; nil when it, or a mapping on the way, is absent or `null`.
    ///
    /// - Throws: when a step on the way is neither a mapping nor `null`.
    private func value(_ path: String) throws(MeshConfigurationError) -> JSONValue? {
        var current = JSONValue.object(document)
        var walked: [Substring] = []
        for key in path.split(separator: ".") {
            switch current {
            case .object(let members):
                guard let next = members[String(key)], next != .null else { return nil }
                current = next
                walked.append(key)
            default:
                throw MeshConfigurationError(
                    keyPath: walked.joined(separator: "."), value: current.jsonString,
                    reason: "expected a mapping, found a \(current.typeName)")
            }
        }
        return current
    }

    private func failure(_ path: String, _ reason: String) -> MeshConfigurationError {
        let text = (try? value(path))??.jsonString ?? "null"
        return MeshConfigurationError(keyPath: path, value: text, reason: reason)
    }

    /// A string; the empty string counts as unset, as Helm's `default` treats it.
    private func nonEmptyString(_ path: String) throws(MeshConfigurationError) -> String? {
        guard let found = try value(path) else { return nil }
        guard case .string(let text) = found else {
            throw failure(path, "expected a string, found a \(found.typeName)")
        }
        return text.isEmpty ? nil : text
    }

    private func bool(_ path: String) throws(MeshConfigurationError) -> Bool? {
        guard let found = try value(path) else { return nil }
        guard case .bool(let flag) = found else {
            throw failure(path, "expected true or false, found a \(found.typeName)")
        }
        return flag
    }

    private func integer(_ path: String, in range: ClosedRange<Int64>) throws(MeshConfigurationError) -> Int64? {
        guard let found = try value(path) else { return nil }
        let number: Int64
        switch found {
        case .integer(let integer):
            number = integer
        case .double(let double) where double.rounded() == double && abs(double) < 9e18:
            number = Int64(double)
        default:
            throw failure(path, "expected an integer, found a \(found.typeName)")
        }
        guard range.contains(number) else {
            throw failure(path, "expected an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        return number
    }

    private func port(_ path: String) throws(MeshConfigurationError) -> Int? {
        try integer(path, in: 1...65535).map(Int.init)
    }

    /// A comma-separated port list, or a single port as an integer.
    private func portList(_ path: String) throws(MeshConfigurationError) -> PortList? {
        guard let found = try value(path) else { return nil }
        let text: String
        switch found {
        case .string(let string): text = string
        case .integer(let integer): text = String(integer)
        default: throw failure(path, "expected a comma-separated list of ports, found a \(found.typeName)")
        }
        do throws(ParseError) {
            return try PortList(parsing: text)
        } catch {
            throw failure(path, error.description)
        }
    }

    private func cidrList(_ path: String) throws(MeshConfigurationError) -> [CIDR]? {
        guard let text = try nonEmptyString(path) else {
            return try value(path) == nil ? nil : []
        }
        do throws(ParseError) {
            return try CIDR.parseList(text)
        } catch {
            throw failure(path, error.description)
        }
    }

    /// `<path>.request` and `<path>.limit` as quantities; empty strings are unset.
    private func constraint(_ path: String) throws(MeshConfigurationError) -> MeshConfiguration.ResourceConstraint {
        func quantity(_ key: String) throws(MeshConfigurationError) -> Quantity? {
            let keyPath = "\(path).\(key)"
            guard let found = try value(keyPath) else { return nil }
            let text: String
            switch found {
            case .string(let string): text = string
            case .integer(let integer): text = String(integer)
            case .double(let double): text = String(double)
            default: throw failure(keyPath, "expected a quantity such as 100m or 64Mi, found a \(found.typeName)")
            }
            guard !text.isEmpty else { return nil }
            do throws(ParseError) {
                return try Quantity(parsing: text)
            } catch {
                throw failure(keyPath, error.description)
            }
        }
        return MeshConfiguration.ResourceConstraint(request: try quantity("request"), limit: try quantity("limit"))
    }

    /// A list of `EnvVar` objects, each with a non-empty string `name`.
    private func environment(_ path: String) throws(MeshConfigurationError) -> [JSONValue] {
        guard let found = try value(path) else { return [] }
        guard case .array(let entries) = found else {
            throw failure(path, "expected a list of environment variables, found a \(found.typeName)")
        }
        for (index, entry) in entries.enumerated() {
            guard case .string(let name)? = entry["name"], !name.isEmpty else {
                throw MeshConfigurationError(
                    keyPath: "\(path)[\(index)]", value: entry.jsonString,
                    reason: "expected an object with a non-empty string \"name\"")
            }
        }
        return entries
    }
}
