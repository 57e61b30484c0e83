import Foundation
import KubeModel
import LinkerdInject
import Testing

/// A fixed stand-in for the trust anchors: its text is all the injector uses (inline env and SHA-256).
let testTrustAnchors = """
    -----BEGIN CERTIFICATE-----
    MIIBjTCCATOgAwIBAgIQbXRlc3QtdHJ1c3QtYW5jaG9yMAoGCCqGSM49BAMCMCUx
    IzAhBgNVBAMTGnJvb3QubGlua2VyZC5jbHVzdGVyLmxvY2FsMB4XDTI2MDEwMTAw
    -----END CERTIFICATE-----

    """

/// The default mesh configuration with the test trust anchors.
let testConfiguration: MeshConfiguration = {
    var configuration = MeshConfiguration.defaults
    configuration.trustAnchorsPEM = testTrustAnchors
    return configuration
}()

func json(_ text: String) throws -> JSONValue {
    try JSONValue(json: Data(text.utf8))
}

/// The JSON text of `value`, pretty-printed with sorted keys: the golden file form.
func prettyJSON(_ value: some Encodable) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    return String(decoding: try encoder.encode(value), as: UTF8.self) + "\n"
}

/// A pod with the given annotations and containers (one `web` container with port 8080 and the usual service
/// account mount by default).
func makePod(
    annotations: [String: String]? = nil,
    labels: [String: String]? = ["app": "web"],
    containers: [JSONValue]? = nil,
    initContainers: [JSONValue]? = nil,
    spec extra: [String: JSONValue] = [:]
) -> JSONValue {
    var metadata: [String: JSONValue] = ["name": "web-1", "namespace": "shop"]
    if let annotations {
        metadata["annotations"] = .object(annotations.mapValues(JSONValue.string))
    }
    if let labels {
        metadata["labels"] = .object(labels.mapValues(JSONValue.string))
    }
    var spec: [String: JSONValue] = [
        "containers": .array(
            containers ?? [
                [
                    "name": "web", "image": "ghcr.io/example/web:1",
                    "ports": [["containerPort": 8080, "name": "http"]],
                    "volumeMounts": [
                        [
                            "name": "kube-api-access-abcde",
                            "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                            "readOnly": true,
                        ]
                    ],
                ]
            ]),
        "serviceAccountName": "web",
        "volumes": [["name": "kube-api-access-abcde", "projected": ["sources": []]]],
    ]
    if let initContainers {
        spec["initContainers"] = .array(initContainers)
    }
    spec.merge(extra) { _, new in new }
    return ["apiVersion": "v1", "kind": "Pod", "metadata": .object(metadata), "spec": .object(spec)]
}

/// A webhook request for `pod` in namespace `shop`.
func podRequest(
    _ pod: JSONValue, namespaceAnnotations: [String: String] = [:], owner: WorkloadOwner? = nil,
    origin: InjectionOrigin = .webhook
) -> InjectionRequest {
    InjectionRequest(
        object: pod, kind: "Pod", namespace: "shop", namespaceAnnotations: namespaceAnnotations, owner: owner,
        origin: origin)
}

/// Injects `request` with `configuration` and applies the patch; records an issue if there is none.
func injectAndApply(
    _ request: InjectionRequest, configuration: MeshConfiguration = testConfiguration,
    sourceLocation: SourceLocation = #_sourceLocation
) throws -> (result: InjectionResult, patched: JSONValue) {
    let result = ProxyInjector(configuration: configuration).inject(request)
    let patch = try #require(result.patch, "no patch for \(result.report.skipReasons)", sourceLocation: sourceLocation)
    return (result, try patch.apply(to: request.object))
}

/// Reads a patched pod (or the pod template of a workload at `tokens`).
struct PodFacts {
    let pod: JSONValue

    init(_ object: JSONValue, tokens: [String] = []) {
        var current = object
        for token in tokens {
            current = current[token] ?? .null
        }
        pod = current
    }

    var containers: [JSONValue] { pod["spec"]?["containers"]?.arrayValue ?? [] }
    var initContainers: [JSONValue] { pod["spec"]?["initContainers"]?.arrayValue ?? [] }
    var volumes: [JSONValue] { pod["spec"]?["volumes"]?.arrayValue ?? [] }
    var containerNames: [String] { containers.compactMap { $0["name"]?.stringValue } }
    var initContainerNames: [String] { initContainers.compactMap { $0["name"]?.stringValue } }
    var volumeNames: [String] { volumes.compactMap { $0["name"]?.stringValue } }
    var annotations: [String: String] {
        pod["metadata"]?["annotations"]?.objectValue?.compactMapValues(\.stringValue) ?? [:]
    }
    var labels: [String: String] { pod["metadata"]?["labels"]?.objectValue?.compactMapValues(\.stringValue) ?? [:] }

    /// The container (or init container) named `name`.
    func container(_ name: String) -> JSONValue? {
        (containers + initContainers).first { $0["name"]?.stringValue == name }
    }

    var proxy: JSONValue? { container("linkerd-proxy") }

    /// The proxy's env entries.
    var proxyEnv: [JSONValue] { proxy?["env"]?.arrayValue ?? [] }

    /// The proxy's env var names, in order.
    var proxyEnvNames: [String] { proxyEnv.compactMap { $0["name"]?.stringValue } }

    /// The literal value of the proxy's env var `name` (the last one when repeated, as Kubernetes uses it).
    func env(_ name: String) -> String? {
        proxyEnv.last { $0["name"]?.stringValue == name }?["value"]?.stringValue
    }

    /// The args of `linkerd-init`.
    var initArgs: [String] { container("linkerd-init")?["args"]?.arrayValue?.compactMap(\.stringValue) ?? [] }

    /// The value after `flag` in `linkerd-init`'s args.
    func initArg(_ flag: String) -> String? {
        guard let index = initArgs.firstIndex(of: flag), index + 1 < initArgs.count else { return nil }
        return initArgs[index + 1]
    }
}
