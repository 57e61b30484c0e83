import Foundation
import KubeModel
import KubeTestServer
import NIOHTTP1
import Testing

@Suite("watches: streaming, resuming, bookmarks and faults", .timeLimit(.minutes(1)))
struct WatchTests {
    let configMaps = "/api/v1/namespaces/default/configmaps"

    func resourceVersion(_ reply: Reply) -> String {
        reply.json.value(atPath: "metadata.resourceVersion")?.stringValue ?? ""
    }

    @Test func initialAddsThenLiveEvents() async throws {
        try await withServer { server, client async throws in
            _ = try await client.send(.POST, configMaps, json: configMap("b"))
            _ = try await client.send(.POST, configMaps, json: configMap("a"))
            let (head, watch) = try await client.watch("\(configMaps)?watch=true")
            var reader = watch
            #expect(head.status == 200)
            #expect(head.headers.first(name: "content-type") == "application/json")
            #expect(head.headers.first(name: "transfer-encoding") == "chunked")
            #expect(try await reader.nextSummary() == "ADDED a")
            #expect(try await reader.nextSummary() == "ADDED b")

            let created = try await client.send(.POST, configMaps, json: configMap("c"))
            let added = try #require(try await reader.next())
            #expect(summary(added) == "ADDED c")
            #expect(added["object"] == created.json)
            #expect(added.value(atPath: "object.kind") == "ConfigMap")
            #expect(added.value(atPath: "object.apiVersion") == "v1")

            _ = try await client.send(
                .PATCH, "\(configMaps)/c", json: ["data": ["k": "v"]], contentType: "application/merge-patch+json")
            #expect(try await reader.nextSummary() == "MODIFIED c")
            _ = try await client.send(.DELETE, "\(configMaps)/c")
            let deleted = try #require(try await reader.next())
            #expect(summary(deleted) == "DELETED c")
            #expect(
                deleted.value(atPath: "object.metadata.resourceVersion")?.stringValue
                    == "\(server.currentResourceVersion)")

            _ = try await client.send(.POST, "/api/v1/namespaces/kube-system/configmaps", json: configMap("elsewhere"))
            _ = try await client.send(.POST, configMaps, json: configMap("here"))
            #expect(try await reader.nextSummary() == "ADDED here", "a namespaced watch sees only its namespace")
        }
    }

    @Test func watchAcrossNamespaces() async throws {
        try await withServer { _, client async throws in
            var (_, reader) = try await client.watch("/api/v1/configmaps?watch=1&resourceVersion=0")
            _ = try await client.send(.POST, "/api/v1/namespaces/kube-system/configmaps", json: configMap("one"))
            _ = try await client.send(.POST, configMaps, json: configMap("two"))
            #expect(try await reader.nextSummary() == "ADDED one")
            #expect(try await reader.nextSummary() == "ADDED two")
        }
    }

    @Test func resumeReplaysHistoryAfterTheResourceVersion() async throws {
        try await withServer { _, client async throws in
            let first = try await client.send(.POST, configMaps, json: configMap("a"))
            _ = try await client.send(.POST, configMaps, json: configMap("b"))
            _ = try await client.send(
                .PATCH, "\(configMaps)/a", json: ["data": ["x": "1"]], contentType: "application/merge-patch+json")
            var (_, reader) = try await client.watch(
                "\(configMaps)?watch=true&resourceVersion=\(resourceVersion(first))")
            #expect(try await reader.nextSummary() == "ADDED b")
            #expect(try await reader.nextSummary() == "MODIFIED a")
            _ = try await client.send(.POST, configMaps, json: configMap("c"))
            #expect(try await reader.nextSummary() == "ADDED c")
        }
    }

    @Test func resumingBeyondTheHistoryIsGone() async throws {
        var configuration = KubeTestServer.Configuration()
        configuration.historyLimit = 2
        try await withServer(configuration) { _, client async throws in
            let first = try await client.send(.POST, configMaps, json: configMap("a"))
            for name in ["b", "c", "d"] {
                _ = try await client.send(.POST, configMaps, json: configMap(name))
            }
            var (head, reader) = try await client.watch(
                "\(configMaps)?watch=true&resourceVersion=\(resourceVersion(first))")
            #expect(head.status == 200)
            let error = try #require(try await reader.next())
            #expect(error["type"] == "ERROR")
            #expect(error.value(atPath: "object.kind") == "Status")
            #expect(error.value(atPath: "object.code") == 410)
            #expect(error.value(atPath: "object.reason") == "Expired")
            #expect(error.value(atPath: "object.message")?.stringValue?.hasPrefix("too old resource version: ") == true)
            #expect(try await reader.next() == nil, "the stream ends after the error")
        }
    }

    @Test func expireWatchesEndsOpenWatchesAndForgetsHistory() async throws {
        try await withServer { server, client async throws in
            let created = try await client.send(.POST, configMaps, json: configMap("a"))
            var (_, reader) = try await client.watch(
                "\(configMaps)?watch=true&resourceVersion=\(resourceVersion(created))")
            try await waitUntil { server.openWatchCount == 1 }
            server.expireWatches()
            let error = try #require(try await reader.next())
            #expect(error["type"] == "ERROR")
            #expect(error.value(atPath: "object.code") == 410)
            #expect(try await reader.next() == nil)
            #expect(server.openWatchCount == 0)

            var (_, resumed) = try await client.watch(
                "\(configMaps)?watch=true&resourceVersion=\(resourceVersion(created))")
            #expect(try await resumed.next()?["type"] == "ERROR")

            let list = try await client.get(configMaps)
            var (_, fresh) = try await client.watch("\(configMaps)?watch=true&resourceVersion=\(resourceVersion(list))")
            _ = try await client.send(.POST, configMaps, json: configMap("b"))
            #expect(try await fresh.nextSummary() == "ADDED b")
        }
    }

    @Test func bookmarksWhenAllowed() async throws {
        var configuration = KubeTestServer.Configuration()
        configuration.bookmarkInterval = .milliseconds(50)
        try await withServer(configuration) { server, client async throws in
            _ = try await client.send(.POST, configMaps, json: configMap("a"))
            var (_, reader) = try await client.watch("\(configMaps)?watch=true&allowWatchBookmarks=true")
            #expect(try await reader.nextSummary() == "ADDED a")
            let bookmark = try #require(try await reader.next())
            #expect(bookmark["type"] == "BOOKMARK")
            #expect(
                bookmark["object"]
                    == [
                        "kind": "ConfigMap", "apiVersion": "v1",
                        "metadata": ["resourceVersion": .string("\(server.currentResourceVersion)")],
                    ])

            var (_, plain) = try await client.watch(
                "\(configMaps)?watch=true&resourceVersion=\(server.currentResourceVersion)")
            try await Task.sleep(for: .milliseconds(200))
            _ = try await client.send(.POST, configMaps, json: configMap("b"))
            #expect(try await plain.nextSummary() == "ADDED b", "no bookmarks without allowWatchBookmarks")
        }
    }

    @Test func timeoutSecondsEndsTheStreamCleanly() async throws {
        try await withServer { server, client async throws in
            let started = ContinuousClock.now
            var (_, reader) = try await client.watch("\(configMaps)?watch=true&timeoutSeconds=1")
            #expect(try await reader.next() == nil)
            #expect(started.duration(to: .now) >= .seconds(1))
            #expect(server.openWatchCount == 0)
            #expect(try await client.get(configMaps).status == 200)
        }
    }

    @Test func labelSelectorTransitionsAreAddsAndDeletes() async throws {
        try await withServer { _, client async throws in
            var (_, reader) = try await client.watch("\(configMaps)?watch=true&labelSelector=app%3Dweb")
            func label(_ name: String, _ app: String) async throws {
                _ = try await client.send(
                    .PATCH, "\(configMaps)/\(name)", json: ["metadata": ["labels": ["app": .string(app)]]],
                    contentType: "application/merge-patch+json")
            }
            _ = try await client.send(.POST, configMaps, json: configMap("x"))
            try await label("x", "web")
            #expect(try await reader.nextSummary() == "ADDED x")
            try await label("x", "db")
            let deleted = try #require(try await reader.next())
            #expect(summary(deleted) == "DELETED x")
            #expect(deleted.value(atPath: "object.metadata.labels")?["app"] == "db", "the new state is sent")
            _ = try await client.send(.POST, configMaps, json: configMap("y", labels: ["app": "web"]))
            #expect(try await reader.nextSummary() == "ADDED y")
        }
    }

    @Test func droppedConnectionsBreakTheStream() async throws {
        try await withServer { server, client async throws in
            var (_, reader) = try await client.watch("\(configMaps)?watch=true")
            _ = try await client.send(.POST, configMaps, json: configMap("a"))
            #expect(try await reader.nextSummary() == "ADDED a")
            server.dropWatchConnections()
            await #expect(throws: (any Error).self) {
                while try await reader.next() != nil {}
            }
            #expect(server.openWatchCount == 0)
        }
    }

    @Test func stalledWatchesSendNothingUntilResumed() async throws {
        try await withServer { server, client async throws in
            let (head, reader) = try await client.watch("\(configMaps)?watch=true")
            #expect(head.status == 200)
            server.stallWatches()
            let read = Task { [reader] in
                var reader = reader
                let event = try await reader.nextSummary()
                return (event, ContinuousClock.now)
            }
            _ = try await client.send(.POST, configMaps, json: configMap("during"))
            try await Task.sleep(for: .milliseconds(300))
            let resumedAt = ContinuousClock.now
            server.resumeWatches()
            let (event, arrivedAt) = try await read.value
            #expect(event == "ADDED during")
            #expect(arrivedAt >= resumedAt)
        }
    }

    @Test func invalidWatchParameters() async throws {
        try await withServer { _, client async throws in
            #expect(try await client.get("\(configMaps)?watch=true&resourceVersion=abc").status == 400)
            #expect(try await client.get("\(configMaps)?watch=true&timeoutSeconds=-1").status == 400)
            #expect(try await client.get("\(configMaps)?watch=true&labelSelector=%3D%3D").status == 400)
        }
    }
}
