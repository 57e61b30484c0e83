import KubeModel
import LinkerdCore
import LinkerdInject

/// The mesh audit of one existing pod, as a pure function of the pod, its namespace's annotations and the mesh
/// configuration: is the pod meshed as the injector would mesh it today?
///
/// The webhook fails open (`failurePolicy: Ignore`), so a pod created while the injector was unavailable runs
/// without a proxy; and pods keep the proxy version and trust root they were injected with until they are
/// recreated. The audit finds both, using the injector's own decision (`ProxyInjector.report`, origin webhook) so
/// that "should have a proxy" means exactly what it means at admission.
///
/// The order of the checks is part of the contract: exemptions first (control-plane namespace, outside the webhook's
/// selectors, terminating, finished), then a pod that carries the `linkerd-proxy` container is judged on its
/// versions only (whatever its annotations say now), and only a pod without it is judged by the injector's decision.
public struct MeshAudit: Sendable {
    /// Why a pod is not audited at all.
    public enum Exemption: Hashable, Sendable {
        /// The pod runs in the control-plane namespace, whose proxies the chart renders.
        case controlPlane
        /// The webhook is never called for the pod (`WebhookScope`): its lack of a proxy is intended.
        case outsideWebhookScope(WebhookScope.Exclusion)
        /// The pod has a `deletionTimestamp`: it is going away anyway.
        case terminating
        /// The pod's phase is `Succeeded` or `Failed` (the phase is carried): it runs nothing any more.
        case finished(String)
    }

    /// One way in which a running proxy differs from what injection would produce today.
    public struct ProxyDrift: Hashable, Sendable, CustomStringConvertible {
        public enum Aspect: Hashable, Sendable {
            /// `linkerd.io/proxy-version` against the configured proxy version (or the pod's
            /// `config.linkerd.io/proxy-version` override).
            case proxyVersion
            /// `linkerd.io/trust-root-sha256` against the SHA-256 of the configured trust anchors.
            case trustRoot
        }

        public var aspect: Aspect
        /// The pod's annotation value; nil when the annotation is absent (a pod injected by an older injector).
        public var running: String?
        public var expected: String

        public init(aspect: Aspect, running: String?, expected: String) {
            self.aspect = aspect
            self.running = running
            self.expected = expected
        }

        /// The annotation the running value comes from.
        public var annotation: String {
            switch aspect {
            case .proxyVersion: MeshKeys.proxyVersion
            case .trustRoot: MeshKeys.trustRootSHA256
            }
        }

        /// `proxy version "edge-1" (expected "edge-2")`, `trust root sha256 unknown (expected "ab12…")`.
        public var description: String {
            let name =
                switch aspect {
                case .proxyVersion: "proxy version"
                case .trustRoot: "trust root sha256"
                }
            let running = running.map(\.quoted) ?? "unknown (no \(annotation) annotation)"
            return "\(name) \(running) (expected \(expected.quoted))"
        }
    }

    /// The outcome of auditing one pod.
    public enum Verdict: Hashable, Sendable {
        /// Not audited.
        case exempt(Exemption)
        /// The injector would not inject this pod; its skip reasons, as the webhook reports them.
        case notMeshable([SkipReason])
        /// The pod runs the proxy the configuration asks for.
        case meshed
        /// The injector would inject this pod, but it has no proxy: it was admitted without the webhook.
        case proxyMissing
        /// The pod runs a proxy whose version or trust root differs from the configuration's (never empty).
        case proxyOutdated([ProxyDrift])

        /// The finding to act on, for `proxyMissing` and `proxyOutdated`; nil otherwise.
        public var finding: MeshFinding? {
            switch self {
            case .proxyMissing: .proxyMissing
            case .proxyOutdated(let drifts): .proxyOutdated(drifts)
            case .exempt, .notMeshable, .meshed: nil
            }
        }
    }

    public let injector: ProxyInjector

    public init(configuration: MeshConfiguration) {
        injector = ProxyInjector(configuration: configuration)
    }

    public var configuration: MeshConfiguration { injector.configuration }

