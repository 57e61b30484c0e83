import Foundation
import KubeClient
import KubeModel
import KubeTestServer
import Testing

@Suite("watches against KubeTestServer", .timeLimit(.minutes(1)))
struct WatchIntegrationTests {
    /// Opens a watch, consumes it to its end and returns the error it (or opening it) threw, if any.
    func watchFailure(
        _ open: () async throws -> AsyncThrowingStream<WatchEvent<ConfigMap>, any Error>
    ) async -> (any Error)? {
        do {
            for try await _ in try await open() {}
            return nil
        } catch {
            return error
        }
    }

    @Test func listThenWatchFromTheListVersion() async throws {
        try await withServerAndClient { server, client in
            _ = try await client.create(configMap("before"))
            let list = try await client.list(ConfigMap.self, namespace: "default")
            let version = try #require(list.metadata.resourceVersion)

            let stream = try await client.watch(
                ConfigMap.self, namespace: "default", options: WatchOptions(resourceVersion: version))
            var iterator = stream.makeAsyncIterator()
            var changed = try await client.create(configMap("after", data: ["v": "1"]))
            changed.data = ["v": "2"]
            _ = try await client.update(changed)
            try await client.delete(ConfigMap.self, namespace: "default", name: "before")

            #expect(try await nextEvents(3, from: &iterator) == ["ADDED after", "MODIFIED after", "DELETED before"])
            let query = try #require(server.requestLog.last { $0.query["watch"] == "true" }?.query)
            #expect(query["resourceVersion"] == version)
            #expect(query["allowWatchBookmarks"] == "true")
        }
    }

