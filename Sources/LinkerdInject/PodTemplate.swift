import KubeModel

/// Where an object of a given kind keeps its pod: the whole object for a Pod, `spec.template` for the workload
/// kinds, `spec.jobTemplate.spec.template` for a CronJob.
public enum PodLocation {
    /// The object keys leading to the pod (template); nil for kinds without one.
    public static func tokens(forKind kind: String) -> [String]? {
        switch kind.lowercased() {
        case "pod":
            []
        case "deployment", "replicaset", "replicationcontroller", "statefulset", "daemonset", "job":
            ["spec", "template"]
        case "cronjob":
            ["spec", "jobTemplate", "spec", "template"]
        default:
            nil
        }
    }
}

/// A read-only view of a pod (or pod template) inside an object, checked for the shape the injector relies on.
///
/// The injector only reads the input and emits patches, so fields it does not model survive untouched.
struct PodView {
    /// The pod's JSON pointer prefix in the object: "", `/spec/template` or `/spec/jobTemplate/spec/template`.
    let pathPrefix: String
    /// `metadata`, absent when nil.
    let metadata: [String: JSONValue]?
    let spec: [String: JSONValue]
    let annotations: [String: String]
    let labels: [String: String]
    /// The entries of `spec.containers` that are objects.
    let containers: [[String: JSONValue]]
    /// The entries of `spec.initContainers` that are objects.
    let initContainers: [[String: JSONValue]]
    let hasAnnotations: Bool
    let hasLabels: Bool
    let hasVolumes: Bool
    let hasInitContainers: Bool

    /// The pod of `object` at `tokens`, or nil when it is missing or malformed: no `spec` object, `containers` not
    /// an array, `initContainers` or `volumes` present but not arrays, or `metadata`, its `annotations` or its
    /// `labels` present but not objects. A malformed pod is reported as an unsupported resource, since a patch
    /// against it could not apply.
    init?(object: JSONValue, tokens: [String]) {
        var current = object
        for token in tokens {
            guard let next = current[token] else { return nil }
            current = next
        }
        guard case .object(let pod) = current, case .object(let spec)? = pod["spec"] else { return nil }
        guard case .array(let containers)? = spec["containers"] else { return nil }
        func optionalArray(_ value: JSONValue?) -> [JSONValue]?? {
            switch value {
            case nil, .null?: .some(nil)
            case .array(let elements)?: .some(elements)
            default: .none
            }
        }
        guard let initContainers = optionalArray(spec["initContainers"]), let volumes = optionalArray(spec["volumes"])
        else { return nil }
        var metadata: [String: JSONValue]?
        switch pod["metadata"] {
        case nil, .null?: metadata = nil
        case .object(let members)?: metadata = members
        default: return nil
        }
        guard let annotations = Self.stringMap(metadata?["annotations"]),
            let labels = Self.stringMap(metadata?["labels"])
        else { return nil }
        self.pathPrefix = tokens.map { "/" + JSONPointer.escape($0) }.joined()
        self.metadata = metadata
        self.spec = spec
        self.annotations = annotations
        self.labels = labels
        self.containers = containers.compactMap(\.objectValue)
        self.initContainers = (initContainers ?? []).compactMap(\.objectValue)
        self.hasAnnotations = !annotations.isEmpty
        self.hasLabels = !labels.isEmpty
        self.hasVolumes = !(volumes ?? []).isEmpty
        self.hasInitContainers = !(initContainers ?? []).isEmpty
    }

    /// The string members of an optional JSON object (others are not valid annotations and are skipped); nil when
    /// the value is neither absent, `null` nor an object.
    static func stringMap(_ value: JSONValue?) -> [String: String]? {
        switch value {
        case nil, .null?:
            return [:]
        case .object(let members)?:
            return members.compactMapValues(\.stringValue)
        default:
            return nil
        }
    }

    /// Whether `metadata` is present and not empty.
    var hasMetadata: Bool {
        !(metadata ?? [:]).isEmpty
    }

    var hostNetwork: Bool {
        spec["hostNetwork"] == .bool(true)
    }

    /// `spec.automountServiceAccountToken`, when it is a boolean.
    var automountServiceAccountToken: Bool? {
        if case .bool(let flag)? = spec["automountServiceAccountToken"] { return flag }
        return nil
    }

    /// The first container's volume mount at the service account token path, if any.
    var serviceAccountMount: [String: JSONValue]? {
        guard let first = containers.first, case .array(let mounts)? = first["volumeMounts"] else { return nil }
        return mounts.lazy.compactMap(\.objectValue).first {
            $0["mountPath"] == .string(PodView.serviceAccountMountPath)
        }
    }

    static let serviceAccountMountPath = "/var/run/secrets/kubernetes.io/serviceaccount"

    /// Every `containerPort` of `containers` (and of `initContainers` when asked), with its name if any.
    func containerPorts(includingInitContainers: Bool) -> [(name: String?, port: UInt16)] {
        let all = includingInitContainers ? containers + initContainers : containers
        var ports: [(name: String?, port: UInt16)] = []
        for container in all {
            guard case .array(let entries)? = container["ports"] else { continue }
            for entry in entries {
                guard case .integer(let number)? = entry["containerPort"], let port = UInt16(exactly: number),
                    port > 0
                else { continue }
                ports.append((entry["name"]?.stringValue, port))
            }
        }
        return ports
    }

    /// The integer ports of the containers' HTTP liveness and readiness probes.
    var httpProbePorts: [UInt16] {
        containers.flatMap { container in
            ["livenessProbe", "readinessProbe"].compactMap { probe -> UInt16? in
                guard case .integer(let number)? = container[probe]?["httpGet"]?["port"] else { return nil }
                return UInt16(exactly: number).flatMap { $0 > 0 ? $0 : nil }
            }
        }
    }

    /// Whether a Linkerd or Istio sidecar is already there (upstream `HasExistingSidecars`): a proxy image in any
    /// container or init container, a proxy-init image in an init container, or a container or init container
    /// named like a proxy or its init container.
    var hasExistingSidecar: Bool {
        let proxyImages = ["cr.l5d.io/linkerd/proxy:", "gcr.io/istio-release/proxyv2:"]
        let initImages = ["cr.l5d.io/linkerd/proxy-init:", "gcr.io/istio-release/proxy_init:"]
        func image(_ container: [String: JSONValue], startsWithAnyOf prefixes: [String]) -> Bool {
            guard let image = container["image"]?.stringValue else { return false }
            return prefixes.contains { image.hasPrefix($0) }
        }
        func named(_ container: [String: JSONValue], _ names: Set<String>) -> Bool {
            container["name"]?.stringValue.map(names.contains) ?? false
        }
        for container in containers {
            if image(container, startsWithAnyOf: proxyImages)
                || named(container, [MeshKeys.proxyContainerName, "istio-proxy"])
            {
                return true
            }
        }
        for container in initContainers {
            if image(container, startsWithAnyOf: proxyImages + initImages)
                || named(container, [MeshKeys.proxyContainerName, MeshKeys.initContainerName, "istio-init"])
            {
                return true
            }
        }
        return false
    }
}
