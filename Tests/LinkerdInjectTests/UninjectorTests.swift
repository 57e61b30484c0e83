import KubeModel
import LinkerdInject
import Testing

@Suite("Uninjector")
struct UninjectorTests {
    let injector = ProxyInjector(configuration: testConfiguration)

    /// `value` without empty objects and arrays, recursively: the semantic comparison injection round trips need.
    func pruned(_ value: JSONValue) -> JSONValue? {
        switch value {
        case .object(let members):
            let kept = members.compactMapValues(pruned)
            return kept.isEmpty ? nil : .object(kept)
        case .array(let elements):
            let kept = elements.compactMap(pruned)
            return kept.isEmpty ? nil : .array(kept)
        default:
            return value
        }
    }

    @Test(
        "uninject undoes injection for pods and every workload kind",
        arguments: ["native", "classic", "cni", "debug"])
    func roundTrip(mode: String) throws {
        var configuration = testConfiguration
        configuration.cniEnabled = mode == "cni"
        var annotations = [MeshKeys.inject: "enabled", MeshKeys.proxyCPURequest: "1"]
        if mode == "classic" { annotations[MeshKeys.nativeSidecar] = "false" }
        if mode == "debug" { annotations[MeshKeys.enableDebugSidecar] = "true" }
        let pod = makePod(
            annotations: annotations,
            containers: [["name": "db", "image": "d", "ports": [["containerPort": 5432]]]],
            initContainers: [["name": "setup", "image": "s"]])
        let (_, injected) = try injectAndApply(podRequest(pod), configuration: configuration)
        let (uninjected, changed) = Uninjector.uninject(injected)
        #expect(changed)
        var expected = pod
        // Uninject keeps the config.linkerd.io annotations but the default opaque ports injection added, and
        // removes linkerd.io/inject: enabled.
        let kept = annotations.filter { $0.key != MeshKeys.inject }
        expected["metadata"]?["annotations"] = .object(kept.mapValues(JSONValue.string))
        #expect(pruned(uninjected) == pruned(expected))
        #expect(Uninjector.uninject(uninjected).changed == false, "nothing left to remove")

        for kind in ["Deployment", "ReplicaSet", "ReplicationController", "StatefulSet", "DaemonSet", "Job", "CronJob"]
        {
            let template: JSONValue = ["metadata": pod["metadata"] ?? [:], "spec": pod["spec"] ?? [:]]
            let spec: JSONValue =
                kind == "CronJob" ? ["jobTemplate": ["spec": ["template": template]]] : ["template": template]
            let workload: JSONValue = [
                "apiVersion": "apps/v1", "kind": .string(kind),
                "metadata": ["name": "w", "annotations": ["linkerd.io/created-by": "x", "keep": "y"]], "spec": spec,
            ]
            let (_, injected) = try injectAndApply(
                InjectionRequest(object: workload, kind: kind, namespace: "shop", origin: .cli),
                configuration: configuration)
            let (result, changed) = Uninjector.uninject(injected)
            #expect(changed, "\(kind)")
            var expectedWorkload = workload
            expectedWorkload["metadata"]?["annotations"] = ["keep": "y"]
            let tokens = kind == "CronJob" ? ["spec", "jobTemplate", "spec", "template"] : ["spec", "template"]
            let uninjectedTemplate = result.value(atTokens: tokens)
            #expect(
                pruned(uninjectedTemplate ?? .null)
                    == pruned(["metadata": expected["metadata"] ?? [:], "spec": expected["spec"] ?? [:]]), "\(kind)")
            #expect(result["metadata"] == expectedWorkload["metadata"], "\(kind): the workload's own metadata")
        }
    }

    @Test("linkerd.io/inject: disabled and config.linkerd.io annotations stay; linkerd.io labels go")
    func keeps() {
        let pod: JSONValue = [
            "apiVersion": "v1", "kind": "Pod",
            "metadata": [
                "name": "p",
                "annotations": [
                    "linkerd.io/inject": "disabled", "config.linkerd.io/skip-inbound-ports": "1",
                    "linkerd.io/proxy-version": "v", "config.alpha.linkerd.io/x": "y",
                ],
                "labels": ["app": "p", "linkerd.io/control-plane-ns": "linkerd", "linkerd.io/workload-ns": "shop"],
            ],
            "spec": [
                "containers": [["name": "app", "image": "a"], ["name": "linkerd-proxy", "image": "p"]],
                "volumes": [["name": "data", "emptyDir": [:]], ["name": "linkerd-identity-token", "emptyDir": [:]]],
            ],
        ]
        let (result, changed) = Uninjector.uninject(pod)
        #expect(changed)
        #expect(
            result["metadata"]?["annotations"] == [
                "linkerd.io/inject": "disabled", "config.linkerd.io/skip-inbound-ports": "1",
                "config.alpha.linkerd.io/x": "y",
            ])
        #expect(result["metadata"]?["labels"] == ["app": "p"])
        #expect(result["spec"]?["containers"] == [["name": "app", "image": "a"]])
        #expect(result["spec"]?["volumes"] == [["name": "data", "emptyDir": [:]]])
    }

    @Test("arrays and maps emptied by the removal go; those empty before stay")
    func emptied() {
        let pod: JSONValue = [
            "kind": "Pod",
            "metadata": ["name": "p", "annotations": ["linkerd.io/created-by": "x"], "labels": [:]],
            "spec": [
                "containers": [["name": "app", "image": "a"]],
                "initContainers": [["name": "linkerd-init", "image": "i"], ["name": "linkerd-proxy", "image": "p"]],
                "volumes": [],
            ],
        ]
        let (result, changed) = Uninjector.uninject(pod)
        #expect(changed)
        #expect(
            result == [
                "kind": "Pod", "metadata": ["name": "p", "labels": [:]],
                "spec": ["containers": [["name": "app", "image": "a"]], "volumes": []],
            ])
    }

    @Test("control-plane objects, unknown kinds and untouched objects are left alone")
    func untouched() {
        let controlPlane: JSONValue = [
            "kind": "Deployment", "metadata": ["name": "linkerd-identity"],
            "spec": [
                "template": [
                    "metadata": ["labels": ["linkerd.io/control-plane-component": "identity"]],
                    "spec": ["containers": [["name": "linkerd-proxy", "image": "p"]]],
                ]
            ],
        ]
        #expect(Uninjector.uninject(controlPlane) == (controlPlane, false))
        let labelled: JSONValue = [
            "kind": "Pod", "metadata": ["labels": ["linkerd.io/control-plane-component": "identity"]],
            "spec": ["containers": [["name": "linkerd-proxy", "image": "p"]]],
        ]
        #expect(Uninjector.uninject(labelled) == (labelled, false))
        let configMap: JSONValue = ["kind": "ConfigMap", "metadata": ["annotations": ["linkerd.io/x": "y"]]]
        #expect(Uninjector.uninject(configMap) == (configMap, false))
        let plain = makePod()
        #expect(Uninjector.uninject(plain) == (plain, false))
        #expect(Uninjector.uninject("not an object") == ("not an object", false))
    }

    @Test("a Namespace loses linkerd.io/inject: enabled")
    func namespace() {
        let namespace: JSONValue = [
            "kind": "Namespace", "metadata": ["name": "n", "annotations": ["linkerd.io/inject": "enabled", "a": "b"]],
        ]
        let (result, changed) = Uninjector.uninject(namespace)
        #expect(changed)
        #expect(result["metadata"]?["annotations"] == ["a": "b"])
    }
}
