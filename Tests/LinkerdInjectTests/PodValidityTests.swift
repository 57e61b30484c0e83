import Foundation
import KubeModel
import LinkerdCore
import LinkerdInject
import Testing

/// Injection must never make a pod that Kubernetes rejects, whatever the names and annotations it is given.
@Suite("Pod validity")
struct PodValidityTests {
    let injector = ProxyInjector(configuration: testConfiguration)

    func deployment(named name: String) -> JSONValue {
        [
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": ["name": .string(name)],
            "spec": ["template": ["spec": ["containers": [["name": "web", "image": "i"]]]]],
        ]
    }

    @Test("the owner label is added only when the owner's name is a valid label value")
    func ownerLabel() throws {
        let longName = String(repeating: "a", count: 64)
        for (name, labelled) in [("web", true), (String(repeating: "a", count: 63), true), (longName, false)] {
            let request = InjectionRequest(
                object: deployment(named: name), kind: "Deployment", namespace: "shop", origin: .cli)
            let (_, patched) = try injectAndApply(request)
            let labels = PodFacts(patched, tokens: ["spec", "template"]).labels
            #expect((labels["linkerd.io/proxy-deployment"] == name) == labelled, "\(name.count) characters")
            #expect(labels["linkerd.io/workload-ns"] == "shop")
        }
        let pod = makePod(annotations: [MeshKeys.inject: "enabled"])
        let (_, patched) = try injectAndApply(
            podRequest(pod, owner: WorkloadOwner(kind: "deployment", name: "web-" + longName)))
        #expect(PodFacts(patched).labels["linkerd.io/proxy-deployment"] == nil)
        let (_, odd) = try injectAndApply(
            podRequest(pod, owner: WorkloadOwner(kind: "statefulset", name: "db.")))
        #expect(PodFacts(odd).labels["linkerd.io/proxy-statefulset"] == nil, "must end alphanumeric")
    }

    func warnings(_ annotations: [String: String]) -> [AnnotationWarning] {
        injector.report(
            podRequest(makePod(annotations: annotations.merging([MeshKeys.inject: "enabled"]) { a, _ in a }))
        )
        .warnings
    }

    @Test("negative quantities and requests above their limits are ignored with a warning")
    func resources() throws {
        #expect(warnings([MeshKeys.proxyCPURequest: "-100m"]).map(\.key) == [MeshKeys.proxyCPURequest])
        #expect(warnings([MeshKeys.proxyMemoryLimit: "-1Gi"]).map(\.key) == [MeshKeys.proxyMemoryLimit])
        let pod = makePod(annotations: [
            MeshKeys.inject: "enabled", MeshKeys.proxyCPURequest: "2", MeshKeys.proxyCPULimit: "1",
            MeshKeys.proxyMemoryRequest: "64Mi", MeshKeys.proxyMemoryLimit: "128Mi",
        ])
        let (result, patched) = try injectAndApply(podRequest(pod))
        #expect(result.report.warnings.map(\.key) == [MeshKeys.proxyCPURequest])
        let resources = try #require(PodFacts(patched).proxy?["resources"])
        #expect(resources["requests"]?["cpu"] == nil)
        #expect(resources["limits"]?["cpu"] == "1")
        #expect(resources["requests"]?["memory"] == "64Mi")

        // Against the values: a limit annotation below the configured request is the one ignored.
        var configuration = testConfiguration
        configuration.proxy.resources.memory.request = try Quantity(parsing: "1Gi")
        let limited = makePod(annotations: [MeshKeys.inject: "enabled", MeshKeys.proxyMemoryLimit: "512Mi"])
        let (limitedResult, limitedPod) = try injectAndApply(podRequest(limited), configuration: configuration)
        #expect(limitedResult.report.warnings.map(\.key) == [MeshKeys.proxyMemoryLimit])
        #expect(PodFacts(limitedPod).proxy?["resources"]?["limits"]?["memory"] == nil)
        #expect(PodFacts(limitedPod).proxy?["resources"]?["requests"]?["memory"] == "1Gi")
    }

    @Test(
        "environment variables Kubernetes would refuse ignore the whole annotation",
        arguments: [
            #"[{"name":"A","value":1}]"#,
            #"[{"name":"A=B","value":"1"}]"#,
            #"[{"name":"","value":"1"}]"#,
            #"[{"name":"A B","value":"1"}]"#,
            #"[{"name":"A","value":"1","valueFrom":{"fieldRef":{"fieldPath":"metadata.name"}}}]"#,
            #"[{"name":"A","valueFrom":"x"}]"#,
        ])
    func environment(_ value: String) throws {
        let pod = makePod(annotations: [MeshKeys.inject: "enabled", MeshKeys.additionalEnv: value])
        let (result, patched) = try injectAndApply(podRequest(pod))
        #expect(result.report.warnings.map(\.key) == [MeshKeys.additionalEnv])
        #expect(!PodFacts(patched).proxyEnvNames.contains("A"))
    }

