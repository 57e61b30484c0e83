import Foundation
import KubeModel
import LinkerdInject
import Testing

@Suite("Hostile input")
struct HostileInputTests {
    let injector = ProxyInjector(configuration: testConfiguration)

    @Test("hundreds of containers are injected once")
    func manyContainers() throws {
        let containers: [JSONValue] = (0..<500).map { index in
            ["name": .string("c\(index)"), "image": "i", "ports": [["containerPort": .integer(Int64(1000 + index))]]]
        }
        let pod = makePod(annotations: [MeshKeys.inject: "enabled"], containers: containers)
        let (_, patched) = try injectAndApply(podRequest(pod))
        let facts = PodFacts(patched)
        #expect(facts.containers.count == 500)
        #expect(facts.initContainerNames == ["linkerd-init", "linkerd-proxy"])
        #expect(facts.env("LINKERD2_PROXY_INBOUND_PORTS")?.split(separator: ",").count == 500)
        #expect(injector.report(podRequest(patched)).skipReasons.contains(.sidecarAlreadyExists), "never twice")
    }

    @Test(
        "malformed pods are unsupported, never a crash",
        arguments: [
            #"{"kind":"Pod","metadata":{"name":"x"}}"#,
            #"{"kind":"Pod","spec":null}"#,
            #"{"kind":"Pod","spec":"text"}"#,
            #"{"kind":"Pod","spec":{}}"#,
            #"{"kind":"Pod","spec":{"containers":{"name":"a"}}}"#,
            #"{"kind":"Pod","spec":{"containers":[],"initContainers":"x"}}"#,
            #"{"kind":"Pod","spec":{"containers":[],"volumes":{}}}"#,
            #"{"kind":"Pod","metadata":[],"spec":{"containers":[]}}"#,
            #"{"kind":"Pod","metadata":{"annotations":"x"},"spec":{"containers":[]}}"#,
            #"{"kind":"Pod","metadata":{"labels":[1]},"spec":{"containers":[]}}"#,
            #"{"kind":"Deployment","spec":{"template":"x"}}"#,
            #"{"kind":"CronJob","spec":{"jobTemplate":{"spec":null}}}"#,
            #"[1,2,3]"#,
            #"null"#,
        ])
    func malformed(_ text: String) throws {
        let object = try json(text)
        let kind = object["kind"]?.stringValue ?? "Pod"
        for origin in [InjectionOrigin.webhook, .cli] {
            let result = injector.inject(
                InjectionRequest(
                    object: object, kind: kind, namespace: "n",
                    namespaceAnnotations: [MeshKeys.inject: "enabled"], origin: origin))
            #expect(result.report.skipReasons == [.unsupportedResource])
            #expect(result.patch == nil)
        }
        #expect(Uninjector.uninject(object).changed == false)
    }

    @Test("odd but valid shapes are injected: no containers, non-object entries, non-string annotations")
    func oddShapes() throws {
        let object = try json(
            #"""
            {"apiVersion":"v1","kind":"Pod","metadata":{"name":"x","annotations":{"linkerd.io/inject":"enabled","n":5}},
             "spec":{"containers":[7,{"name":"a","image":"a","ports":[{"containerPort":"80"},{"containerPort":99999},
             {"containerPort":-1},"x",{"containerPort":8080}],"volumeMounts":"nope","securityContext":{"capabilities":"x"}}],
             "initContainers":null,"volumes":null}}
            """#)
        let (result, patched) = try injectAndApply(podRequest(object))
        #expect(result.report.injectable)
        #expect(PodFacts(patched).env("LINKERD2_PROXY_INBOUND_PORTS") == "8080")
        #expect(PodFacts(patched).initContainerNames == ["linkerd-init", "linkerd-proxy"])
    }

    @Test("huge annotation values and namespace annotations do not break the patch")
    func hugeValues() throws {
        let huge = String(repeating: "é", count: 300_000)
        let pod = makePod(annotations: [MeshKeys.inject: "enabled", "example.com/blob": huge])
        let (result, patched) = try injectAndApply(
            podRequest(pod, namespaceAnnotations: [MeshKeys.proxyLogLevel: huge, MeshKeys.opaquePorts: huge]))
        #expect(PodFacts(patched).annotations["example.com/blob"] == huge)
        #expect(PodFacts(patched).env("LINKERD2_PROXY_LOG")?.hasPrefix(huge) == true)
        #expect(result.report.warnings.map(\.key) == [MeshKeys.opaquePorts])
        #expect(result.report.warnings.allSatisfy { $0.description.count < 1000 })
    }

    @Test("an opaque-ports value with thousands of unknown names gives one short warning")
    func manyUnknownNames() throws {
        let names = (0..<10_000).map { "name\($0)" }.joined(separator: ",")
        let (result, patched) = try injectAndApply(
            podRequest(makePod(annotations: [MeshKeys.inject: "enabled", MeshKeys.opaquePorts: names + ",http"])))
        #expect(result.report.warnings.count == 1)
        #expect(result.report.warnings.first?.reason.contains("and 9995 more") == true)
        #expect(result.report.warnings.allSatisfy { $0.description.count < 1000 })
        #expect(PodFacts(patched).env("LINKERD2_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION") == "8080")
    }

    @Test("garbage mesh values documents throw errors, never crash")
    func garbageValues() {
        // Each level of this document names the previous one ten times: 10^7 values once expanded.
        var aliases = "l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n"
        for level in 1...7 {
            let previous = Array(repeating: "*l\(level - 1)", count: 10).joined(separator: ", ")
            aliases += "l\(level): &l\(level) [\(previous)]\n"
        }
        for text in ["{", "- [", ": :", "proxy: {ports: {admin: [1]}}", String(repeating: "[", count: 200), aliases] {
            #expect(throws: MeshConfigurationError.self) {
                _ = try MeshConfiguration(valuesYAML: text, trustAnchorsPEM: "")
            }
        }
    }
}
