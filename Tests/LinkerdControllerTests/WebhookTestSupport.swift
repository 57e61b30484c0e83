import Foundation
import KubeModel
import LinkerdController
import LinkerdInject
import LinkerdTestSupport
import Logging
import Prometheus
import Testing

/// A `KubeAPI` that answers GETs from fixed objects (404 for others, or `getFailure` for all) and records them;
/// any other call is a test failure, so a handler that writes to the API where it must not is caught.
final class StubKubeAPI: KubeAPI {
    private let objects: [String: JSONValue]
    private let getFailure: KubeError?
    private let hangingResources: Set<String>
    let gets = Locked<[String]>([])
    /// GETs that hung until they were cancelled.
    let cancelledGets = Locked(0)

    /// - Parameters:
    ///   - objects: keyed `plural/namespace/name`.
    ///   - hangingResources: plurals whose GETs never answer: they wait until cancelled, then throw
    ///     `CancellationError`, as a request to an unresponsive API server.
    init(objects: [String: JSONValue] = [:], getFailure: KubeError? = nil, hangingResources: Set<String> = []) {
        self.objects = objects
        self.getFailure = getFailure
        self.hangingResources = hangingResources
    }

    func get<T: Decodable & Sendable>(
        _ resource: ResourceType, namespace: String?, name: String, subresource: String?, as type: T.Type
    ) async throws -> T {
        let key = "\(resource.plural)/\(namespace ?? "")/\(name)"
        gets.withLock { $0.append(key) }
        if hangingResources.contains(resource.plural) {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(3600))
            }
            cancelledGets.withLock { $0 += 1 }
            throw CancellationError()
        }
        if let getFailure { throw getFailure }
        guard let object = objects[key] else { throw KubeError(code: .notFound, message: "\(key) not found") }
        return try object.decode(as: T.self)
    }

    func list<T: Codable & Sendable>(
        _ resource: ResourceType, namespace: String?, options: ListOptions, as type: T.Type
    ) async throws -> ObjectList<T> {
        throw unexpected("list \(resource)")
    }

    func create<T: Codable & Sendable>(
        _ resource: ResourceType, namespace: String?, object: T, subresource: String?
    ) async throws -> T {
        throw unexpected("create \(resource)")
    }

    func update<T: Codable & Sendable>(
        _ resource: ResourceType, namespace: String?, name: String, object: T, subresource: String?
    ) async throws -> T {
        throw unexpected("update \(resource)")
    }

    func patch<T: Decodable & Sendable>(
        _ resource: ResourceType, namespace: String?, name: String, patch: Patch, subresource: String?,
        as type: T.Type
    ) async throws -> T {
        throw unexpected("patch \(resource)")
    }

    func delete(_ resource: ResourceType, namespace: String?, name: String) async throws {
        throw unexpected("delete \(resource)")
    }

    func watch<T: Decodable & Sendable>(
        _ resource: ResourceType, namespace: String?, options: WatchOptions, as type: T.Type
    ) async throws -> AsyncThrowingStream<WatchEvent<T>, any Error> {
        throw unexpected("watch \(resource)")
    }

    private func unexpected(_ call: String) -> KubeError {
        Issue.record("unexpected API call: \(call)")
        return KubeError(code: .configuration, message: "StubKubeAPI does not serve \(call)")
    }
}

/// Builders of the objects and AdmissionReviews the webhook tests send.
enum Fixtures {
    /// A Pod with one container per entry of `containerPorts` (each container listing those ports).
    static func pod(
        name: String? = "web-7d9f-abcde", generateName: String? = nil, namespace: String? = nil,
        annotations: [String: String] = [:], ownerReferences: [JSONValue]? = nil, containerPorts: [[Int]] = [[8080]]
    ) -> JSONValue {
        var metadata: [String: JSONValue] = [:]
        if let name { metadata["name"] = .string(name) }
        if let generateName { metadata["generateName"] = .string(generateName) }
        if let namespace { metadata["namespace"] = .string(namespace) }
        if !annotations.isEmpty { metadata["annotations"] = .object(annotations.mapValues { .string($0) }) }
        if let ownerReferences { metadata["ownerReferences"] = .array(ownerReferences) }
        let containers: [JSONValue] = containerPorts.enumerated().map { index, ports in
            [
                "name": .string(index == 0 ? "app" : "app-\(index)"),
                "image": "registry.example/app:1",
                "ports": .array(ports.map { ["containerPort": .integer(Int64($0))] }),
            ]
        }
        return [
            "apiVersion": "v1", "kind": "Pod", "metadata": .object(metadata),
            "spec": ["containers": .array(containers)],
        ]
    }

    static func ownerReference(kind: String, name: String, uid: String, apiVersion: String = "apps/v1") -> JSONValue {
        [
            "apiVersion": .string(apiVersion), "kind": .string(kind), "name": .string(name), "uid": .string(uid),
            "controller": true,
        ]
    }

