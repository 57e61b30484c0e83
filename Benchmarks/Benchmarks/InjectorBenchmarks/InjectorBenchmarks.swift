import Benchmark
import Foundation
import KubeClient
import KubeModel
import LinkerdController
import LinkerdCore
import LinkerdInject
import Logging
import Metrics

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

    // The pure decision and patch, without JSON decoding or encoding of the review.
    Benchmark("ProxyInjector.inject: typical pod") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(injector.inject(request))
        }
    }

    // One webhook review as the server runs it, without the network: parse the AdmissionReview bytes, decide,
    // patch, and write the response bytes. The pod has no owner and the namespace's annotations are known, so the
    // API client is never called (it points nowhere).
    Benchmark("AdmissionHandler.review: typical pod") { benchmark in
        guard let api = try? KubeClient(configuration: KubeClientConfiguration(server: "https://127.0.0.1:1")) else {
            return
        }
        let logger = Logger(label: "bench")
        let handler = AdmissionHandler(
            configuration: { MeshConfiguration.defaults },
            namespaces: NamespaceAnnotationLookup(annotations: ["emojivoto": ["linkerd.io/inject": "enabled"]]),
            owners: OwnerResolver(api: api),
            events: EventRecorder(api: api, component: "bench", clock: SystemWallClock(), logger: logger),
            metricsFactory: NOOPMetricsHandler.instance, logger: logger)
        let kind = AdmissionReview.GroupVersionKind(group: "", version: "v1", kind: "Pod")
        let resource = AdmissionReview.GroupVersionResource(group: "", version: "v1", resource: "pods")
        let review = AdmissionReview(
            request: .init(
                uid: "5b6c1f3e", kind: kind, resource: resource, namespace: "emojivoto", operation: "CREATE",
                object: typicalPod))
        let body = (try? JSONEncoder().encode(review)) ?? Data()
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(await handler.review(body))
        }
        benchmark.stopMeasurement()
        try? await api.shutdown()
    }
}
