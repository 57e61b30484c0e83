import KubeModel
import LinkerdCore

/// The proxy injector as a pure function of the mesh configuration and one object (control-plane.md §2.3–2.8).
///
/// It only reads the input object and returns RFC 6902 operations that add to it, so fields of the object that
/// KubeModel does not model are never lost. Handling errors (upstream turns them into `allowed: false`) is the
/// webhook's job: nothing here fails, and bad annotation values become ``AnnotationWarning``s.
///
/// Deliberate departures from upstream (§2.10), fixed rather than preserved:
/// - `config.linkerd.io/pod-inbound-ports` is honoured when set and valid; upstream overwrites it with the ports
///   computed from the spec.
/// - `LINKERD2_PROXY_INBOUND_PORTS` is sorted numerically, without duplicates; upstream sorts the ports as strings.
/// - A pod whose init containers already hold a `linkerd-proxy` (a native sidecar with a custom image) counts as
///   having a sidecar, so it is never injected twice.
public struct ProxyInjector: Sendable {
    public let configuration: MeshConfiguration

    public init(configuration: MeshConfiguration) {
        self.configuration = configuration
    }

    /// The full decision and patch: the proxy patch for injectable pods and pod templates, else the opaque-ports
    /// annotation patch (Pods, Services), else nil.
    ///
    /// Control-plane components are injected like any pod: the webhook's object selector keeps them away, and
    /// `linkerd inject --manual` (origin `.cli`) may inject them (§2.8); only `linkerd inject` without `--manual`
    /// refuses them, through ``isControlPlaneComponent(_:kind:)``.
    public func inject(_ request: InjectionRequest) -> InjectionResult {
        let analysis = analyze(request)
        let report = analysis.report
        let kind = request.kind.lowercased()
        if report.injectable, let pod = analysis.pod, let config = analysis.config {
            return InjectionResult(
                report: report, patch: proxyPatch(request, pod: pod, analysis: analysis, config: config))
        }
        guard kind == "pod" || kind == "service" else {
            return InjectionResult(report: report, patch: nil)
        }
        return InjectionResult(report: report, patch: opaquePortsPatch(request, pod: analysis.pod))
    }

    /// The decision alone (no patch), as for an existing pod: used by the mesh auditor.
    public func report(_ request: InjectionRequest) -> InjectionReport {
        analyze(request).report
    }

    /// The patch of `linkerd inject` without `--manual`: `linkerd.io/inject: enabled` plus `annotations` (which
    /// win, so `linkerd.io/inject: ingress` can be asked for) on the pod template, the Pod or the Namespace; the
    /// webhook does the rest when pods are created.
    ///
    /// - Returns: nil when nothing changes: every annotation is already there, the kind has no pod template and is
    ///   not a Namespace, the pod template is malformed, or the object is a control-plane component.
    public static func annotateForInjection(
        _ object: JSONValue, kind: String, annotations: [String: String] = [:]
    ) -> JSONPatch? {
        let wanted = [MeshKeys.inject: MeshKeys.injectEnabled].merging(annotations) { _, given in given }
        if kind.lowercased() == "namespace" {
            return annotationPatch(object: object, tokens: [], annotations: wanted)
        }
        guard let tokens = PodLocation.tokens(forKind: kind), PodView(object: object, tokens: tokens) != nil,
            !isControlPlaneComponent(object, kind: kind)
        else { return nil }
        return annotationPatch(object: object, tokens: tokens, annotations: wanted)
    }

    /// Whether the object or its pod template is labelled `linkerd.io/control-plane-component`: such objects are
    /// refused by `linkerd inject` without `--manual` and left alone by ``Uninjector``.
    public static func isControlPlaneComponent(_ object: JSONValue, kind: String) -> Bool {
        if object["metadata"]?["labels"]?[MeshKeys.controlPlaneComponentLabel] != nil {
            return true
        }
        guard let tokens = PodLocation.tokens(forKind: kind) else { return false }
        return object.value(atTokens: tokens + ["metadata", "labels", MeshKeys.controlPlaneComponentLabel]) != nil
    }

    // MARK: - Decision

    /// Everything the report and the patch are computed from.
    struct Analysis {
        var report: InjectionReport
        var pod: PodView?
        /// Annotations the patch adds to the pod: created-by, inherited keys, opaque ports.
        var addedAnnotations: [String: String] = [:]
        var config: PodConfiguration?
    }

