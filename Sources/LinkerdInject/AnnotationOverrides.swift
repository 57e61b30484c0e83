import Foundation
import KubeModel
import LinkerdCore

/// The configuration of one pod: the mesh configuration with the pod's (and its namespace's) annotations applied
/// (control-plane.md §2.4–2.5).
struct PodConfiguration {
    /// The mesh configuration with every valid override applied.
    var mesh: MeshConfiguration
    /// `config.linkerd.io/pod-inbound-ports`, when set and valid.
    var podInboundPorts: [UInt16]?
    /// The opaque ports for `LINKERD2_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION`, named ports resolved.
    var opaquePorts: String
    /// `config.linkerd.io/proxy-cpu-ratio-limit`, as written.
    var coresMaxRatio: String?
    /// `linkerd.io/inject: ingress`.
    var isIngress = false
    /// `config.linkerd.io/enable-gateway: true`.
    var isGateway = false
    /// `config.linkerd.io/enable-debug-sidecar: true`.
    var debugSidecar = false
    /// The proxy's extra environment: values < namespace annotation < workload annotation, merged by name.
    var additionalEnv: [JSONValue]
    var warnings: [AnnotationWarning]
}

/// The one check of proxy annotation values, shared by the webhook and `linkerd inject`'s flags so that both
/// accept the same values.
public enum ProxyAnnotations {
    /// The warnings the injector would give for `annotations` on a pod, as if the pod set them itself: every
    /// value it would ignore, with the reason. Container port names in `config.linkerd.io/opaque-ports` are only
    /// checked for their form, since there is no pod to resolve them against.
    public static func validate(
        _ annotations: [String: String], mesh: MeshConfiguration = .defaults
    ) -> [AnnotationWarning] {
        AnnotationCatalogue.configuration(
            mesh: mesh, effective: annotations, podOnly: annotations, namespace: [:], namedPorts: nil
        ).warnings
    }
}

/// The annotation catalogue: which keys exist, which a pod inherits from its namespace, and how each is parsed.
enum AnnotationCatalogue {
    /// The keys a pod inherits from its namespace when it does not set them (the "Inh" column of §2.5), in the
    /// order upstream lists them. `proxy-additional-env` is merged instead (see ``mergedEnvironment``); the keys
    /// not listed here are read from the pod only.
    static let inheritedKeys: [String] = [
        MeshKeys.proxyImage, MeshKeys.proxyVersionOverride, MeshKeys.imagePullPolicy,
        MeshKeys.controlPort, MeshKeys.inboundPort, MeshKeys.adminPort, MeshKeys.outboundPort,
        MeshKeys.podInboundPorts, MeshKeys.skipInboundPorts, MeshKeys.skipOutboundPorts, MeshKeys.skipSubnets,
        MeshKeys.opaquePorts, MeshKeys.proxyCPURequest, MeshKeys.proxyCPULimit, MeshKeys.proxyMemoryRequest,
        MeshKeys.proxyMemoryLimit, MeshKeys.proxyEphemeralStorageRequest, MeshKeys.proxyEphemeralStorageLimit,
        MeshKeys.proxyUID, MeshKeys.proxyGID, MeshKeys.proxyAdminShutdown, MeshKeys.proxyLogLevel,
        MeshKeys.proxyLogFormat, MeshKeys.proxyLogHTTPHeaders, MeshKeys.enableExternalProfiles,
        MeshKeys.requireIdentityInboundPorts, MeshKeys.metricsHostnameLabels, MeshKeys.outboundConnectTimeout,
        MeshKeys.inboundConnectTimeout, MeshKeys.outboundDiscoveryCacheUnusedTimeout,
        MeshKeys.inboundDiscoveryCacheUnusedTimeout, MeshKeys.disableOutboundProtocolDetectTimeout,
        MeshKeys.disableInboundProtocolDetectTimeout, MeshKeys.proxyAwait, MeshKeys.defaultInboundPolicy,
        MeshKeys.accessLog, MeshKeys.shutdownGracePeriod, MeshKeys.nativeSidecar, MeshKeys.nativeSidecarAlpha,
        MeshKeys.enableDebugSidecar, MeshKeys.waitBeforeExitSeconds, MeshKeys.inject,
    ]

