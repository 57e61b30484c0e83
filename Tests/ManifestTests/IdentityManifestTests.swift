import Foundation
import KubeModel
import LinkerdInject
import Testing

/// The facts of manifests/35-identity.yaml others rely on: the names proxies dial, the ports, the flags, the mounted
/// issuer Secret and trust roots, and exactly the privileges the identity service uses (control-plane.md §4).
@Suite("Identity manifest contract")
struct IdentityManifestTests {
    let manifests: ManifestFiles
    init() throws {
        manifests = try ManifestFiles()
    }

    static let name = "linkerd-identity"

    @Test("ServiceAccount, and a ClusterRole granting only TokenReview create and Event create, bound to it")
    func rbac() throws {
        _ = try manifests.object("ServiceAccount", Self.name)
        let role = try manifests.object("ClusterRole", "linkerd-linkerd-identity").decode(RBACRole.self)
        #expect(
            Grant.of(role.rules)
                == Grant.grants("authentication.k8s.io", ["tokenreviews"], ["create"])
                .union(Grant.grants("", ["events"], ["create"])))
        let binding = try manifests.object("ClusterRoleBinding", "linkerd-linkerd-identity").decode(RBACBinding.self)
        #expect(
            binding.roleRef
                == .init(apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: role.metadata.name ?? ""))
        #expect(binding.subjects == [.init(kind: "ServiceAccount", name: Self.name, namespace: "linkerd")])
    }

    @Test("The Deployment runs linkerd-identity with upstream's flags, hardened, probed on the admin port")
    func deployment() throws {
        let deployment = try manifests.object("Deployment", Self.name).decode(Deployment.self)
        let spec = try #require(deployment.spec)
        let podLabels = try #require(spec.template.metadata?.labels)
        #expect(podLabels["linkerd.io/control-plane-component"] == "identity")
        #expect(spec.selector?.matches(podLabels) == true)
        let pod = try #require(spec.template.spec)
        #expect(pod.serviceAccountName == Self.name)
        let container = try #require(pod.containers.first)
        #expect(container.image == "cr.l5d.io/linkerd/controller-swift:\(LinkerdVersion.current)")
        #expect(container.command == ["linkerd-identity"])
        #expect(
            container.args == [
                "--addr=:8080", "--admin-addr=:9990", "--issuer=/var/run/linkerd/identity/issuer",
                "--trust-anchors=/var/run/linkerd/identity/trust-roots/ca-bundle.crt",
                "--identity-trust-domain=cluster.local", "--controller-namespace=linkerd",
                "--identity-issuance-lifetime=24h0m0s", "--identity-clock-skew-allowance=20s",
            ])
        #expect(
            container.ports == [
                ContainerPort(name: "ident-grpc", containerPort: 8080),
                ContainerPort(name: "ident-admin", containerPort: 9990),
            ])
        #expect(container.livenessProbe?.httpGet == HTTPGetAction(path: "/ping", port: 9990))
        #expect(container.readinessProbe?.httpGet == HTTPGetAction(path: "/ready", port: 9990))
        let security = try #require(container.securityContext)
        #expect(security.runAsNonRoot == true)
        #expect(security.readOnlyRootFilesystem == true)
        #expect(security.allowPrivilegeEscalation == false)
        #expect(security.capabilities?.drop == ["ALL"])
        #expect(security.seccompProfile?.type == "RuntimeDefault")

        // The issuer Secret and the trust-roots ConfigMap are mounted where the flags point.
        let issuerMount = try #require(
            container.volumeMounts?.first { $0.mountPath == "/var/run/linkerd/identity/issuer" })
        #expect(pod.volumes?.first { $0.name == issuerMount.name }?.secret?.secretName == "linkerd-identity-issuer")
        let rootsMount = try #require(
            container.volumeMounts?.first { $0.mountPath == "/var/run/linkerd/identity/trust-roots" })
        #expect(pod.volumes?.first { $0.name == rootsMount.name }?.configMap?.name == "linkerd-identity-trust-roots")
        // The issuer's key material is never part of the manifests.
        #expect(manifests.documents.allSatisfy { $0.header.metadata.name != "linkerd-identity-issuer" })
    }

    @Test("Services linkerd-identity and linkerd-identity-headless send 8080 (grpc) to the identity pods")
    func services() throws {
        let deployment = try manifests.object("Deployment", Self.name).decode(Deployment.self)
        let podLabels = deployment.spec?.template.metadata?.labels ?? [:]
        for name in [Self.name, "linkerd-identity-headless"] {
            let service = try manifests.object("Service", name).decode(Service.self)
            #expect(service.spec?.ports == [ServicePort(name: "grpc", port: 8080, targetPort: 8080)], "\(name)")
            let selector = try #require(service.spec?.selector)
            #expect(LabelSelector(matchLabels: selector).matches(podLabels))
        }
        let headless = try manifests.object("Service", "linkerd-identity-headless").decode(Service.self)
        #expect(headless.spec?.clusterIP == "None")
    }
}
