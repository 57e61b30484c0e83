import KubeModel
import LinkerdInject
import Testing

@testable import LinkerdController

/// A pod for the audit tables: `app` container, optionally the proxy (as a container or a native sidecar).
private func auditPod(
    namespace: String = "app", annotations: [String: String] = [:], labels: [String: String] = [:],
    proxy: ProxyPlacement = .none,
    hostNetwork: Bool? = nil, phase: String? = nil, deleting: Bool = false, extraContainer: String? = nil
) -> Pod {
    var containers = [Container(name: "app", image: "app:1")]
    var initContainers: [Container]?
    switch proxy {
    case .none: break
    case .container: containers.append(Container(name: "linkerd-proxy", image: "cr.l5d.io/linkerd/proxy:v1"))
    case .nativeSidecar:
        var sidecar = Container(name: "linkerd-proxy", image: "cr.l5d.io/linkerd/proxy:v1")
        sidecar.restartPolicy = "Always"
        initContainers = [sidecar]
    }
    if let extraContainer { containers.append(Container(name: extraContainer, image: "other:1")) }
    var pod = Pod(
        metadata: ObjectMeta(name: "web-1", namespace: namespace, labels: labels, annotations: annotations),
        spec: PodSpec(containers: containers, initContainers: initContainers, hostNetwork: hostNetwork),
        status: phase.map { PodStatus(phase: $0) })
    if deleting { pod.metadata.deletionTimestamp = "2024-05-01T12:00:00Z" }
    return pod
}

private enum ProxyPlacement { case none, container, nativeSidecar }

private let trustAnchors = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

private let configuration: MeshConfiguration = {
    var configuration = MeshConfiguration.defaults
    configuration.proxyVersion = "edge-2"
    configuration.trustAnchorsPEM = trustAnchors
    return configuration
}()

/// The annotations the injector writes today.
private let current = [
    MeshKeys.proxyVersion: "edge-2", MeshKeys.trustRootSHA256: configuration.trustRootSHA256,
]
private let enabled = [MeshKeys.inject: MeshKeys.injectEnabled]

struct AuditCase: Sendable, CustomTestStringConvertible {
    var name: String
    var pod: Pod
    var namespaceAnnotations: [String: String] = [:]
    var namespaceLabels: [String: String] = [:]
    var expected: MeshAudit.Verdict

    var testDescription: String { name }
}