    /// The namespace annotations among ``inheritedKeys`` that the pod does not set: copied onto the pod.
    static func inherited(namespace: [String: String], pod: [String: String]) -> [String: String] {
        var copied: [String: String] = [:]
        for key in inheritedKeys where pod[key] == nil {
            if let value = namespace[key] {
                copied[key] = value
            }
        }
        return copied
    }

    /// Applies the annotations to `mesh`.
    ///
    /// - Parameters:
    ///   - effective: the pod's annotations, plus those inherited from the namespace and those the injector adds.
    ///   - podOnly: the pod's own annotations, for the keys that are not inherited.
    ///   - namespace: the namespace's annotations, for `proxy-additional-env`.
    ///   - namedPorts: container port names and numbers, to resolve named opaque ports; nil when there is no pod
    ///     (``validate(_:mesh:)``), so that port names are only checked for their form.
    static func configuration(
        mesh: MeshConfiguration, effective: [String: String], podOnly: [String: String],
        namespace: [String: String], namedPorts: [(name: String?, port: UInt16)]?
    ) -> PodConfiguration {
        var reader = AnnotationReader(annotations: effective)
        var pod = AnnotationReader(annotations: podOnly)
        var mesh = mesh
        var proxy = mesh.proxy
        var proxyInit = mesh.proxyInit

        proxy.imageName = reader.string(MeshKeys.proxyImage) ?? proxy.imageName
        mesh.proxyVersion = reader.string(MeshKeys.proxyVersionOverride) ?? mesh.proxyVersion
        proxy.imagePullPolicy = reader.oneOf(MeshKeys.imagePullPolicy, pullPolicies) ?? proxy.imagePullPolicy
        proxy.ports.control = reader.port(MeshKeys.controlPort) ?? proxy.ports.control
        proxy.ports.inbound = reader.port(MeshKeys.inboundPort) ?? proxy.ports.inbound
        proxy.ports.admin = reader.port(MeshKeys.adminPort) ?? proxy.ports.admin
        proxy.ports.outbound = reader.port(MeshKeys.outboundPort) ?? proxy.ports.outbound
        let podInboundPorts = reader.singlePorts(MeshKeys.podInboundPorts)
        proxyInit.ignoreInboundPorts = reader.portList(MeshKeys.skipInboundPorts) ?? proxyInit.ignoreInboundPorts
        proxyInit.ignoreOutboundPorts = reader.portList(MeshKeys.skipOutboundPorts) ?? proxyInit.ignoreOutboundPorts
        proxyInit.skipSubnets = reader.cidrList(MeshKeys.skipSubnets) ?? proxyInit.skipSubnets
        let opaquePorts =
            reader.opaquePorts(MeshKeys.opaquePorts, namedPorts: namedPorts) ?? proxy.opaquePorts.description

        proxy.resources.cpu = reader.resource(
            MeshKeys.proxyCPURequest, MeshKeys.proxyCPULimit, default: proxy.resources.cpu)
        proxy.resources.memory = reader.resource(
            MeshKeys.proxyMemoryRequest, MeshKeys.proxyMemoryLimit, default: proxy.resources.memory)
        proxy.resources.ephemeralStorage = reader.resource(
            MeshKeys.proxyEphemeralStorageRequest, MeshKeys.proxyEphemeralStorageLimit,
            default: proxy.resources.ephemeralStorage)
        let coresMaxRatio = pod.ratio(MeshKeys.proxyCPURatioLimit)

        proxy.uid = reader.integer(MeshKeys.proxyUID, in: 0...Int64(UInt32.max)) ?? proxy.uid
        proxy.gid = reader.integer(MeshKeys.proxyGID, in: -1...Int64(UInt32.max)) ?? proxy.gid
        proxy.enableShutdownEndpoint = reader.enabled(MeshKeys.proxyAdminShutdown) ?? proxy.enableShutdownEndpoint
        proxy.logLevel = reader.string(MeshKeys.proxyLogLevel) ?? proxy.logLevel
        proxy.logFormat = reader.oneOf(MeshKeys.proxyLogFormat, ["plain", "json"]) ?? proxy.logFormat
        proxy.logHTTPHeaders = reader.oneOf(MeshKeys.proxyLogHTTPHeaders, ["off", "insecure"]) ?? proxy.logHTTPHeaders
        proxy.enableExternalProfiles = reader.bool(MeshKeys.enableExternalProfiles) ?? proxy.enableExternalProfiles
        proxy.requireIdentityOnInboundPorts =
            reader.portList(MeshKeys.requireIdentityInboundPorts) ?? proxy.requireIdentityOnInboundPorts
        proxy.metricsHostnameLabels = reader.bool(MeshKeys.metricsHostnameLabels) ?? proxy.metricsHostnameLabels
        if let timeout = reader.duration(MeshKeys.outboundConnectTimeout) {
            proxy.outboundConnectTimeout = "\(timeout.nanoseconds / 1_000_000)ms"
        }
        if let timeout = reader.duration(MeshKeys.inboundConnectTimeout) {
            proxy.inboundConnectTimeout = "\(timeout.nanoseconds / 1_000_000)ms"
        }
        if let timeout = reader.duration(MeshKeys.outboundDiscoveryCacheUnusedTimeout) {
            proxy.outboundDiscoveryCacheUnusedTimeout = "\(timeout.nanoseconds / 1_000_000_000)s"
        }
        if let timeout = reader.duration(MeshKeys.inboundDiscoveryCacheUnusedTimeout) {
            proxy.inboundDiscoveryCacheUnusedTimeout = "\(timeout.nanoseconds / 1_000_000_000)s"
        }
        proxy.disableOutboundProtocolDetectTimeout =
            reader.bool(MeshKeys.disableOutboundProtocolDetectTimeout) ?? proxy.disableOutboundProtocolDetectTimeout
        proxy.disableInboundProtocolDetectTimeout =
            reader.bool(MeshKeys.disableInboundProtocolDetectTimeout) ?? proxy.disableInboundProtocolDetectTimeout
        proxy.await = reader.enabled(MeshKeys.proxyAwait) ?? proxy.await
        if let policy = reader.oneOf(MeshKeys.defaultInboundPolicy, DefaultInboundPolicy.allCases.map(\.rawValue)) {
            proxy.defaultInboundPolicy = DefaultInboundPolicy(rawValue: policy) ?? proxy.defaultInboundPolicy
        }
        proxy.accessLog = reader.string(MeshKeys.accessLog) ?? proxy.accessLog
        if let period = reader.duration(MeshKeys.shutdownGracePeriod) {
            proxy.shutdownGracePeriod = "\(period.nanoseconds / 1_000_000)ms"
        }
        // Precedence: the stable key, then the beta key (read from the pod only), then the alpha key. An invalid
        // value is warned about and the next key decides.
        let stable = reader.bool(MeshKeys.nativeSidecar)
        let beta = pod.bool(MeshKeys.nativeSidecarBeta)
        let alpha = reader.bool(MeshKeys.nativeSidecarAlpha)
        proxy.nativeSidecar = stable ?? beta ?? alpha ?? proxy.nativeSidecar
        let debugSidecar = reader.bool(MeshKeys.enableDebugSidecar) ?? false
        mesh.debugImage.name = pod.string(MeshKeys.debugImage) ?? mesh.debugImage.name
        mesh.debugImage.version = pod.string(MeshKeys.debugImageVersion) ?? mesh.debugImage.version
        mesh.debugImage.pullPolicy =
            pod.oneOf(MeshKeys.debugImagePullPolicy, pullPolicies) ?? mesh.debugImage.pullPolicy
        let isGateway = pod.bool(MeshKeys.enableGateway) ?? false
        if let closeWait = pod.duration(MeshKeys.closeWaitTimeout) {
            // Upstream's template fails without runAsRoot; a bad annotation must never fail the request, so the
            // value is ignored instead.
            if proxyInit.runAsRoot {
                proxyInit.closeWaitTimeoutSecs = closeWait.nanoseconds / 1_000_000_000
            } else {
                pod.warn(MeshKeys.closeWaitTimeout, "it requires proxyInit.runAsRoot, which is false")
            }
        }
        if let seconds = reader.integer(MeshKeys.waitBeforeExitSeconds, in: 0...Int64.max) {
            proxy.waitBeforeExitSeconds = UInt64(seconds)
        }

        var namespaceReader = AnnotationReader(annotations: namespace)
        let additionalEnv = mergedEnvironment([
            proxy.additionalEnv,
            namespaceReader.environment(MeshKeys.additionalEnv) ?? [],
            pod.environment(MeshKeys.additionalEnv) ?? [],
        ])

        mesh.proxy = proxy
        mesh.proxyInit = proxyInit
        return PodConfiguration(
            mesh: mesh,
            podInboundPorts: podInboundPorts,
            opaquePorts: opaquePorts,
            coresMaxRatio: coresMaxRatio,
            isIngress: effective[MeshKeys.inject] == MeshKeys.injectIngress,
            isGateway: isGateway,
            debugSidecar: debugSidecar,
            additionalEnv: additionalEnv,
            warnings: reader.warnings + pod.warnings
                + namespaceReader.warnings.map {
                    AnnotationWarning(key: $0.key, value: $0.value, reason: $0.reason + " (on the namespace)")
                }
        )
    }