    @Test func aConsumerThatFallsBehindGetsTheBufferedEventsThenATransportError() async throws {
        try await withServerAndClient(configure: { $0.maximumBufferedWatchEvents = 3 }) { server, client in
            let version = try #require(
                try await client.list(ConfigMap.self, namespace: "default").metadata.resourceVersion)
            for index in 0..<8 { _ = try await client.create(configMap("burst-\(index)")) }
            let stream = try await client.watch(
                ConfigMap.self, namespace: "default", options: WatchOptions(resourceVersion: version))
            try await Task.sleep(for: .milliseconds(300))
            var received: [String] = []
            let error = await expectKubeError(.transport) {
                for try await event in stream {
                    if case .added(let object) = event { received.append(object.metadata.name ?? "") }
                }
            }
            #expect(received == ["burst-0", "burst-1", "burst-2"])
            #expect(error?.message.contains("fell too many events behind") == true)
            _ = server
        }
    }

    @Test func resumeFromAResourceVersionDeliversOnlyLaterEvents() async throws {
        try await withServerAndClient { _, client in
            _ = try await client.create(configMap("a"))
            let b = try await client.create(configMap("b"))
            let resumeFrom = try #require(b.metadata.resourceVersion)
            var a = try await client.get(ConfigMap.self, namespace: "default", name: "a")
            a.data = ["changed": "yes"]
            _ = try await client.update(a)
            _ = try await client.create(configMap("c"))
            try await client.delete(ConfigMap.self, namespace: "default", name: "b")

            let stream = try await client.watch(
                ConfigMap.self, namespace: "default", options: WatchOptions(resourceVersion: resumeFrom))
            var iterator = stream.makeAsyncIterator()
            #expect(try await nextEvents(3, from: &iterator) == ["MODIFIED a", "ADDED c", "DELETED b"])

            _ = try await client.create(configMap("d"))
            #expect(try await nextEvents(1, from: &iterator) == ["ADDED d"])
        }
    }

    @Test func watchWithSelectorAcrossNamespacesAsJSON() async throws {
        try await withServerAndClient { _, client in
            let stream = try await client.watch(
                .configMaps, namespace: nil, options: WatchOptions(resourceVersion: "0", labelSelector: "team=mesh"),
                as: JSONValue.self)
            var iterator = stream.makeAsyncIterator()
            _ = try await client.create(configMap("ignored", labels: ["team": "other"]))
            _ = try await client.create(configMap("wanted", namespace: "kube-system", labels: ["team": "mesh"]))
            var names: [String] = []
            while names.isEmpty, let event = try await iterator.next() {
                if case .added(let object) = event {
                    names.append(object.value(atPath: "metadata.name")?.stringValue ?? "?")
                }
            }
            #expect(names == ["wanted"])
        }
    }

    @Test func bookmarksCarryTheResourceVersion() async throws {
        var serverConfiguration = KubeTestServer.Configuration()
        serverConfiguration.bookmarkInterval = .milliseconds(100)
        try await withServerAndClient(serverConfiguration) { _, client in
            let created = try await client.create(configMap("marked"))
            let stream = try await client.watch(
                ConfigMap.self, namespace: "default",
                options: WatchOptions(resourceVersion: created.metadata.resourceVersion))
            var bookmark: String?
            for try await event in stream {
                if case .bookmark(let version) = event {
                    bookmark = version
                    break
                }
            }
            let version = try #require(bookmark)
            #expect(Int(version).map { $0 >= Int(created.metadata.resourceVersion ?? "") ?? .max } == true)
        }
    }

    @Test func noBookmarksWhenNotAllowed() async throws {
        var serverConfiguration = KubeTestServer.Configuration()
        serverConfiguration.bookmarkInterval = .milliseconds(50)
        try await withServerAndClient(serverConfiguration) { server, client in
            let stream = try await client.watch(
                ConfigMap.self, namespace: "default", options: WatchOptions(allowWatchBookmarks: false))
            var iterator = stream.makeAsyncIterator()
            try await Task.sleep(for: .milliseconds(300))
            _ = try await client.create(configMap("plain"))
            let first = try await iterator.next()
            #expect(first.map(summary) == "ADDED plain")
            #expect(server.requestLog.last { $0.query["watch"] == "true" }?.query["allowWatchBookmarks"] == nil)
        }
    }

    @Test func resumeFromAnExpiredVersionIsGone() async throws {
        try await withServerAndClient { server, client in
            let old = try await client.create(configMap("old"))
            server.expireWatches()
            _ = try await client.create(configMap("new"))
            let failure = await watchFailure {
                try await client.watch(
                    ConfigMap.self, namespace: "default",
                    options: WatchOptions(resourceVersion: old.metadata.resourceVersion))
            }
            let error = try #require(failure as? KubeError, "\(String(describing: failure))")
            #expect(error.code == .gone)
        }
    }

    @Test func expiringOpenWatchesIsGone() async throws {
        try await withServerAndClient { server, client in
            let stream = try await client.watch(ConfigMap.self, namespace: "default")
            try await waitUntil { server.openWatchCount == 1 }
            server.expireWatches()
            let failure = await watchFailure { stream }
            let error = try #require(failure as? KubeError, "\(String(describing: failure))")
            #expect(error.code == .gone)
            #expect(error.status?.code == 410)
        }
    }

    @Test func droppedConnectionIsATransportError() async throws {
        try await withServerAndClient { server, client in
            let stream = try await client.watch(ConfigMap.self, namespace: "default")
            var iterator = stream.makeAsyncIterator()
            _ = try await client.create(configMap("first"))
            #expect(try await nextEvents(1, from: &iterator) == ["ADDED first"])
            server.dropWatchConnections()
            do {
                while try await iterator.next() != nil {}
                Issue.record("the watch ended normally after its connection was dropped")
            } catch let error as KubeError {
                #expect(error.code == .transport, "\(error)")
            }
        }
    }

    @Test func stalledWatchTimesOut() async throws {
        try await withServerAndClient(configure: { $0.watchIdleTimeout = .milliseconds(500) }) { server, client in
            let stream = try await client.watch(ConfigMap.self, namespace: "default")
            try await waitUntil { server.openWatchCount == 1 }
            server.stallWatches()
            let failure = await watchFailure { stream }
            let error = try #require(failure as? KubeError, "\(String(describing: failure))")
            #expect(error.code == .timeout)
            #expect(error.message.contains("the watch received nothing for 0.5 seconds"))
            server.resumeWatches()
            try await waitUntil { server.openWatchCount == 0 }
        }
    }

    @Test func serverTimeoutEndsTheStreamNormally() async throws {
        try await withServerAndClient { _, client in
            let stream = try await client.watch(
                ConfigMap.self, namespace: "default", options: WatchOptions(timeoutSeconds: 1))
            for try await _ in stream {}
        }
    }

    @Test func cancellingTheConsumerClosesTheWatch() async throws {
        try await withServerAndClient { server, client in
            let stream = try await client.watch(ConfigMap.self, namespace: "default")
            let consumer = Task {
                for try await _ in stream {}
            }
            try await waitUntil { server.openWatchCount == 1 }
            consumer.cancel()
            _ = await consumer.result
            try await waitUntil { server.openWatchCount == 0 }
        }
    }

    @Test func droppingTheStreamClosesTheWatch() async throws {
        try await withServerAndClient { server, client in
            do {
                let stream = try await client.watch(ConfigMap.self, namespace: "default")
                var iterator = stream.makeAsyncIterator()
                _ = try await client.create(configMap("one"))
                #expect(try await nextEvents(1, from: &iterator) == ["ADDED one"])
            }
            try await waitUntil { server.openWatchCount == 0 }
        }
    }

    @Test func injectedErrorOnOpeningAWatchIsThrownByTheCall() async throws {
        try await withServerAndClient { server, client in
            server.injectFault(.status(code: 403, reason: "Forbidden", message: "no watching"), method: "GET")
            await expectKubeError(.forbidden) { _ = try await client.watch(ConfigMap.self, namespace: "default") }
        }
    }
}
