import LinkerdInject

/// Which pods the proxy injector's webhook is called for: the selectors of its registration,
/// `manifests/40-proxy-injector-webhook.yaml` (control-plane.md §2.1). Keep the two in step: a pod outside them was
/// never offered to the injector, so the mesh audit must not call its lack of a proxy a finding.
///
/// - `namespaceSelector`: `config.linkerd.io/admission-webhooks NotIn [disabled]` and
///   `kubernetes.io/metadata.name NotIn [kube-system, cert-manager]` (the API server sets that label to the
///   namespace's name, so the name is read);
/// - `objectSelector`: `linkerd.io/control-plane-component DoesNotExist` and `linkerd.io/cni-resource
///   DoesNotExist`.
public enum WebhookScope {
    /// Why the webhook is not called for a pod.
    public enum Exclusion: Hashable, Sendable {
        /// The namespace is labelled `config.linkerd.io/admission-webhooks: disabled`.
        case webhooksDisabled
        /// The namespace is one the webhook never sees (`kube-system`, `cert-manager`); the name is carried.
        case excludedNamespace(String)
        /// The pod carries this label (with any value).
        case excludedPodLabel(String)
    }

    /// The namespace label that turns Linkerd's admission webhooks off for a namespace.
    public static let admissionWebhooksLabel = "config.linkerd.io/admission-webhooks"
    /// Its value that does.
    public static let admissionWebhooksDisabled = "disabled"
    /// The namespaces the webhook is never called for.
    public static let excludedNamespaces: Set<String> = ["kube-system", "cert-manager"]
    /// Pod labels that keep the webhook from being called, whatever their value: the control plane's own pods and
    /// the CNI plugin's.
    public static let excludedPodLabels = [MeshKeys.controlPlaneComponentLabel, "linkerd.io/cni-resource"]

    /// Why the webhook is not called for a pod in `namespace` (with `namespaceLabels`) labelled `podLabels`; nil
    /// when it is.
    public static func exclusion(
        namespace: String, namespaceLabels: [String: String], podLabels: [String: String]
    ) -> Exclusion? {
        if namespaceLabels[admissionWebhooksLabel] == admissionWebhooksDisabled {
            return .webhooksDisabled
        }
        if excludedNamespaces.contains(namespace) {
            return .excludedNamespace(namespace)
        }
        if let label = excludedPodLabels.first(where: { podLabels[$0] != nil }) {
            return .excludedPodLabel(label)
        }
        return nil
    }
}