    @Test("valid environment variables are kept")
    func validEnvironment() throws {
        let value =
            #"[{"name":"A.b-1","value":"1"},{"name":"N","valueFrom":{"fieldRef":{"fieldPath":"metadata.name"}}}]"#
        let (result, patched) = try injectAndApply(
            podRequest(makePod(annotations: [MeshKeys.inject: "enabled", MeshKeys.additionalEnv: value])))
        #expect(result.report.warnings.isEmpty)
        #expect(PodFacts(patched).proxyEnvNames.contains("A.b-1"))
        #expect(PodFacts(patched).proxyEnvNames.contains("N"))
    }

    @Test("a hostile opaque-ports value, many ports then many repeated names, is read in linear time")
    func manyOpaquePortNames() throws {
        let ports = (1...60_000).map(String.init)
        let value = (ports + Array(repeating: "http", count: 100_000)).joined(separator: ",")
        let pod = makePod(annotations: [MeshKeys.inject: "enabled", MeshKeys.opaquePorts: value])
        let start = ContinuousClock.now
        let (_, patched) = try injectAndApply(podRequest(pod))
        #expect(ContinuousClock.now - start < .seconds(20))
        let env = PodFacts(patched).env("LINKERD2_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION")
        #expect(env == ports.joined(separator: ","), "8080 (http) once, as written among the ports")
    }

    @Test("control-plane components are injected by the CLI (linkerd inject --manual)")
    func controlPlaneManual() throws {
        var object = deployment(named: "linkerd-destination")
        object["metadata"]?["labels"] = ["linkerd.io/control-plane-component": "destination"]
        #expect(ProxyInjector.isControlPlaneComponent(object, kind: "Deployment"))
        let (result, patched) = try injectAndApply(
            InjectionRequest(object: object, kind: "Deployment", namespace: "linkerd", origin: .cli))
        #expect(result.report.injectable)
        #expect(PodFacts(patched, tokens: ["spec", "template"]).proxy != nil)
        #expect(ProxyInjector.annotateForInjection(object, kind: "Deployment") == nil)
    }

    @Test("the shared annotation check: the webhook's rules, port names checked for their form")
    func validate() {
        #expect(ProxyAnnotations.validate([MeshKeys.opaquePorts: "3306,mysql,1000-2000"]).isEmpty)
        #expect(ProxyAnnotations.validate([MeshKeys.opaquePorts: "My_Port"]).map(\.key) == [MeshKeys.opaquePorts])
        #expect(ProxyAnnotations.validate([MeshKeys.proxyCPURequest: "-1"]).map(\.key) == [MeshKeys.proxyCPURequest])
        #expect(
            ProxyAnnotations.validate([MeshKeys.proxyCPURequest: "2", MeshKeys.proxyCPULimit: "1"]).map(\.key)
                == [MeshKeys.proxyCPURequest])
        #expect(ProxyAnnotations.validate([MeshKeys.proxyUID: "-5"]).map(\.key) == [MeshKeys.proxyUID])
    }

    @Test("uninject removes the opaque-ports annotation injection computed, and only that value")
    func uninjectOpaquePorts() throws {
        let containers: [JSONValue] = [["name": "db", "image": "postgres", "ports": [["containerPort": 5432]]]]
        let pod = makePod(annotations: [MeshKeys.inject: "enabled"], containers: containers)
        let (_, patched) = try injectAndApply(podRequest(pod))
        #expect(PodFacts(patched).annotations[MeshKeys.opaquePorts] == "5432")
        let (restored, changed) = Uninjector.uninject(patched)
        #expect(changed)
        #expect(restored == makePod(containers: containers), "linkerd.io/inject: enabled goes too")

        let userSet = makePod(
            annotations: [MeshKeys.inject: "enabled", MeshKeys.opaquePorts: "5432,9000"], containers: containers)
        let (_, userPatched) = try injectAndApply(podRequest(userSet))
        #expect(PodFacts(Uninjector.uninject(userPatched).object).annotations == [MeshKeys.opaquePorts: "5432,9000"])

        let service: JSONValue = [
            "apiVersion": "v1", "kind": "Service", "metadata": ["name": "db"],
            "spec": ["ports": [["port": 5432], ["port": 80, "targetPort": 8080]]],
        ]
        let annotatedService = try #require(
            injector.inject(InjectionRequest(object: service, kind: "Service", namespace: "shop")).patch
        ).apply(to: service)
        #expect(annotatedService["metadata"]?["annotations"]?[MeshKeys.opaquePorts] == "5432")
        #expect(Uninjector.uninject(annotatedService) == (service, true))
        var other = service
        other["metadata"]?["annotations"] = [MeshKeys.opaquePorts: "80"]
        #expect(Uninjector.uninject(other) == (other, false))
    }
}
