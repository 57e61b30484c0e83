import KubeModel
import LinkerdInject
import Testing

@Suite("Injection report")
struct ReportTests {
    let injector = ProxyInjector(configuration: testConfiguration)

    /// Upstream's truth table (`pkg/inject/report.go`): namespace value, pod value, origin → skip reason and
    /// where the deciding annotation was.
    @Test(
        "inject truth table",
        arguments: [
            ("enabled", "enabled", InjectionOrigin.webhook, nil, "namespace"),
            ("enabled", "", .webhook, nil, "namespace"),
            ("enabled", "disabled", .webhook, SkipReason.injectionDisableAnnotationPresent, "workload"),
            ("ingress", "", .webhook, nil, "namespace"),
            ("ingress", "disabled", .webhook, .injectionDisableAnnotationPresent, "workload"),
            ("disabled", "enabled", .webhook, nil, "workload"),
            ("", "enabled", .webhook, nil, "workload"),
            ("", "ingress", .webhook, nil, "workload"),
            ("disabled", "disabled", .webhook, .injectionEnableAnnotationAbsent, ""),
            ("", "disabled", .webhook, .injectionEnableAnnotationAbsent, ""),
            ("disabled", "", .webhook, .injectionEnableAnnotationAbsent, ""),
            ("", "", .webhook, .injectionEnableAnnotationAbsent, ""),
            ("true", "enabled", .webhook, .invalidInjectAnnotationAtNamespace, ""),
            ("enabled", "yes", .webhook, .invalidInjectAnnotationAtWorkload, ""),
            ("", "Enabled", .webhook, .invalidInjectAnnotationAtWorkload, ""),
            ("", "enabled", .cli, nil, ""),
            ("", "", .cli, nil, ""),
            ("disabled", "", .cli, nil, ""),
            ("junk", "junk", .cli, nil, ""),
            ("enabled", "disabled", .cli, .injectionDisableAnnotationPresent, ""),
        ] as [(String, String, InjectionOrigin, SkipReason?, String)])
    func truthTable(namespace: String, pod: String, origin: InjectionOrigin, reason: SkipReason?, at: String) {
        let podAnnotations = pod.isEmpty ? [:] : [MeshKeys.inject: pod]
        let namespaceAnnotations = namespace.isEmpty ? [:] : [MeshKeys.inject: namespace]
        let report = injector.report(
            podRequest(makePod(annotations: podAnnotations), namespaceAnnotations: namespaceAnnotations, origin: origin)
        )
        #expect(report.skipReasons == (reason.map { [$0] } ?? []))
        #expect(report.injectable == (reason == nil))
        #expect(report.annotationAt == at)
    }

    @Test("each skip reason has upstream's key and text")
    func reasonTexts() {
        let expected: [SkipReason: (String, String)] = [
            .hostNetworkEnabled: ("host_network_enabled", "hostNetwork is enabled"),
            .sidecarAlreadyExists: ("sidecar_already_exists", "pod has a sidecar injected already"),
            .unsupportedResource: ("unsupported_resource", "this resource kind is unsupported"),
            .injectionEnableAnnotationAbsent: (
                "injection_enable_annotation_absent",
                "neither the namespace nor the pod have the annotation \"linkerd.io/inject:enabled\""
            ),
            .injectionDisableAnnotationPresent: (
                "injection_disable_annotation_present", "pod has the annotation \"linkerd.io/inject:disabled\""
            ),
            .invalidInjectAnnotationAtNamespace: (
                "invalid_inject_annotation_at_ns", "invalid value for annotation \"linkerd.io/inject\" at namespace"
            ),
            .invalidInjectAnnotationAtWorkload: (
                "invalid_inject_annotation_at_workload",
                "invalid value for annotation \"linkerd.io/inject\" at workload"
            ),
            .disabledAutomountServiceAccountToken: (
                "disabled_automount_service_account_token_account", "automountServiceAccountToken set to \"false\""
            ),
        ]
        #expect(Set(expected.keys) == Set(SkipReason.allCases))
        for (reason, (key, text)) in expected {
            #expect(reason.rawValue == key)
            #expect(reason.text == text)
        }
    }

    @Test("host network skips")
    func hostNetwork() {
        let report = injector.report(
            podRequest(makePod(annotations: [MeshKeys.inject: "enabled"], spec: ["hostNetwork": true])))
        #expect(report.skipReasons == [.hostNetworkEnabled])
        #expect(report.skipReasonText == "hostNetwork is enabled")
    }

    @Test(
        "an existing sidecar skips",
        arguments: [
            (["name": "app", "image": "cr.l5d.io/linkerd/proxy:edge-24.1.1"], false),
            (["name": "app", "image": "gcr.io/istio-release/proxyv2:1.20"], false),
            (["name": "linkerd-proxy", "image": "custom/proxy:1"], false),
            (["name": "istio-proxy", "image": "custom/proxy:1"], false),
            (["name": "linkerd-init", "image": "custom/init:1"], true),
            (["name": "istio-init", "image": "custom/init:1"], true),
            (["name": "setup", "image": "cr.l5d.io/linkerd/proxy-init:v2.4.0"], true),
            (["name": "setup", "image": "gcr.io/istio-release/proxy_init:1.0"], true),
            (["name": "setup", "image": "cr.l5d.io/linkerd/proxy:edge-24.1.1"], true),
            (["name": "linkerd-proxy", "image": "custom/proxy:1", "restartPolicy": "Always"], true),
        ] as [(JSONValue, Bool)])
    func sidecar(container: JSONValue, asInitContainer: Bool) {
        let app: JSONValue = ["name": "web", "image": "web:1"]
        let pod = makePod(
            annotations: [MeshKeys.inject: "enabled"],
            containers: asInitContainer ? [app] : [app, container],
            initContainers: asInitContainer ? [container] : nil)
        #expect(injector.report(podRequest(pod)).skipReasons.contains(.sidecarAlreadyExists))
    }

