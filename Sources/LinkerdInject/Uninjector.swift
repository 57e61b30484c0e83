import KubeModel
import LinkerdCore

/// Removes what injection added (control-plane.md §2.8); control-plane objects are left alone.
///
/// On the pod (template) of a Pod or workload it removes the containers and init containers named `linkerd-init`,
/// `linkerd-proxy`, `linkerd-network-validator` and `linkerd-debug`, the volumes `linkerd-proxy-init-xtables-lock`,
/// `linkerd-identity-end-entity` and `linkerd-identity-token`, and every annotation and label whose key starts with
/// `linkerd.io` except `linkerd.io/inject: disabled`; `config.linkerd.io/*` annotations stay. The same annotation
/// and label rule applies to the metadata of the workload itself and of a Namespace.
///
/// The one `config.linkerd.io/*` annotation injection writes on its own is `config.linkerd.io/opaque-ports`: on a
/// pod (template) without one, the default opaque ports its containers expose; on a Service, those its ports name.
/// So that `uninject(inject(x)) == x`, that annotation is removed exactly when its value equals what injection
/// computes for the object (with the given default opaque ports). A user who wrote that same value by hand loses
/// it, which changes nothing: injection would add it again with the same meaning. Any other value stays.
///
/// Whether injection created `initContainers`, `volumes`, `annotations` or `labels` cannot be known from the
/// object, so an array or map that this removal leaves empty is removed: to Kubernetes an empty list or map and an
/// absent one are the same, and injection adds them when absent. Arrays and maps that were empty before are kept.
public enum Uninjector {
    /// The object without the injection, and whether anything was removed.
    ///
    /// - Parameter defaultOpaquePorts: the mesh's `proxy.opaquePorts`, which injection used.
    public static func uninject(
        _ object: JSONValue, defaultOpaquePorts: PortList = MeshConfiguration.defaults.proxy.opaquePorts
    ) -> (object: JSONValue, changed: Bool) {
        guard case .object = object, let kind = object["kind"]?.stringValue,
            !ProxyInjector.isControlPlaneComponent(object, kind: kind)
        else { return (object, false) }
        var result = object
        var changed = false
        switch kind.lowercased() {
        case "namespace":
            changed = uninjectMetadata(of: &result)
            return (result, changed)
        case "service":
            let computed = ProxyInjector.defaultOpaquePorts(defaultOpaquePorts, service: object)
            changed = removeOpaquePorts(ifEqualTo: computed, from: &result)
            return (result, changed)
        default:
            break
        }
        guard let tokens = PodLocation.tokens(forKind: kind) else { return (object, false) }
        result.modify(atTokens: tokens) { pod in
            if uninjectMetadata(of: &pod) { changed = true }
            pod.modify(atTokens: ["spec"]) { spec in
                for key in ["containers", "initContainers"] {
                    if removeNamed(
                        MeshKeys.injectedContainerNames, from: &spec, key: key, dropEmpty: key != "containers")
                    {
                        changed = true
                    }
                }
                if removeNamed(MeshKeys.injectedVolumeNames, from: &spec, key: "volumes", dropEmpty: true) {
                    changed = true
                }
            }
        }
        if !tokens.isEmpty, uninjectMetadata(of: &result) {
            changed = true
        }
        // Computed on the pod without the injected containers, as injection computed it before adding them.
        if let pod = PodView(object: result, tokens: tokens) {
            let computed = ProxyInjector.defaultOpaquePorts(defaultOpaquePorts, pod: pod)
            result.modify(atTokens: tokens) { pod in
                if removeOpaquePorts(ifEqualTo: computed, from: &pod) { changed = true }
            }
        }
        return (result, changed)
    }

    /// Removes `config.linkerd.io/opaque-ports` from the metadata of `object` when it is `computed` (never empty),
    /// and the annotations when that empties them.
    private static func removeOpaquePorts(ifEqualTo computed: String, from object: inout JSONValue) -> Bool {
        guard !computed.isEmpty,
            object["metadata"]?["annotations"]?[MeshKeys.opaquePorts] == .string(computed)
        else { return false }
        object.modify(atTokens: ["metadata", "annotations"]) { annotations in
            annotations[MeshKeys.opaquePorts] = nil
        }
        object.modify(atTokens: ["metadata"]) { metadata in
            if metadata["annotations"]?.objectValue?.isEmpty == true {
                metadata["annotations"] = nil
            }
        }
        return true
    }

    /// Removes the `linkerd.io*` annotations (but `linkerd.io/inject: disabled`) and labels of `object`.
    private static func uninjectMetadata(of object: inout JSONValue) -> Bool {
        var changed = false
        object.modify(atTokens: ["metadata"]) { metadata in
            for key in ["annotations", "labels"] {
                guard case .object(let members)? = metadata[key], !members.isEmpty else { continue }
                let kept = members.filter { entry in
                    !entry.key.hasPrefix("linkerd.io")
                        || (key == "annotations" && entry.key == MeshKeys.inject
                            && entry.value == .string(MeshKeys.injectDisabled))
                }
                guard kept.count != members.count else { continue }
                changed = true
                metadata[key] = kept.isEmpty ? nil : .object(kept)
            }
        }
        return changed
    }

    /// Removes the objects named in `names` from the array `spec[key]`; drops the key when that empties it.
    private static func removeNamed(
        _ names: Set<String>, from spec: inout JSONValue, key: String, dropEmpty: Bool
    ) -> Bool {
        guard case .array(let elements)? = spec[key] else { return false }
        let kept = elements.filter { element in
            guard let name = element["name"]?.stringValue else { return true }
            return !names.contains(name)
        }
        guard kept.count != elements.count else { return false }
        spec[key] = kept.isEmpty && dropEmpty ? nil : .array(kept)
        return true
    }
}

extension JSONValue {
    /// The value at a path of object keys, nil when any step is missing.
    func value(atTokens tokens: [String]) -> JSONValue? {
        var current: JSONValue? = self
        for token in tokens {
            current = current?[token]
        }
        return current
    }

    /// Runs `body` on the object at a path of object keys; does nothing when a step is missing or not an object.
    mutating func modify(atTokens tokens: [String], _ body: (inout JSONValue) -> Void) {
        guard let first = tokens.first else {
            guard case .object = self else { return }
            body(&self)
            return
        }
        guard case .object(var members) = self, var child = members[first] else { return }
        members[first] = nil  // keep the child uniquely referenced while it changes
        child.modify(atTokens: Array(tokens.dropFirst()), body)
        members[first] = child
        self = .object(members)
    }
}