    func analyze(_ request: InjectionRequest) -> Analysis {
        let object = request.object
        let name = object["metadata"]?["name"]?.stringValue ?? object["metadata"]?["generateName"]?.stringValue ?? ""
        var report = InjectionReport(
            kind: request.kind, name: name, skipReasons: [], annotationAt: "", warnings: [],
            effectiveAnnotations: PodView.stringMap(object["metadata"]?["annotations"]) ?? [:])
        let isCLI = request.origin == .cli
        guard let tokens = PodLocation.tokens(forKind: request.kind), let pod = PodView(object: object, tokens: tokens)
        else {
            report.skipReasons.append(.unsupportedResource)
            return Analysis(report: report)
        }

        let inherited = AnnotationCatalogue.inherited(namespace: request.namespaceAnnotations, pod: pod.annotations)
        report.effectiveAnnotations = pod.annotations.merging(inherited) { own, _ in own }

        if pod.hostNetwork {
            report.skipReasons.append(.hostNetworkEnabled)
        }
        if pod.hasExistingSidecar {
            report.skipReasons.append(.sidecarAlreadyExists)
        }
        let (injectReason, annotationAt) = Self.injectDecision(
            pod: pod.annotations[MeshKeys.inject] ?? "",
            namespace: request.namespaceAnnotations[MeshKeys.inject] ?? "",
            origin: request.origin)
        report.annotationAt = annotationAt
        if let injectReason {
            report.skipReasons.append(injectReason)
        }
        if !configuration.serviceAccountTokenProjection,
            pod.automountServiceAccountToken == false || (!isCLI && pod.serviceAccountMount == nil)
        {
            report.skipReasons.append(.disabledAutomountServiceAccountToken)
        }

        var added = inherited
        added[MeshKeys.createdBy] =
            isCLI ? "linkerd/cli \(LinkerdVersion.current)" : "linkerd/proxy-injector \(LinkerdVersion.current)"
        // Without an opaque-ports annotation of its own or from the namespace, the pod gets the default opaque
        // ports it actually exposes.
        if pod.annotations[MeshKeys.opaquePorts] == nil, inherited[MeshKeys.opaquePorts] == nil {
            let ports = Self.defaultOpaquePorts(configuration.proxy.opaquePorts, pod: pod)
            if !ports.isEmpty {
                added[MeshKeys.opaquePorts] = ports
            }
        }
        let config = AnnotationCatalogue.configuration(
            mesh: configuration,
            effective: pod.annotations.merging(added) { _, added in added },
            podOnly: pod.annotations,
            namespace: request.namespaceAnnotations,
            namedPorts: pod.containerPorts(includingInitContainers: true))
        report.warnings = config.warnings
        return Analysis(report: report, pod: pod, addedAnnotations: added, config: config)
    }

    /// The inject truth table (§2.3 step 5): the skip reason, if any, and where the deciding annotation was.
    ///
    /// Webhook: an invalid namespace value, then an invalid pod value, skips; a namespace `enabled`/`ingress`
    /// injects unless the pod says `disabled`; otherwise only a pod `enabled`/`ingress` injects. An empty value
    /// counts as absent. CLI: inject unless the pod says `disabled`.
    static func injectDecision(
        pod: String, namespace: String, origin: InjectionOrigin
    ) -> (reason: SkipReason?, annotationAt: String) {
        let valid: Set<String> = ["", MeshKeys.injectEnabled, MeshKeys.injectDisabled, MeshKeys.injectIngress]
        let turnsOn: Set<String> = [MeshKeys.injectEnabled, MeshKeys.injectIngress]
        if origin == .cli {
            return (pod == MeshKeys.injectDisabled ? .injectionDisableAnnotationPresent : nil, "")
        }
        guard valid.contains(namespace) else { return (.invalidInjectAnnotationAtNamespace, "") }
        guard valid.contains(pod) else { return (.invalidInjectAnnotationAtWorkload, "") }
        if turnsOn.contains(namespace) {
            if pod == MeshKeys.injectDisabled {
                return (.injectionDisableAnnotationPresent, "workload")
            }
            return (nil, "namespace")
        }
        guard turnsOn.contains(pod) else { return (.injectionEnableAnnotationAbsent, "") }
        return (nil, "workload")
    }

    /// The default opaque ports a pod (template) exposes in its containers and init containers: the value the
    /// injector gives `config.linkerd.io/opaque-ports` when neither the pod nor its namespace sets it.
    static func defaultOpaquePorts(_ defaults: PortList, pod: PodView) -> String {
        defaultPorts(defaults, among: Set(pod.containerPorts(includingInitContainers: true).map(\.port)))
    }

