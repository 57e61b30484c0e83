import KubeModel
import Testing

@testable import KubeTestServer

@Suite("APIStore, without HTTP")
struct APIStoreTests {
    func storeWithNamespace(historyLimit: Int = 100) throws -> APIStore {
        var store = APIStore(historyLimit: historyLimit)
        _ = try store.create(.namespaces, namespace: nil, body: ["metadata": ["name": "default"]])
        _ = store.takeEvents()
        return store
    }

    @Test func createFillsServerManagedMetadata() throws {
        var store = try storeWithNamespace()
        let created = try store.create(.configMaps, namespace: "default", body: configMap("a"))
        #expect(created.objectNamespace == "default")
        #expect(created.objectResourceVersion == "2")
        #expect(created.value(atPath: "metadata.generation") == 1)
        #expect(created.value(atPath: "metadata.uid")?.stringValue?.count == 36)
        #expect(KubeTime.parse(created.value(atPath: "metadata.creationTimestamp")?.stringValue ?? "") != nil)
        #expect(created["kind"] == "ConfigMap")
        #expect(store.takeEvents().map(\.kind) == [.added])
    }

    @Test func createRejectsWhatTheRealServerRejects() throws {
        var store = try storeWithNamespace()
        #expect(throws: Status.alreadyExists(.configMaps, name: "a")) {
            _ = try store.create(.configMaps, namespace: "default", body: configMap("a"))
            _ = try store.create(.configMaps, namespace: "default", body: configMap("a"))
        }
        #expect(throws: Status.notFound(.namespaces, name: "missing")) {
            _ = try store.create(.configMaps, namespace: "missing", body: configMap("b"))
        }
        let unnamed = try #require(throws: Status.self) {
            _ = try store.create(.configMaps, namespace: "default", body: ["metadata": [:]])
        }
        #expect(unnamed.code == 422)
        #expect(
            unnamed.message
                == "ConfigMap \"\" is invalid: metadata.name: Required value: name or generateName is required")
        let mismatch = try #require(throws: Status.self) {
            _ = try store.create(.configMaps, namespace: "default", body: configMap("c", namespace: "other"))
        }
        #expect(mismatch.code == 400)
        let wrongKind = try #require(throws: Status.self) {
            _ = try store.create(.configMaps, namespace: "default", body: pod("d"))
        }
        #expect(wrongKind.code == 400)
    }

    @Test func generateNameAddsFiveCharacters() throws {
        var store = try storeWithNamespace()
        let created = try store.create(
            .configMaps, namespace: "default", body: ["metadata": ["generateName": "web-"]])
        #expect(created.objectName.hasPrefix("web-"))
        #expect(created.objectName.count == 9)
    }

    @Test func updateIsConditionalOnTheResourceVersion() throws {
        var store = try storeWithNamespace()
        let created = try store.create(.configMaps, namespace: "default", body: configMap("a"))
        var changed = created
        changed["data"] = ["k": "v"]
        let updated = try store.update(.configMaps, namespace: "default", name: "a", body: changed, subresource: nil)
        #expect(updated.objectResourceVersion == "3")
        #expect(updated.value(atPath: "metadata.generation") == 2)
        #expect(updated.value(atPath: "metadata.uid") == created.value(atPath: "metadata.uid"))
        let conflict = try #require(throws: Status.self) {
            _ = try store.update(.configMaps, namespace: "default", name: "a", body: changed, subresource: nil)
        }
        #expect(conflict.code == 409)
        #expect(conflict.reason == "Conflict")
        #expect(
            conflict.message
                == "Operation cannot be fulfilled on configmaps \"a\": the object has been modified; please apply "
                + "your changes to the latest version and try again")
        let unconditional = changed.settingMetadata("resourceVersion", nil)
        let again = try store.update(
            .configMaps, namespace: "default", name: "a", body: unconditional, subresource: nil)
        #expect(again == updated, "an update that changes nothing keeps the resourceVersion")
    }

    @Test func statusSubresourceSplitsSpecAndStatus() throws {
        var store = try storeWithNamespace()
        var body = pod("p")
        body["status"] = ["phase": "Pending"]
        let created = try store.create(.pods, namespace: "default", body: body)
        var attempt = created
        attempt["status"] = ["phase": "Running"]
        attempt["spec"] = ["containers": [["name": "other"]]]
        let main = try store.update(.pods, namespace: "default", name: "p", body: attempt, subresource: nil)
        #expect(main.value(atPath: "status.phase") == "Pending", "the main resource keeps the stored status")
        #expect(main.value(atPath: "metadata.generation") == 2)
        attempt = attempt.settingMetadata("resourceVersion", nil)
        attempt["spec"] = ["containers": []]
        let status = try store.update(.pods, namespace: "default", name: "p", body: attempt, subresource: "status")
        #expect(status.value(atPath: "status.phase") == "Running")
        #expect(status["spec"] == main["spec"], "the status subresource changes nothing else")
        #expect(status.value(atPath: "metadata.generation") == 2)
        _ = try store.create(.configMaps, namespace: "default", body: configMap("c"))
        #expect(throws: Status.resourceNotFound, "config maps have no status subresource") {
            _ = try store.update(
                .configMaps, namespace: "default", name: "c", body: configMap("c"), subresource: "status")
        }
    }

    @Test func deletingANamespaceDeletesItsObjects() throws {
        var store = try storeWithNamespace()
        _ = try store.create(.namespaces, namespace: nil, body: ["metadata": ["name": "doomed"]])
        _ = try store.create(.configMaps, namespace: "doomed", body: configMap("a"))
        _ = try store.create(.pods, namespace: "doomed", body: pod("b"))
        _ = try store.create(.configMaps, namespace: "default", body: configMap("kept"))
        _ = store.takeEvents()
        _ = try store.delete(.namespaces, namespace: nil, name: "doomed")
        let events = store.takeEvents()
        #expect(events.map(\.kind) == [.deleted, .deleted, .deleted])
        #expect(events.last?.object.objectName == "doomed")
        #expect(store.objects(.configMaps).map(\.objectName) == ["kept"])
        #expect(store.objects(.pods).isEmpty)
    }

    @Test func historyIsBoundedAndCompacts() throws {
        var store = try storeWithNamespace(historyLimit: 3)
        for index in 0..<5 {
            _ = try store.create(.configMaps, namespace: "default", body: configMap("c\(index)"))
        }
        #expect(store.resourceVersion == 6)
        #expect(store.history.map(\.resourceVersion) == [4, 5, 6])
        #expect(try store.events(after: 3).map(\.resourceVersion) == [4, 5, 6])
        let expired = try #require(throws: Status.self) { _ = try store.events(after: 2) }
        #expect(expired.code == 410)
        #expect(expired.reason == "Expired")
        store.expire()
        #expect(throws: Status.self) { _ = try store.events(after: 6) }
        #expect(try store.events(after: store.resourceVersion).isEmpty)
    }

    @Test func listPagesInKeyOrder() throws {
        var store = try storeWithNamespace()
        for name in ["d", "b", "a", "c", "e"] {
            _ = try store.create(.configMaps, namespace: "default", body: configMap(name))
        }
        var names: [String] = []
        var token: String?
        var remaining: [Int?] = []
        repeat {
            let page = try store.list(
                .configMaps, namespace: nil, labels: nil, fields: nil, limit: 2, continueToken: token)
            names += page.items.map(\.objectName)
            remaining.append(page.remainingItemCount)
            token = page.continueToken
        } while token != nil
        #expect(names == ["a", "b", "c", "d", "e"])
        #expect(remaining == [3, 1, nil])
    }

    @Test func watchFilterTurnsSelectorTransitionsIntoAddsAndDeletes() throws {
        var store = try storeWithNamespace()
        let filter = WatchFilter(
            resource: ResourceID(.configMaps), namespace: "default", labels: try LabelQuery(parsing: "app=web"),
            fields: nil)
        let created = try store.create(.configMaps, namespace: "default", body: configMap("x"))
        let labelled = try store.update(
            .configMaps, namespace: "default", name: "x", body: created.settingMetadata("labels", ["app": "web"]),
            subresource: nil)
        let relabelled = try store.update(
            .configMaps, namespace: "default", name: "x", body: labelled.settingMetadata("labels", ["app": "db"]),
            subresource: nil)
        #expect(relabelled.objectLabels == ["app": "db"])
        let seen = store.takeEvents().compactMap { filter.watchEvent(for: $0)?.type }
        #expect(seen == ["ADDED", "DELETED"])
    }
}
