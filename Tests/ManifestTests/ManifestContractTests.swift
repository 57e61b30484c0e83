import Foundation
import KubeModel
import LinkerdInject
import Testing

/// The facts of manifests/ that other parts rely on: names, ports, labels, selectors, privileges and the
/// controller's command line (control-plane.md §1, §2.1).
@Suite("Manifest contract")
struct ManifestContractTests {
    let manifests: ManifestFiles
    init() throws {
        manifests = try ManifestFiles()
    }

    static let namespace = "linkerd"
    static let injectorName = "linkerd-proxy-injector"
    static let componentLabel = "linkerd.io/control-plane-component"

    @Test("Files apply in an order that works: the namespace first, the webhook registration last")
    func order() throws {
        let names = manifests.files.map(\.lastPathComponent)
        #expect(
            names == [
                "00-namespace.yaml", "10-config.yaml", "20-proxy-injector-rbac.yaml", "30-proxy-injector.yaml",
                "35-identity.yaml", "40-proxy-injector-webhook.yaml",
            ])
        #expect(manifests.documents.first?.header.kind == "Namespace")
        #expect(manifests.documents.last?.header.kind == "MutatingWebhookConfiguration")
        for document in manifests.documents where document.header.kind != "Namespace" {
            let clusterScoped = ["ClusterRole", "ClusterRoleBinding", "MutatingWebhookConfiguration"]
            let expected = clusterScoped.contains(document.header.kind) ? nil : Self.namespace
            #expect(document.header.metadata.namespace == expected, "\(document.header.kind) in \(document.file)")
        }
    }

    @Test("Namespace linkerd opts out of injection and of the webhook")
    func namespace() throws {
        let namespace = try manifests.object("Namespace", Self.namespace).decode(Namespace.self)
        #expect(namespace.metadata.annotations == ["linkerd.io/inject": "disabled"])
        #expect(
            namespace.metadata.labels == [
                "linkerd.io/is-control-plane": "true",
                "config.linkerd.io/admission-webhooks": "disabled",
                "linkerd.io/control-plane-ns": "linkerd",
                "pod-security.kubernetes.io/enforce": "privileged",
            ])
    }

    @Test("linkerd-config holds values the injector reads; the trust roots key exists, empty until install")
    func configuration() throws {
        let config = try manifests.object("ConfigMap", "linkerd-config").decode(ConfigMap.self)
        let values = try #require(config.data?["values"])
        let mesh = try MeshConfiguration(valuesYAML: values, trustAnchorsPEM: "")
        #expect(mesh.controlPlaneNamespace == Self.namespace)
        #expect(mesh.clusterDomain == "cluster.local")
        #expect(mesh.identityTrustDomain == "cluster.local")
        #expect(mesh.linkerdVersion == LinkerdVersion.current)
        #expect(mesh.proxyVersion == LinkerdVersion.current)
        #expect(mesh == Self.withoutAnchors(MeshConfiguration.defaults), "the values restate the defaults")

        let roots = try manifests.object("ConfigMap", "linkerd-identity-trust-roots").decode(ConfigMap.self)
        #expect(roots.data == ["ca-bundle.crt": ""])
    }

    private static func withoutAnchors(_ configuration: MeshConfiguration) -> MeshConfiguration {
        var copy = configuration
        copy.trustAnchorsPEM = ""
        return copy
    }

    @Test("The cluster role grants exactly what the injector needs")
    func clusterRole() throws {
        let role = try manifests.object("ClusterRole", "linkerd-linkerd-proxy-injector").decode(RBACRole.self)
        var expected = Grant.grants("", ["events"], ["create"])
        expected.formUnion(Grant.grants("", ["namespaces"], ["get", "list", "watch"]))
        expected.formUnion(Grant.grants("", ["pods"], ["list", "watch"]))
        expected.formUnion(Grant.grants("apps", ["replicasets"], ["get"]))
        expected.formUnion(Grant.grants("batch", ["jobs"], ["get"]))
        expected.formUnion(Grant.grants("apps", ["deployments", "statefulsets", "daemonsets"], ["get", "patch"]))
        expected.formUnion(
            Grant.grants(
                "admissionregistration.k8s.io", ["mutatingwebhookconfigurations"], ["get", "patch"],
                name: "linkerd-proxy-injector-webhook-config"))
        let granted = Grant.of(role.rules)
        #expect(granted.subtracting(expected).isEmpty, "extra: \(granted.subtracting(expected))")
        #expect(expected.subtracting(granted).isEmpty, "missing: \(expected.subtracting(granted))")
    }

    @Test("The namespaced role: the serving-certificate Secret by name, and Leases")
    func role() throws {
        let role = try manifests.object("Role", Self.injectorName).decode(RBACRole.self)
        var expected = Grant.grants(
            "", ["secrets"], ["get", "update", "delete"], name: "linkerd-proxy-injector-k8s-tls")
        // The authorizer sees no name on a create, so create cannot be limited by resourceNames.
        expected.formUnion(Grant.grants("", ["secrets"], ["create"]))
        expected.formUnion(
            Grant.grants("coordination.k8s.io", ["leases"], ["get", "update"], name: "linkerd-proxy-injector"))
        expected.formUnion(Grant.grants("coordination.k8s.io", ["leases"], ["create"]))
        #expect(Grant.of(role.rules) == expected)
    }

    @Test("Both bindings give their role to the injector's service account")
    func bindings() throws {
        let account = try manifests.object("ServiceAccount", Self.injectorName)
        #expect(account.header.metadata.namespace == Self.namespace)
        let subject = RBACBinding.Subject(kind: "ServiceAccount", name: Self.injectorName, namespace: Self.namespace)
        let clusterBinding = try manifests.object("ClusterRoleBinding", "linkerd-linkerd-proxy-injector")
            .decode(RBACBinding.self)
        #expect(clusterBinding.subjects == [subject])
        #expect(
            clusterBinding.roleRef
                == .init(
                    apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "linkerd-linkerd-proxy-injector"))
        let binding = try manifests.object("RoleBinding", Self.injectorName).decode(RBACBinding.self)
        #expect(binding.subjects == [subject])
        #expect(binding.roleRef == .init(apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: Self.injectorName))
    }

    @Test("The Deployment runs linkerd-controller with the agreed command line, ports, probes and hardening")
    func deployment() throws {
        let deployment = try manifests.object("Deployment", Self.injectorName).decode(Deployment.self)
        let spec = try #require(deployment.spec)
        let podLabels = try #require(spec.template.metadata?.labels)
        #expect(podLabels[Self.componentLabel] == "proxy-injector")
        #expect(spec.selector?.matches(podLabels) == true)
        let pod = try #require(spec.template.spec)
        #expect(pod.serviceAccountName == Self.injectorName)
        #expect(pod.containers.count == 1)
        let container = try #require(pod.containers.first)
        #expect(container.image == "cr.l5d.io/linkerd/controller-swift:\(LinkerdVersion.current)")
        #expect(
            container.args == [
                "--addr=:8443", "--admin-addr=:9995", "--controller-namespace=linkerd",
                "--values=/var/run/linkerd/config/values",
                "--trust-roots=/var/run/linkerd/identity/trust-roots/ca-bundle.crt",
            ])
        // linkerd-controller names itself in the leader-election Lease after POD_NAME.
        #expect(container.env?.first { $0.name == "POD_NAME" }?.valueFrom?.fieldRef?.fieldPath == "metadata.name")
        #expect(
            container.ports == [
                ContainerPort(name: "proxy-injector", containerPort: 8443),
                ContainerPort(name: "injector-admin", containerPort: 9995),
            ])
        #expect(container.livenessProbe?.httpGet == HTTPGetAction(path: "/ping", port: 9995))
        #expect(container.readinessProbe?.httpGet == HTTPGetAction(path: "/ready", port: 9995))
        #expect(container.resources?.requests?["cpu"] != nil)
        #expect(container.resources?.requests?["memory"] != nil)
        let security = try #require(container.securityContext)
        #expect(security.runAsNonRoot == true)
        #expect(security.runAsUser == 2103)
        #expect(security.readOnlyRootFilesystem == true)
        #expect(security.allowPrivilegeEscalation == false)
        #expect(security.capabilities?.drop == ["ALL"])
        #expect(security.seccompProfile?.type == "RuntimeDefault")
    }

    @Test("The files named by --values and --trust-roots are keys of the mounted ConfigMaps")
    func mountedFiles() throws {
        let deployment = try manifests.object("Deployment", Self.injectorName).decode(Deployment.self)
        let pod = try #require(deployment.spec?.template.spec)
        let container = try #require(pod.containers.first)
        for flag in ["--values=", "--trust-roots="] {
            let path = try #require(container.args?.first { $0.hasPrefix(flag) }?.dropFirst(flag.count))
            let mount = try #require(
                container.volumeMounts?.first { path.hasPrefix($0.mountPath + "/") }, "no mount holds \(path)")
            #expect(mount.readOnly == true)
            let volume = try #require(pod.volumes?.first { $0.name == mount.name })
            let configMapName = try #require(volume.configMap?.name)
            let configMap = try manifests.object("ConfigMap", configMapName).decode(ConfigMap.self)
            let key = String(path.dropFirst(mount.mountPath.count + 1))
            #expect(configMap.data?[key] != nil, "ConfigMap \(configMapName) has no key \(key) for \(flag)")
        }
    }

    @Test("The Service sends 443 to the webhook port of the injector's pods and is opaque")
    func service() throws {
        let service = try manifests.object("Service", Self.injectorName).decode(Service.self)
        #expect(service.metadata.annotations?["config.linkerd.io/opaque-ports"] == "443")
        #expect(service.spec?.ports == [ServicePort(name: "proxy-injector", port: 443, targetPort: "proxy-injector")])
        let deployment = try manifests.object("Deployment", Self.injectorName).decode(Deployment.self)
        let podLabels = deployment.spec?.template.metadata?.labels ?? [:]
        let selector = try #require(service.spec?.selector)
        #expect(LabelSelector(matchLabels: selector).matches(podLabels))
    }

    @Test("The webhook: pods and services on CREATE, through the Service, failing open, without a CA bundle")
    func webhook() throws {
        let configuration = try manifests.object(
            "MutatingWebhookConfiguration", "linkerd-proxy-injector-webhook-config"
        ).decode(MutatingWebhookConfiguration.self)
        let webhook = try #require(configuration.webhooks?.only)
        #expect(webhook.name == "linkerd-proxy-injector.linkerd.io")
        #expect(
            webhook.clientConfig
                == .init(service: .init(namespace: Self.namespace, name: Self.injectorName, path: "/", port: 443)))
        #expect(webhook.clientConfig.caBundle == nil)
        #expect(webhook.failurePolicy == "Ignore")
        #expect(webhook.sideEffects == "None")
        #expect(webhook.admissionReviewVersions == ["v1", "v1beta1"])
        #expect(webhook.timeoutSeconds == 10)
        #expect(webhook.reinvocationPolicy == nil)
        #expect(
            webhook.rules == [
                .init(
                    operations: ["CREATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["pods", "services"],
                    scope: "Namespaced")
            ])
        #expect(
            webhook.namespaceSelector
                == LabelSelector(matchExpressions: [
                    .init(key: "config.linkerd.io/admission-webhooks", operator: "NotIn", values: ["disabled"]),
                    .init(
                        key: "kubernetes.io/metadata.name", operator: "NotIn", values: ["kube-system", "cert-manager"]),
                ]))
        #expect(
            webhook.objectSelector
                == LabelSelector(matchExpressions: [
                    .init(key: Self.componentLabel, operator: "DoesNotExist"),
                    .init(key: "linkerd.io/cni-resource", operator: "DoesNotExist"),
                ]))

        // What the selectors mean for the objects here: the injector sees neither its namespace nor its own pods.
        let namespace = try manifests.object("Namespace", Self.namespace).decode(Namespace.self)
        var namespaceLabels = namespace.metadata.labels ?? [:]
        namespaceLabels["kubernetes.io/metadata.name"] = Self.namespace  // set by the API server
        #expect(webhook.namespaceSelector?.matches(namespaceLabels) == false)
        #expect(webhook.namespaceSelector?.matches(["kubernetes.io/metadata.name": "shop"]) == true)
        let deployment = try manifests.object("Deployment", Self.injectorName).decode(Deployment.self)
        #expect(webhook.objectSelector?.matches(deployment.spec?.template.metadata?.labels ?? [:]) == false)
        #expect(webhook.objectSelector?.matches(["app": "web"]) == true)
    }

    @Test("Every object carries the control-plane namespace label")
    func labels() {
        for document in manifests.documents {
            #expect(
                document.header.metadata.labels?["linkerd.io/control-plane-ns"] == Self.namespace,
                "\(document.header.kind) \(document.header.metadata.name ?? "")")
        }
    }
}

extension Array {
    /// The element of a one-element array.
    fileprivate var only: Element? {
        count == 1 ? first : nil
    }
}