    /// Environment lists merged by variable name: a later list replaces an earlier entry in place, and adds the
    /// names that are new at the end.
    static func mergedEnvironment(_ lists: [[JSONValue]]) -> [JSONValue] {
        var merged: [JSONValue] = []
        var indexByName: [String: Int] = [:]
        for entry in lists.joined() {
            guard let name = entry["name"]?.stringValue else { continue }
            if let index = indexByName[name] {
                merged[index] = entry
            } else {
                indexByName[name] = merged.count
                merged.append(entry)
            }
        }
        return merged
    }

    static let pullPolicies = ["Always", "IfNotPresent", "Never"]
}

/// Reads annotation values; an invalid value becomes an ``AnnotationWarning`` and reads as absent.
///
/// An empty value counts as absent, as upstream's `getOverride` treats it.
struct AnnotationReader {
    let annotations: [String: String]
    private(set) var warnings: [AnnotationWarning] = []

    init(annotations: [String: String]) {
        self.annotations = annotations
    }

    mutating func warn(_ key: String, _ reason: String) {
        warnings.append(AnnotationWarning(key: key, value: annotations[key] ?? "", reason: reason))
    }

    /// The trimmed value, nil when absent or empty.
    private func raw(_ key: String) -> String? {
        guard let value = annotations[key]?.trimmingWhitespace, !value.isEmpty else { return nil }
        return value
    }