    /// Audits a pod given as JSON (every field the injector reads is kept).
    ///
    /// - Parameters:
    ///   - pod: the Pod object; its namespace is read from `metadata.namespace`.
    ///   - namespaceAnnotations: the annotations of the pod's namespace (`linkerd.io/inject` and inherited
    ///     `config.linkerd.io/*` keys).
    ///   - namespaceLabels: the labels of the pod's namespace, for the webhook's namespace selector.
    ///   - owner: the pod's resolved owner, passed to the injector as the webhook would.
    public func audit(
        _ pod: JSONValue, namespaceAnnotations: [String: String], namespaceLabels: [String: String] = [:],
        owner: WorkloadOwner? = nil
    ) -> Verdict {
        let metadata = pod["metadata"]
        let namespace = metadata?["namespace"]?.stringValue ?? ""
        if namespace == configuration.controlPlaneNamespace {
            return .exempt(.controlPlane)
        }
        if let exclusion = WebhookScope.exclusion(
            namespace: namespace, namespaceLabels: namespaceLabels, podLabels: Self.strings(metadata?["labels"]))
        {
            return .exempt(.outsideWebhookScope(exclusion))
        }
        if let deletion = metadata?["deletionTimestamp"], deletion != .null {
            return .exempt(.terminating)
        }
        if let phase = pod["status"]?["phase"]?.stringValue, phase == "Succeeded" || phase == "Failed" {
            return .exempt(.finished(phase))
        }
        let report = injector.report(
            InjectionRequest(
                object: pod, kind: "Pod", namespace: namespace, namespaceAnnotations: namespaceAnnotations,
                owner: owner, origin: .webhook))
        if Self.hasProxy(pod) {
            let drifts = drifts(
                annotations: Self.strings(metadata?["annotations"]), effective: report.effectiveAnnotations)
            return drifts.isEmpty ? .meshed : .proxyOutdated(drifts)
        }
        return report.injectable ? .proxyMissing : .notMeshable(report.skipReasons)
    }

    /// Audits a typed pod (as held by a `Store`).
    ///
    /// - Throws: the encoder's error if the pod cannot be turned into JSON.
    public func audit(
        _ pod: Pod, namespaceAnnotations: [String: String], namespaceLabels: [String: String] = [:],
        owner: WorkloadOwner? = nil
    ) throws -> Verdict {
        try audit(
            JSONValue(encoding: pod), namespaceAnnotations: namespaceAnnotations, namespaceLabels: namespaceLabels,
            owner: owner)
    }

    /// The differences between the pod's injection annotations and what injection would write today. The
    /// expected proxy version honours a `config.linkerd.io/proxy-version` override on the pod or its namespace,
    /// as injection does.
    private func drifts(annotations: [String: String], effective: [String: String]) -> [ProxyDrift] {
        var drifts: [ProxyDrift] = []
        let override = effective[MeshKeys.proxyVersionOverride].flatMap { $0.isEmpty ? nil : $0 }
        let expectedVersion = override ?? configuration.proxyVersion
        let runningVersion = annotations[MeshKeys.proxyVersion]
        if runningVersion != expectedVersion {
            drifts.append(ProxyDrift(aspect: .proxyVersion, running: runningVersion, expected: expectedVersion))
        }
        let expectedRoot = configuration.trustRootSHA256
        let runningRoot = annotations[MeshKeys.trustRootSHA256]
        if runningRoot != expectedRoot {
            drifts.append(ProxyDrift(aspect: .trustRoot, running: runningRoot, expected: expectedRoot))
        }
        return drifts
    }

    /// Whether the pod carries Linkerd's proxy, as a container or as a native sidecar (an init container). Other
    /// meshes' sidecars do not count: they make the pod not meshable instead.
    static func hasProxy(_ pod: JSONValue) -> Bool {
        let spec = pod["spec"]
        let containers = (spec?["containers"]?.arrayValue ?? []) + (spec?["initContainers"]?.arrayValue ?? [])
        return containers.contains { $0["name"]?.stringValue == MeshKeys.proxyContainerName }
    }

    /// The string values of a JSON object of labels or annotations.
    private static func strings(_ object: JSONValue?) -> [String: String] {
        var strings: [String: String] = [:]
        for (key, value) in object?.objectValue ?? [:] {
            if let text = value.stringValue { strings[key] = text }
        }
        return strings
    }
}

/// What the auditor acts on: a pod the injector should have meshed, or one whose proxy is out of date.
public enum MeshFinding: Hashable, Sendable {
    case proxyMissing
    case proxyOutdated([MeshAudit.ProxyDrift])

    /// The `reason` label of `linkerd_controller_workload_restarts_total`.
    public var metricReason: String {
        switch self {
        case .proxyMissing: "proxy_missing"
        case .proxyOutdated: "proxy_outdated"
        }
    }
}
