import Foundation
import KubeClient
import KubeModel
import KubeTestServer
import Testing

/// Runs `body` with a client for `configuration`, shutting the client down afterwards.
func withClient(
    _ configuration: KubeClientConfiguration, _ body: (KubeClient) async throws -> Void
) async throws {
    let client = try KubeClient(configuration: configuration)
    do {
        try await body(client)
    } catch {
        try? await client.shutdown()
        throw error
    }
    try await client.shutdown()
}

/// Expects `body` to throw a `KubeError` with `code`, and returns it.
@discardableResult
func expectKubeError(
    _ code: KubeError.Code, sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> Void
) async -> KubeError? {
    do {
        try await body()
        Issue.record("expected KubeError \(code), but nothing was thrown", sourceLocation: sourceLocation)
        return nil
    } catch let error as KubeError {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected KubeError \(code), got \(type(of: error)): \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// Waits until `condition` holds, checking every 20 ms, and records an issue if it does not within `timeout`.
func waitUntil(
    timeout: Duration = .seconds(10), sourceLocation: SourceLocation = #_sourceLocation,
    _ condition: () -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while !condition() {
        guard ContinuousClock.now < deadline else {
            Issue.record("condition not met within \(timeout)", sourceLocation: sourceLocation)
            return
        }
        try await Task.sleep(for: .milliseconds(20))
    }
}

/// A ConfigMap named `name` in `namespace` with `data`.
func configMap(
    _ name: String, namespace: String = "default", data: [String: String] = [:], labels: [String: String]? = nil
)
    -> ConfigMap
{
    ConfigMap(metadata: ObjectMeta(name: name, namespace: namespace, labels: labels), data: data)
}

/// `ADDED a`, `MODIFIED a`, `DELETED a` or `BOOKMARK`, for comparing event sequences.
func summary(_ event: WatchEvent<ConfigMap>) -> String {
    switch event {
    case .added(let object): "ADDED \(object.metadata.name ?? "")"
    case .modified(let object): "MODIFIED \(object.metadata.name ?? "")"
    case .deleted(let object): "DELETED \(object.metadata.name ?? "")"
    case .bookmark: "BOOKMARK"
    }
}

/// The next `count` events of a ConfigMap watch other than bookmarks, summarized.
func nextEvents(
    _ count: Int, from iterator: inout AsyncThrowingStream<WatchEvent<ConfigMap>, any Error>.Iterator,
    sourceLocation: SourceLocation = #_sourceLocation
) async throws -> [String] {
    var result: [String] = []
    while result.count < count {
        guard let event = try await iterator.next() else {
            Issue.record("the watch ended after \(result)", sourceLocation: sourceLocation)
            return result
        }
        if case .bookmark = event { continue }
        result.append(summary(event))
    }
    return result
}
