import LinkerdInject

/// The Events the mesh auditor records: reasons and messages. Messages say what is wrong, the likely cause, and
/// the fix, so that `kubectl describe` alone tells a user what to do.
enum MeshAuditEvents {
    /// Warning, on the pod and its owner.
    static let proxyMissingReason = "ProxyMissing"
    /// Normal, on the pod and its owner.
    static let proxyOutdatedReason = "ProxyOutdated"
    /// Normal, on the restarted workload.
    static let restartedReason = "RestartedForMesh"

    /// The message about `pod` (in `namespace`, owned by `owner`, nil for a bare pod).
    ///
    /// - Parameters:
    ///   - restarting: whether the auditor restarted (or just restarts) the owner for this finding.
    ///   - proxyFromManifest: whether the proxy was not added by the proxy injector (`RestartPolicy.restartCanFix`
    ///     is false, or the template holds it), so that no restart can fix the finding.
    static func message(
        for finding: MeshFinding, pod: String, namespace: String, owner: WorkloadOwner?, restarting: Bool,
        proxyFromManifest: Bool = false
    ) -> String {
        let problem: String
        let action: String
        switch finding {
        case .proxyMissing:
            problem =
                "Pod \(pod) was created without the \(MeshKeys.proxyContainerName) sidecar although injection is "
                + "enabled for it: the proxy injector was probably unavailable when the pod was created (its webhook "
                + "lets pods through when it fails)."
            action = "so that its pods are created again with the proxy"
        case .proxyOutdated(let drifts):
            problem =
                "Pod \(pod) runs an outdated \(MeshKeys.proxyContainerName): "
                + drifts.map(\.description).joined(separator: ", ") + "."
            action = "so that its pods are injected again with the current proxy and trust roots"
        }
        guard !proxyFromManifest else {
            return problem + " " + "Its proxy was not added by the proxy injector (linkerd inject --manual): a "
                + "restart would bring the same proxy back. Inject its manifest again with the current linkerd CLI, "
                + "or remove the proxy from it and let the proxy injector add it."
        }
        return problem + " " + fix(owner: owner, namespace: namespace, action: action, restarting: restarting)
    }

    /// The message on a workload restarted because of `finding` on `pod`.
    static func restartedMessage(for finding: MeshFinding, pod: String) -> String {
        let cause =
            switch finding {
            case .proxyMissing: "pod \(pod) was created without the \(MeshKeys.proxyContainerName) sidecar"
            case .proxyOutdated(let drifts):
                "pod \(pod) runs an outdated \(MeshKeys.proxyContainerName) ("
                    + drifts.map(\.description).joined(separator: ", ") + ")"
            }
        return "Rolling restart (as kubectl rollout restart) because \(cause) and \(MeshKeys.autoRestart) is enabled."
    }

    private static func fix(owner: WorkloadOwner?, namespace: String, action: String, restarting: Bool) -> String {
        guard let owner else {
            return "Delete and recreate the pod; bare pods are never restarted automatically."
        }
        let workload = "\(owner.kind)/\(owner.name)"
        guard RestartPolicy.Kind(ownerKind: owner.kind) != nil else {
            return "Delete the pod so that \(workload) creates it again; \(owner.kind)s are never restarted "
                + "automatically."
        }
        if restarting {
            return "Restarting \(workload) \(action) (\(MeshKeys.autoRestart)=enabled)."
        }
        return "Restart \(workload) \(action) (kubectl rollout restart \(workload) -n \(namespace)), or annotate it "
            + "or its namespace with \(MeshKeys.autoRestart)=enabled to have Linkerd restart it."
    }
}