    /// A Service with the given ports (no `targetPort`).
    static func service(name: String = "db", ports: [Int]) -> JSONValue {
        [
            "apiVersion": "v1", "kind": "Service", "metadata": ["name": .string(name)],
            "spec": ["ports": .array(ports.map { ["port": .integer(Int64($0))] })],
        ]
    }

    /// The JSON of an AdmissionReview for a CREATE.
    static func review(
        apiVersion: String = AdmissionReview.v1, uid: String = "7e5f9a7c-0001", kind: String = "Pod",
        resource: String = "pods", namespace: String = "apps", object: JSONValue, dryRun: Bool? = nil,
        operation: String = "CREATE"
    ) throws -> Data {
        let request = AdmissionReview.Request(
            uid: uid, kind: .init(group: "", version: "v1", kind: kind),
            resource: .init(group: "", version: "v1", resource: resource), namespace: namespace,
            operation: operation, object: object, dryRun: dryRun)
        return try JSONEncoder().encode(AdmissionReview(apiVersion: apiVersion, request: request))
    }

    /// A mesh configuration with throw-away trust anchors.
    static let configuration: MeshConfiguration = {
        var configuration = MeshConfiguration.defaults
        configuration.trustAnchorsPEM = trustAnchorsPEM
        return configuration
    }()

    static let trustAnchorsPEM: String = {
        do {
            return try TestCertificateAuthority(commonName: "identity.linkerd.cluster.local").certificatePEM
        } catch {
            Issue.record("cannot mint trust anchors: \(error)")
            return ""
        }
    }()
}

/// An `AdmissionHandler` with a Prometheus registry and its log to inspect.
struct HandlerUnderTest {
    let handler: AdmissionHandler
    let registry: PrometheusCollectorRegistry
    let api: StubKubeAPI
    /// Times the handler's lookups.
    let clock: ManualClock
    let log = CapturedLog()

    init(
        namespaces: [String: [String: String]] = ["apps": [MeshKeys.inject: MeshKeys.injectEnabled]],
        api: StubKubeAPI = StubKubeAPI(),
        namespaceLookup: NamespaceAnnotationLookup? = nil,
        configuration: @escaping @Sendable () throws -> MeshConfiguration = { Fixtures.configuration },
        clock: ManualClock = ManualClock()
    ) {
        let registry = PrometheusCollectorRegistry()
        self.registry = registry
        self.api = api
        self.clock = clock
        let log = log
        let logger = Logger(label: "test.webhook") { _ in CapturingLogHandler(log: log) }
        handler = AdmissionHandler(
            configuration: configuration,
            namespaces: namespaceLookup ?? NamespaceAnnotationLookup(annotations: namespaces),
            owners: OwnerResolver(api: api),
            events: EventRecorder(api: api, component: "linkerd-proxy-injector", clock: ManualClock(), logger: logger),
            metricsFactory: PrometheusMetricsFactory(registry: registry),
            logger: logger, clock: clock)
    }

    /// The exposition lines of the metric `name` (its samples, without `# TYPE`).
    func samples(_ name: String) -> [String] {
        registry.emitToString().split(separator: "\n").map(String.init).filter {
            $0.hasPrefix(name + "{") || $0.hasPrefix(name + " ")
        }
    }
}

/// A decoded 200 answer.
struct Answer {
    let review: AdmissionReview
    var response: AdmissionReview.Response? { review.response }

    init(_ outcome: AdmissionOutcome) throws {
        #expect(outcome.statusCode == 200)
        review = try JSONDecoder().decode(AdmissionReview.self, from: outcome.body)
    }

    /// The decoded patch, nil when there is none.
    func patch() throws -> JSONPatch? {
        guard let encoded = response?.patch else { return nil }
        let bytes = try #require(Data(base64Encoded: encoded))
        return try JSONDecoder().decode(JSONPatch.self, from: bytes)
    }
}

extension JSONValue {
    /// The names of the pod's containers and init containers.
    var containerNames: Set<String> {
        let spec = self["spec"]
        let all = (spec?["containers"]?.arrayValue ?? []) + (spec?["initContainers"]?.arrayValue ?? [])
        return Set(all.compactMap { $0["name"]?.stringValue })
    }
}

/// The messages logged through `CapturingLogHandler`s.
final class CapturedLog: Sendable {
    struct Record: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: [String: String]
    }

    private let storage = Locked<[Record]>([])

    var records: [Record] { storage.value }

    func append(_ record: Record) {
        storage.withLock { $0.append(record) }
    }
}

/// A `LogHandler` that keeps every message in a `CapturedLog`.
struct CapturingLogHandler: LogHandler {
    let log: CapturedLog
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { _, new in new }
        log.append(
            CapturedLog.Record(
                level: event.level, message: "\(event.message)", metadata: merged.mapValues { "\($0)" }))
    }
}