@Suite("MeshAudit")
struct MeshAuditTests {
    static let cases: [AuditCase] = [
        AuditCase(
            name: "no proxy, namespace enabled", pod: auditPod(), namespaceAnnotations: enabled,
            expected: .proxyMissing),
        AuditCase(name: "no proxy, pod enabled", pod: auditPod(annotations: enabled), expected: .proxyMissing),
        AuditCase(
            name: "no proxy, running, namespace enabled", pod: auditPod(phase: "Running"),
            namespaceAnnotations: enabled, expected: .proxyMissing),
        AuditCase(
            name: "no annotation anywhere", pod: auditPod(),
            expected: .notMeshable([.injectionEnableAnnotationAbsent])),
        AuditCase(
            name: "pod opts out of an enabled namespace",
            pod: auditPod(annotations: [MeshKeys.inject: MeshKeys.injectDisabled]), namespaceAnnotations: enabled,
            expected: .notMeshable([.injectionDisableAnnotationPresent])),
        AuditCase(
            name: "host network", pod: auditPod(hostNetwork: true), namespaceAnnotations: enabled,
            expected: .notMeshable([.hostNetworkEnabled])),
        AuditCase(
            name: "invalid namespace annotation", pod: auditPod(),
            namespaceAnnotations: [MeshKeys.inject: "yes"],
            expected: .notMeshable([.invalidInjectAnnotationAtNamespace])),
        AuditCase(
            name: "another mesh's sidecar", pod: auditPod(extraContainer: "istio-proxy"),
            namespaceAnnotations: enabled, expected: .notMeshable([.sidecarAlreadyExists])),
        AuditCase(
            name: "current proxy", pod: auditPod(annotations: current, proxy: .container),
            namespaceAnnotations: enabled, expected: .meshed),
        AuditCase(
            name: "current native sidecar", pod: auditPod(annotations: current, proxy: .nativeSidecar),
            namespaceAnnotations: enabled, expected: .meshed),
        AuditCase(
            name: "proxy kept after the namespace turned injection off",
            pod: auditPod(annotations: current, proxy: .container), expected: .meshed),
        AuditCase(
            name: "old proxy version",
            pod: auditPod(annotations: current.merging([MeshKeys.proxyVersion: "edge-1"]) { $1 }, proxy: .container),
            namespaceAnnotations: enabled,
            expected: .proxyOutdated([.init(aspect: .proxyVersion, running: "edge-1", expected: "edge-2")])),
        AuditCase(
            name: "old trust root",
            pod: auditPod(annotations: current.merging([MeshKeys.trustRootSHA256: "00ff"]) { $1 }, proxy: .container),
            namespaceAnnotations: enabled,
            expected: .proxyOutdated([
                .init(aspect: .trustRoot, running: "00ff", expected: configuration.trustRootSHA256)
            ])),
        AuditCase(
            name: "injected before the annotations existed", pod: auditPod(proxy: .nativeSidecar),
            namespaceAnnotations: enabled,
            expected: .proxyOutdated([
                .init(aspect: .proxyVersion, running: nil, expected: "edge-2"),
                .init(aspect: .trustRoot, running: nil, expected: configuration.trustRootSHA256),
            ])),
        AuditCase(
            name: "pinned proxy version on the pod",
            pod: auditPod(
                annotations: current.merging([MeshKeys.proxyVersion: "pinned", MeshKeys.proxyVersionOverride: "pinned"])
                { $1 }, proxy: .container),
            namespaceAnnotations: enabled, expected: .meshed),
        AuditCase(
            name: "pinned proxy version on the namespace",
            pod: auditPod(annotations: current.merging([MeshKeys.proxyVersion: "edge-1"]) { $1 }, proxy: .container),
            namespaceAnnotations: enabled.merging([MeshKeys.proxyVersionOverride: "edge-3"]) { $1 },
            expected: .proxyOutdated([.init(aspect: .proxyVersion, running: "edge-1", expected: "edge-3")])),
        AuditCase(
            name: "control-plane namespace", pod: auditPod(namespace: "linkerd"),
            namespaceAnnotations: enabled, expected: .exempt(.controlPlane)),
        AuditCase(
            name: "namespace with admission webhooks disabled", pod: auditPod(), namespaceAnnotations: enabled,
            namespaceLabels: ["config.linkerd.io/admission-webhooks": "disabled"],
            expected: .exempt(.outsideWebhookScope(.webhooksDisabled))),
        AuditCase(
            name: "namespace with admission webhooks labelled otherwise", pod: auditPod(),
            namespaceAnnotations: enabled, namespaceLabels: ["config.linkerd.io/admission-webhooks": "enabled"],
            expected: .proxyMissing),
        AuditCase(
            name: "kube-system", pod: auditPod(namespace: "kube-system"), namespaceAnnotations: enabled,
            expected: .exempt(.outsideWebhookScope(.excludedNamespace("kube-system")))),
        AuditCase(
            name: "cert-manager", pod: auditPod(namespace: "cert-manager"), namespaceAnnotations: enabled,
            expected: .exempt(.outsideWebhookScope(.excludedNamespace("cert-manager")))),
        AuditCase(
            name: "control-plane component label, empty value",
            pod: auditPod(labels: ["linkerd.io/control-plane-component": ""]), namespaceAnnotations: enabled,
            expected: .exempt(.outsideWebhookScope(.excludedPodLabel("linkerd.io/control-plane-component")))),
        AuditCase(
            name: "CNI resource label", pod: auditPod(labels: ["linkerd.io/cni-resource": "true"]),
            namespaceAnnotations: enabled,
            expected: .exempt(.outsideWebhookScope(.excludedPodLabel("linkerd.io/cni-resource")))),
        AuditCase(
            name: "terminating", pod: auditPod(deleting: true), namespaceAnnotations: enabled,
            expected: .exempt(.terminating)),
        AuditCase(
            name: "succeeded", pod: auditPod(phase: "Succeeded"), namespaceAnnotations: enabled,
            expected: .exempt(.finished("Succeeded"))),
        AuditCase(
            name: "failed, with an old proxy", pod: auditPod(proxy: .container, phase: "Failed"),
            namespaceAnnotations: enabled, expected: .exempt(.finished("Failed"))),
    ]

    @Test("classifies pods", arguments: cases)
    func classify(_ audit: AuditCase) throws {
        let verdict = try MeshAudit(configuration: configuration).audit(
            audit.pod, namespaceAnnotations: audit.namespaceAnnotations, namespaceLabels: audit.namespaceLabels)
        #expect(verdict == audit.expected)
    }

    @Test("a JSON pod keeps fields the typed model drops and is judged the same")
    func jsonPod() throws {
        var pod = try JSONValue(encoding: auditPod())
        pod["spec"]?["unmodelledField"] = ["kept": true]
        let audit = MeshAudit(configuration: configuration)
        #expect(audit.audit(pod, namespaceAnnotations: enabled) == .proxyMissing)
        #expect(audit.audit(pod, namespaceAnnotations: [:]) == .notMeshable([.injectionEnableAnnotationAbsent]))
        var terminating = pod
        terminating["metadata"]?["deletionTimestamp"] = "2024-05-01T12:00:00Z"
        #expect(audit.audit(terminating, namespaceAnnotations: enabled) == .exempt(.terminating))
    }

    @Test("findings and drift descriptions")
    func findings() {
        #expect(MeshAudit.Verdict.meshed.finding == nil)
        #expect(MeshAudit.Verdict.notMeshable([.hostNetworkEnabled]).finding == nil)
        #expect(MeshAudit.Verdict.proxyMissing.finding == .proxyMissing)
        let drift = MeshAudit.ProxyDrift(aspect: .proxyVersion, running: "edge-1", expected: "edge-2")
        #expect(MeshAudit.Verdict.proxyOutdated([drift]).finding == .proxyOutdated([drift]))
        #expect(drift.description == #"proxy version "edge-1" (expected "edge-2")"#)
        #expect(
            MeshAudit.ProxyDrift(aspect: .trustRoot, running: nil, expected: "ab").description
                == #"trust root sha256 unknown (no linkerd.io/trust-root-sha256 annotation) (expected "ab")"#)
        #expect(MeshFinding.proxyMissing.metricReason == "proxy_missing")
        #expect(MeshFinding.proxyOutdated([drift]).metricReason == "proxy_outdated")
    }
}
