import Benchmark
import Foundation
import KubeClient
import KubeModel
import LinkerdController
import LinkerdCore
import LinkerdInject

/// A typical application pod: two containers with ports, probes, an environment, a service-account mount, and
/// labels as a Deployment's ReplicaSet sets them.
let typicalPod: JSONValue = {
    let text = """
        {"apiVersion":"v1","kind":"Pod","metadata":{"generateName":"web-5d8f7-","namespace":"emojivoto",
        "labels":{"app":"web","pod-template-hash":"5d8f7"},"ownerReferences":[{"apiVersion":"apps/v1",
        "kind":"ReplicaSet","name":"web-5d8f7","uid":"3c1c6f0e","controller":true}]},
        "spec":{"serviceAccountName":"web","containers":[{"name":"web","image":"buoyantio/emojivoto-web:v11",
        "env":[{"name":"WEB_PORT","value":"8080"},{"name":"EMOJISVC_HOST","value":"emoji-svc.emojivoto:8080"}],
        "ports":[{"name":"http","containerPort":8080}],"readinessProbe":{"httpGet":{"path":"/ready","port":8080}},
        "livenessProbe":{"httpGet":{"path":"/live","port":8080}},"volumeMounts":[{"name":"kube-api-access",
        "mountPath":"/var/run/secrets/kubernetes.io/serviceaccount","readOnly":true}]},
        {"name":"metrics","image":"prom/statsd-exporter:v0.26","ports":[{"containerPort":9102}]}],
        "volumes":[{"name":"kube-api-access","projected":{"sources":[{"serviceAccountToken":{"path":"token"}}]}}]}}
        """
    return (try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))) ?? .null
}()

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal], warmupIterations: 10, maxDuration: .seconds(10),
        maxIterations: 10_000)

    let injector = ProxyInjector(configuration: MeshConfiguration.defaults)
    let request = InjectionRequest(
        object: typicalPod, kind: "Pod", namespace: "emojivoto", namespaceAnnotations: ["linkerd.io/inject": "enabled"],
        owner: WorkloadOwner(kind: "deployment", name: "web"))

    // The pure decision and patch, without JSON decoding or encoding of the review. The webhook as a whole (TLS,
    // HTTP, review parsing and writing) is measured under load by `make bench-webhook`.
    Benchmark("ProxyInjector.inject: typical pod") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(injector.inject(request))
        }
    }
}