    /// The default opaque ports a Service names: a `port` without `targetPort`, or a numeric `targetPort`.
    static func defaultOpaquePorts(_ defaults: PortList, service: JSONValue) -> String {
        var named: Set<UInt16> = []
        for entry in service["spec"]?["ports"]?.arrayValue ?? [] {
            let number: JSONValue? =
                switch entry["targetPort"] {
                case nil, .null?: entry["port"]
                case let targetPort?: targetPort
                }
            if case .integer(let port)? = number, let port = UInt16(exactly: port) {
                named.insert(port)
            }
        }
        return defaultPorts(defaults, among: named)
    }

    /// The ports of `defaults` that are in `present`, comma-separated in the order of `defaults`.
    static func defaultPorts(_ defaults: PortList, among present: Set<UInt16>) -> String {
        var ports: [UInt16] = []
        var seen: Set<UInt16> = []
        for range in defaults.ranges {
            for port in present.filter(range.contains).sorted() where seen.insert(port).inserted {
                ports.append(port)
            }
        }
        return ports.map(String.init).joined(separator: ",")
    }

    // MARK: - Patches

    /// The proxy patch, in the operation order of §2.7.
    private func proxyPatch(
        _ request: InjectionRequest, pod: PodView, analysis: Analysis, config: PodConfiguration
    ) -> JSONPatch {
        let prefix = pod.pathPrefix
        var annotations = analysis.addedAnnotations
        annotations[MeshKeys.proxyVersion] = config.mesh.proxyVersion
        annotations[MeshKeys.trustRootSHA256] = configuration.trustRootSHA256

        var labels = [MeshKeys.controlPlaneNamespaceLabel: configuration.controlPlaneNamespace]
        // Label values come from the input: one that is not a valid label value (an owner name of 64 to 253
        // characters, a malformed namespace from a CLI manifest) would make Kubernetes reject the pod, so the label
        // is left out instead; nothing reads these labels back to decide anything.
        if Self.isValidLabelValue(request.namespace) {
            labels[MeshKeys.workloadNamespaceLabel] = request.namespace
        }
        if let owner = ownerLabel(request), Self.isValidLabelValue(owner.name) {
            labels[MeshKeys.proxyOwnerLabelPrefix + owner.kind] = owner.name
        }

        let inboundPorts =
            config.podInboundPorts
            ?? Set(pod.containerPorts(includingInitContainers: false).map(\.port) + pod.httpProbePorts).sorted()
        let templates = SidecarTemplates(
            config: config,
            serviceAccountMount: pod.serviceAccountMount,
            appCapabilities: pod.containers.first?["securityContext"]?["capabilities"]?.objectValue,
            inboundPorts: inboundPorts)
        let native = config.mesh.proxy.nativeSidecar

        var operations: [JSONPatch.Operation] = []
        func add(_ path: String, _ value: JSONValue) {
            operations.append(.add(path: prefix + path, value: value))
        }
        if !pod.hasMetadata {
            add("/metadata", [:])
        }
        if !pod.hasAnnotations {
            add("/metadata/annotations", [:])
        }
        for key in annotations.keys.sorted() {
            add("/metadata/annotations/" + JSONPointer.escape(key), .string(annotations[key] ?? ""))
        }
        if !pod.hasLabels {
            add("/metadata/labels", [:])
        }
        for key in labels.keys.sorted() {
            add("/metadata/labels/" + JSONPointer.escape(key), .string(labels[key] ?? ""))
        }
        if !pod.hasVolumes {
            add("/spec/volumes", [])
        }
        if !pod.hasInitContainers {
            add("/spec/initContainers", [])
        }
        let initPath = native ? "/spec/initContainers/0" : "/spec/initContainers/-"
        if configuration.cniEnabled {
            add(initPath, templates.networkValidatorContainer)
        } else {
            add("/spec/volumes/-", templates.xtablesLockVolume)
            add(initPath, templates.proxyInitContainer)
        }
        if config.debugSidecar {
            add("/spec/containers/-", templates.debugContainer)
        }
        add("/spec/volumes/-", templates.identityEndEntityVolume)
        if configuration.serviceAccountTokenProjection {
            add("/spec/volumes/-", templates.identityTokenVolume)
        }
        let proxyPath =
            native ? "/spec/initContainers/1" : config.mesh.proxy.await ? "/spec/containers/0" : "/spec/containers/-"
        add(proxyPath, templates.proxyContainer)
        return JSONPatch(operations)
    }