    func string(_ key: String) -> String? {
        raw(key)
    }

    mutating func oneOf(_ key: String, _ allowed: [String]) -> String? {
        guard let value = raw(key) else { return nil }
        guard allowed.contains(value) else {
            warn(key, "expected one of \(allowed.joined(separator: ", "))")
            return nil
        }
        return value
    }

    /// Go's `strconv.ParseBool`: `1`, `t`, `T`, `TRUE`, `true`, `True` and their false counterparts.
    mutating func bool(_ key: String) -> Bool? {
        guard let value = raw(key) else { return nil }
        switch value {
        case "1", "t", "T", "TRUE", "true", "True": return true
        case "0", "f", "F", "FALSE", "false", "False": return false
        default:
            warn(key, "expected true or false")
            return nil
        }
    }

    /// `enabled` → true, `disabled` → false.
    mutating func enabled(_ key: String) -> Bool? {
        oneOf(key, ["enabled", "disabled"]).map { $0 == "enabled" }
    }

    mutating func integer(_ key: String, in range: ClosedRange<Int64>) -> Int64? {
        guard let value = raw(key) else { return nil }
        guard let number = Int64(value) else {
            warn(key, "expected an integer")
            return nil
        }
        guard range.contains(number) else {
            warn(key, "expected an integer from \(range.lowerBound) to \(range.upperBound)")
            return nil
        }
        return number
    }

