import Benchmark
import KubeClient
import KubeModel
@_spi(Testing) import KubeRuntime
import KubeTestServer

/// The pod count and update burst the foundation issue asks the reflector to handle.
private let podCount = 10_000
private let updateCount = 1_000

private func makePod(_ index: Int, generation: Int = 0) -> Pod {
    var pod = Pod(
        metadata: ObjectMeta(
            name: "pod-\(index)", namespace: "ns-\(index % 20)",
            labels: ["app": "app-\(index % 50)", "pod-template-hash": "5f4b8c9d7"],
            annotations: ["linkerd.io/inject": "enabled", "generation": "\(generation)"]),
        spec: PodSpec(containers: [
            Container(
                name: "app", image: "registry.example/app:1.\(index % 7)", args: ["--port", "8080"],
                env: [EnvVar(name: "POD_NAME", value: "pod-\(index)")], ports: [ContainerPort(containerPort: 8080)])
        ]),
        status: PodStatus(phase: "Running", podIP: "10.1.\(index / 250).\(index % 250)"))
    pod.metadata.uid = "uid-\(index)"
    pod.metadata.resourceVersion = "\(index * 10 + generation)"
    return pod
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .peakMemoryResident, .mallocCountTotal], warmupIterations: 1, maxDuration: .seconds(60),
        maxIterations: 5)

    // The store and index cost alone: what the reflector does with events, without the network.
    Benchmark("Reflector.absorb: list of 10,000 pods then 1,000 updates") { benchmark in
        let pods = (0..<podCount).map { makePod($0) }
        let updates = (0..<updateCount).map { makePod($0 * 7 % podCount, generation: 1) }
        benchmark.startMeasurement()
        let reflector = Reflector(watcher: Watcher<Pod>(api: UnusedAPI()))
        reflector.absorb(.listed(pods))
        for update in updates { reflector.absorb(.applied(update)) }
        blackHole(reflector.store.count)
    }

    // End to end: HTTPS list (pages of 500) and watch from the loopback API server, through the real client.
    Benchmark("Reflector over HTTPS: list 10,000 pods, then absorb 1,000 watched updates") { benchmark in
        let server = try await KubeTestServer.start()
        for namespace in 0..<20 { try server.put(Namespace(metadata: ObjectMeta(name: "ns-\(namespace)"))) }
        for index in 0..<podCount { try server.put(makePod(index)) }
        let client = try KubeClient(
            configuration: KubeClientConfiguration(
                server: server.baseURL, certificateAuthorityPEM: Array(server.caCertificatePEM.utf8)))
        let reflector = Reflector(watcher: Watcher<Pod>(api: client))
        benchmark.startMeasurement()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await reflector.run() }
            await reflector.store.waitUntilSynced()
            for index in 0..<updateCount {
                var pod = makePod(index * 7 % podCount, generation: 1)
                pod.metadata.resourceVersion = nil
                pod.metadata.labels?["revision"] = "\(index)"
                try server.put(pod)
            }
            let lastVersion = "\(server.currentResourceVersion)"
            let lastIndex = (updateCount - 1) * 7 % podCount
            let lastKey = ObjectKey(namespace: "ns-\(lastIndex % 20)", name: "pod-\(lastIndex)")
            let deadline = ContinuousClock.now + .seconds(60)
            while reflector.store.get(lastKey)?.metadata.resourceVersion != lastVersion {
                guard ContinuousClock.now < deadline else { throw WatchFellBehind() }
                try await Task.sleep(for: .milliseconds(1))
            }
            group.cancelAll()
        }
        benchmark.stopMeasurement()
        try await client.shutdown()
        try await server.shutdown()
    }
}

/// The watch did not deliver the last update within a minute.
private struct WatchFellBehind: Error {}

/// The in-memory benchmark never lets the watcher run, so no API is called.
private struct UnusedAPI: KubeAPI {
    private struct NotUsed: Error {}

    func get<T: Decodable & Sendable>(
        _ resource: ResourceType, namespace: String?, name: String, subresource: String?, as type: T.Type
    ) async throws -> T { throw NotUsed() }
    func list<T: Codable & Sendable>(
        _ resource: ResourceType, namespace: String?, options: ListOptions, as type: T.Type
    ) async throws -> ObjectList<T> { throw NotUsed() }
    func create<T: Codable & Sendable>(
        _ resource: ResourceType, namespace: String?, object: T, subresource: String?
    ) async throws -> T { throw NotUsed() }
    func update<T: Codable & Sendable>(
        _ resource: ResourceType, namespace: String?, name: String, object: T, subresource: String?
    ) async throws -> T { throw NotUsed() }
    func patch<T: Decodable & Sendable>(
        _ resource: ResourceType, namespace: String?, name: String, patch: Patch, subresource: String?, as type: T.Type
    ) async throws -> T { throw NotUsed() }
    func delete(_ resource: ResourceType, namespace: String?, name: String) async throws { throw NotUsed() }
    func watch<T: Decodable & Sendable>(
        _ resource: ResourceType, namespace: String?, options: WatchOptions, as type: T.Type
    ) async throws -> AsyncThrowingStream<WatchEvent<T>, any Error> { throw NotUsed() }
}