    @Test("a proxy-init image in a regular container is not a sidecar")
    func initImageInContainer() {
        let pod = makePod(
            annotations: [MeshKeys.inject: "enabled"],
            containers: [["name": "tool", "image": "cr.l5d.io/linkerd/proxy-init:v2"]])
        #expect(!injector.report(podRequest(pod)).skipReasons.contains(.sidecarAlreadyExists))
    }

    @Test("kinds without a pod template are unsupported, Namespaces too (the CLI annotates them itself)")
    func unsupported() {
        for kind in ["Service", "ConfigMap", "Namespace", "Secret"] {
            let object: JSONValue = ["apiVersion": "v1", "kind": .string(kind), "metadata": ["name": "x"]]
            for origin in [InjectionOrigin.webhook, .cli] {
                let report = injector.report(
                    InjectionRequest(object: object, kind: kind, namespace: "shop", origin: origin))
                #expect(report.skipReasons == [.unsupportedResource], "\(kind)")
                #expect(report.name == "x")
            }
        }
    }

    @Test(
        "automount off skips only without token projection",
        arguments: [
            (false, false, true, InjectionOrigin.webhook, true),
            (false, nil, false, .webhook, true),
            (false, nil, false, .cli, false),
            (false, false, false, .cli, true),
            (false, true, true, .webhook, false),
            (true, false, false, .webhook, false),
        ] as [(Bool, Bool?, Bool, InjectionOrigin, Bool)])
    func automount(projection: Bool, automount: Bool?, saMount: Bool, origin: InjectionOrigin, skips: Bool) {
        var configuration = testConfiguration
        configuration.serviceAccountTokenProjection = projection
        let container: JSONValue =
            saMount
            ? [
                "name": "web", "image": "web:1",
                "volumeMounts": [["name": "sa", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"]],
            ] : ["name": "web", "image": "web:1"]
        let pod = makePod(
            annotations: [MeshKeys.inject: "enabled"], containers: [container],
            spec: automount.map { ["automountServiceAccountToken": .bool($0)] } ?? [:])
        let report = ProxyInjector(configuration: configuration).report(podRequest(pod, origin: origin))
        #expect(report.skipReasons.contains(.disabledAutomountServiceAccountToken) == skips)
    }

    @Test("several reasons are reported in upstream's order")
    func order() {
        let pod = makePod(
            annotations: [MeshKeys.inject: "disabled"],
            containers: [["name": "linkerd-proxy", "image": "x"]],
            spec: ["hostNetwork": true])
        let report = injector.report(podRequest(pod, namespaceAnnotations: [MeshKeys.inject: "enabled"]))
        #expect(report.skipReasons == [.hostNetworkEnabled, .sidecarAlreadyExists, .injectionDisableAnnotationPresent])
        #expect(
            report.skipReasonText
                == "hostNetwork is enabled, pod has a sidecar injected already, "
                + "pod has the annotation \"linkerd.io/inject:disabled\"")
    }

    @Test("the name is metadata.name, else generateName")
    func name() throws {
        var pod = makePod(annotations: [MeshKeys.inject: "enabled"])
        #expect(injector.report(podRequest(pod)).name == "web-1")
        pod["metadata"] = ["generateName": "web-7d4b-"]
        #expect(injector.report(podRequest(pod)).name == "web-7d4b-")
        pod["metadata"] = [:]
        #expect(injector.report(podRequest(pod)).name == "")
    }

    @Test("effective annotations include what the namespace passes down")
    func effectiveAnnotations() {
        let report = injector.report(
            podRequest(
                makePod(annotations: ["config.linkerd.io/proxy-cpu-request": "1", "team": "a"]),
                namespaceAnnotations: [
                    MeshKeys.inject: "enabled", "config.linkerd.io/proxy-cpu-request": "2",
                    "config.linkerd.io/proxy-memory-limit": "1Gi", "config.linkerd.io/enable-gateway": "true",
                ]))
        #expect(
            report.effectiveAnnotations == [
                "config.linkerd.io/proxy-cpu-request": "1", "team": "a", MeshKeys.inject: "enabled",
                "config.linkerd.io/proxy-memory-limit": "1Gi",
            ])
    }

    @Test("control-plane components: --manual injects them, linkerd inject without --manual does not annotate them")
    func controlPlane() {
        var deployment: JSONValue = [
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": [
                "name": "linkerd-destination", "labels": ["linkerd.io/control-plane-component": "destination"],
            ],
            "spec": ["template": ["spec": ["containers": [["name": "destination", "image": "x"]]]]],
        ]
        let cli = injector.inject(
            InjectionRequest(object: deployment, kind: "Deployment", namespace: "l", origin: .cli))
        #expect(cli.report.injectable)
        #expect(cli.patch != nil)
        #expect(ProxyInjector.isControlPlaneComponent(deployment, kind: "Deployment"))
        #expect(ProxyInjector.annotateForInjection(deployment, kind: "Deployment") == nil)
        deployment["metadata"] = ["name": "linkerd-destination"]
        deployment["spec"] = [
            "template": [
                "metadata": ["labels": ["linkerd.io/control-plane-component": "destination"]],
                "spec": ["containers": [["name": "destination", "image": "x"]]],
            ]
        ]
        #expect(ProxyInjector.isControlPlaneComponent(deployment, kind: "Deployment"), "labelled in the template")
        #expect(
            ProxyInjector.annotateForInjection(deployment, kind: "Deployment") == nil,
            "non-manual inject refuses them")
        #expect(!ProxyInjector.isControlPlaneComponent(deployment, kind: "ConfigMap"))
    }
}