    mutating func port(_ key: String) -> Int? {
        guard let value = raw(key) else { return nil }
        guard let number = Int(value), (1...65535).contains(number) else {
            warn(key, "expected a port from 1 to 65535")
            return nil
        }
        return number
    }

    mutating func portList(_ key: String) -> PortList? {
        guard let value = raw(key) else { return nil }
        do throws(ParseError) {
            return try PortList(parsing: value)
        } catch {
            warn(key, error.reason)
            return nil
        }
    }

    /// A comma-separated list of single ports (no ranges), sorted and without duplicates.
    mutating func singlePorts(_ key: String) -> [UInt16]? {
        guard let list = portList(key) else { return nil }
        guard list.ranges.allSatisfy({ $0.count == 1 }) else {
            warn(key, "expected single ports, not ranges")
            return nil
        }
        return Set(list.ranges.map(\.lowerBound)).sorted()
    }

    mutating func cidrList(_ key: String) -> [CIDR]? {
        guard let value = raw(key) else { return nil }
        do throws(ParseError) {
            return try CIDR.parseList(value)
        } catch {
            warn(key, error.reason)
            return nil
        }
    }

    /// A quantity that is not negative (Kubernetes rejects a pod with a negative request or limit).
    mutating func quantity(_ key: String) -> Quantity? {
        guard let value = raw(key) else { return nil }
        do throws(ParseError) {
            let quantity = try Quantity(parsing: value)
            guard quantity.milliValue >= 0 else {
                warn(key, "expected a quantity that is not negative")
                return nil
            }
            return quantity
        } catch {
            warn(key, error.reason)
            return nil
        }
    }

    /// The request and limit of one resource, the annotations over `default`. Kubernetes rejects a pod whose
    /// request is greater than its limit, so an annotation that would make it so is ignored: the request's first
    /// (the limit then still applies), then the limit's.
    mutating func resource(
        _ requestKey: String, _ limitKey: String, default constraint: MeshConfiguration.ResourceConstraint
    ) -> MeshConfiguration.ResourceConstraint {
        let requested = quantity(requestKey)
        var limit = quantity(limitKey)
        var request = requested ?? constraint.request
        func exceeds(_ request: Quantity?, _ limit: Quantity?) -> Bool {
            guard let request, let limit else { return false }
            return request.milliValue > limit.milliValue
        }
        if exceeds(request, limit ?? constraint.limit), requested != nil {
            warn(requestKey, "the request is greater than the limit \((limit ?? constraint.limit)?.description ?? "")")
            request = constraint.request
        }
        if exceeds(request, limit) {
            warn(limitKey, "the limit is less than the request \(request?.description ?? "")")
            limit = nil
        }
        return MeshConfiguration.ResourceConstraint(request: request, limit: limit ?? constraint.limit)
    }

    /// A Go duration that is not negative.
    mutating func duration(_ key: String) -> GoDuration? {
        guard let value = raw(key) else { return nil }
        do throws(ParseError) {
            let duration = try GoDuration(parsing: value)
            guard duration >= .zero else {
                warn(key, "expected a duration that is not negative")
                return nil
            }
            return duration
        } catch {
            warn(key, error.reason)
            return nil
        }
    }

    /// A decimal number strictly between 0 and 1, returned as written.
    mutating func ratio(_ key: String) -> String? {
        guard let value = raw(key) else { return nil }
        guard let number = Double(value), number.isFinite, number > 0, number < 1 else {
            warn(key, "expected a number greater than 0 and less than 1")
            return nil
        }
        return value
    }