    /// `linkerd.io/proxy-<kind>: <name>`: for a Pod, from the owner the webhook resolved (deployment,
    /// replicationcontroller, replicaset, job, daemonset or statefulset; not cronjob); for a workload, from the
    /// workload itself (cronjob included).
    private func ownerLabel(_ request: InjectionRequest) -> (kind: String, name: String)? {
        let kind = request.kind.lowercased()
        if kind == "pod" {
            let labelled: Set<String> = [
                "deployment", "replicationcontroller", "replicaset", "job", "daemonset", "statefulset",
            ]
            guard let owner = request.owner, labelled.contains(owner.kind) else { return nil }
            return (owner.kind, owner.name)
        }
        guard let name = request.object["metadata"]?["name"]?.stringValue else { return nil }
        return (kind, name)
    }

    /// Kubernetes' label value rule: empty, or at most 63 characters of `[A-Za-z0-9._-]` that begin and end with
    /// an ASCII letter or digit.
    static func isValidLabelValue(_ value: String) -> Bool {
        let scalars = Array(value.unicodeScalars)
        guard let first = scalars.first, let last = scalars.last else { return true }
        func alphanumeric(_ scalar: Unicode.Scalar) -> Bool {
            ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar)
        }
        return scalars.count <= 63 && alphanumeric(first) && alphanumeric(last)
            && scalars.allSatisfy { alphanumeric($0) || $0 == "-" || $0 == "_" || $0 == "." }
    }

    /// The opaque-ports annotation for a skipped Pod or a Service (upstream `CreateOpaquePortsPatch`, §2.3 step 7):
    /// nil when the object has the annotation; else the namespace's value; else the default opaque ports the pod
    /// exposes, or (for a Service) that a `port` without `targetPort`, or a numeric `targetPort`, names.
    private func opaquePortsPatch(_ request: InjectionRequest, pod: PodView?) -> JSONPatch? {
        let object = request.object
        guard let annotations = PodView.stringMap(object["metadata"]?["annotations"]),
            object["metadata"]?["annotations"]?[MeshKeys.opaquePorts] == nil
        else { return nil }
        let value: String
        if let inherited = request.namespaceAnnotations[MeshKeys.opaquePorts] {
            value = inherited
        } else if request.kind.lowercased() == "service" {
            value = Self.defaultOpaquePorts(configuration.proxy.opaquePorts, service: object)
        } else if let pod {
            value = Self.defaultOpaquePorts(configuration.proxy.opaquePorts, pod: pod)
        } else {
            return nil
        }
        guard !value.isEmpty else { return nil }
        var operations: [JSONPatch.Operation] = []
        if object["metadata"]?.objectValue == nil {
            operations.append(.add(path: "/metadata", value: [:]))
        }
        if annotations.isEmpty {
            operations.append(.add(path: "/metadata/annotations", value: [:]))
        }
        operations.append(
            .add(path: "/metadata/annotations/" + JSONPointer.escape(MeshKeys.opaquePorts), value: .string(value)))
        return JSONPatch(operations)
    }

    /// Adds `annotations` (sorted by key) to the metadata at `tokens` in `object`, skipping those already set to
    /// the same value; nil when there is nothing to add or the metadata or annotations are not objects.
    static func annotationPatch(object: JSONValue, tokens: [String], annotations: [String: String]) -> JSONPatch? {
        var current: JSONValue? = object
        for token in tokens {
            current = current?[token]
        }
        let metadata = current?["metadata"]
        guard let existing = PodView.stringMap(metadata?["annotations"]) else { return nil }
        if let metadata, metadata != .null, metadata.objectValue == nil {
            return nil
        }
        let missing = annotations.filter { existing[$0.key] != $0.value }
        guard !missing.isEmpty else { return nil }
        let prefix = tokens.map { "/" + JSONPointer.escape($0) }.joined()
        var operations: [JSONPatch.Operation] = []
        if (metadata?.objectValue ?? [:]).isEmpty {
            operations.append(.add(path: prefix + "/metadata", value: [:]))
        }
        if existing.isEmpty {
            operations.append(.add(path: prefix + "/metadata/annotations", value: [:]))
        }
        for key in missing.keys.sorted() {
            operations.append(
                .add(
                    path: prefix + "/metadata/annotations/" + JSONPointer.escape(key),
                    value: .string(missing[key] ?? "")))
        }
        return JSONPatch(operations)
    }
}