    /// Ports, ranges and container port names, separated by commas; names resolve to the numbers of the container
    /// ports so named (an unknown name is warned about and dropped). Without `namedPorts` (no pod to resolve them
    /// against), any valid port name is accepted and dropped.
    mutating func opaquePorts(
        _ key: String, namedPorts: [(name: String?, port: UInt16)]?
    ) -> String? {
        guard let value = annotations[key] else { return nil }
        var entries: [String] = []
        var seen: Set<String> = []  // a hostile value may repeat a name many times: no quadratic search
        var unknown: [String] = []
        for rawEntry in value.split(separator: ",", omittingEmptySubsequences: true) {
            let entry = rawEntry.trimmingWhitespace
            guard !entry.isEmpty else { continue }
            if let range = try? PortRange(parsing: entry) {
                entries.append(range.description)
                seen.insert(range.description)
                continue
            }
            guard let namedPorts else {
                if !Self.isPortName(entry) {
                    unknown.append(entry)
                }
                continue
            }
            let numbers = namedPorts.filter { $0.name == entry }.map(\.port)
            if numbers.isEmpty {
                unknown.append(entry)
            }
            for number in numbers where seen.insert(String(number)).inserted {
                entries.append(String(number))
            }
        }
        if !unknown.isEmpty {
            // At most a few names, each cut short, so a hostile value cannot make the warning huge.
            let shown = unknown.prefix(5).map { $0.quotedForMessage(limit: 40) }.joined(separator: ", ")
            let more = unknown.count > 5 ? " and \(unknown.count - 5) more" : ""
            let what =
                namedPorts == nil
                ? "not a port, a port range or a port name" : "no port range or container port is named"
            warn(key, "\(what): \(shown)\(more)")
        }
        return entries.joined(separator: ",")
    }

    /// A container port name (an IANA service name): 1 to 15 lowercase letters, digits and single inner hyphens,
    /// with at least one letter.
    static func isPortName(_ name: String) -> Bool {
        let scalars = Array(name.unicodeScalars)
        let allowed = scalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" }
        return (1...15).contains(scalars.count) && allowed && scalars.contains { ("a"..."z").contains($0) }
            && scalars.first != "-" && scalars.last != "-" && !name.contains("--")
    }

    /// A JSON list of `EnvVar` objects that Kubernetes accepts: a `name` of printable ASCII without `=`, and a
    /// string `value` or a `valueFrom` object but not both. Anything else ignores the whole value, so injection
    /// never makes a pod invalid.
    mutating func environment(_ key: String) -> [JSONValue]? {
        guard let value = raw(key) else { return nil }
        guard let parsed = try? JSONValue(json: Data(value.utf8)), case .array(let entries) = parsed else {
            warn(key, "expected a JSON list of environment variables such as [{\"name\":\"A\",\"value\":\"1\"}]")
            return nil
        }
        for (index, entry) in entries.enumerated() {
            let position = "environment variable \(index + 1)"
            guard case .string(let name)? = entry["name"], !name.isEmpty,
                name.unicodeScalars.allSatisfy({ (0x21...0x7E).contains($0.value) && $0 != "=" })
            else {
                warn(
                    key,
                    "\(position) must be an object with a \"name\" of printable ASCII characters other than '='")
                return nil
            }
            switch (entry["value"], entry["valueFrom"]) {
            case (nil, nil), (.string?, nil), (nil, .object?):
                continue
            case (.some, .some):
                warn(key, "\(position) (\(name.quotedForMessage(limit: 40))) has both \"value\" and \"valueFrom\"")
            case (.some, nil):
                warn(key, "\(position) (\(name.quotedForMessage(limit: 40))) has a \"value\" that is not a string")
            case (nil, .some):
                warn(key, "\(position) (\(name.quotedForMessage(limit: 40))) has a \"valueFrom\" that is not an object")
            }
            return nil
        }
        return entries
    }
}
