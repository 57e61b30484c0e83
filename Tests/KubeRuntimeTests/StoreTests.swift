import KubeModel
import Testing

@testable import KubeRuntime

@Suite("Store")
struct StoreTests {
    private func pod(_ namespace: String, _ name: String, version: String = "1", labels: [String: String] = [:]) -> Pod
    {
        var meta = ObjectMeta(name: name, namespace: namespace, labels: labels)
        meta.resourceVersion = version
        return Pod(metadata: meta)
    }

    @Test("replace reports additions, changes and removals, and nothing for unchanged objects")
    func replaceDiff() {
        let store = Store<Pod>()
        #expect(store.hasSynced == false)
        let first = store.replace(with: [pod("a", "one"), pod("a", "two")])
        #expect(first.count == 2)
        #expect(store.hasSynced)
        let second = store.replace(with: [pod("a", "one"), pod("a", "three"), pod("a", "two", version: "2")])
        let summary = second.map { "\($0.key):\($0.old == nil ? "+" : $0.new == nil ? "-" : "~")" }.sorted()
        #expect(summary == ["a/three:+", "a/two:~"])
        let third = store.replace(with: [pod("a", "three")])
        #expect(third.map(\.key.description).sorted() == ["a/one", "a/two"])
        #expect(third.allSatisfy { $0.new == nil })
        #expect(store.count == 1)
    }

    @Test("list uses the namespace and label indexes and stays correct after relabelling")
    func indexes() throws {
        let store = Store<Pod>()
        _ = store.replace(with: [
            pod("web", "a", labels: ["app": "web"]), pod("web", "b", labels: ["app": "db"]),
            pod("other", "c", labels: ["app": "web"]),
        ])
        let web = try LabelQuery(parsing: "app=web")
        #expect(store.list(labels: web).map(\.key.description) == ["other/c", "web/a"])
        #expect(store.list(namespace: "web", labels: web).map(\.key.description) == ["web/a"])
        #expect(store.list(namespace: "web").count == 2)
        _ = store.apply(pod("web", "a", version: "2", labels: ["app": "db"]))
        #expect(store.list(namespace: "web", labels: web).isEmpty)
        #expect(store.list(labels: try LabelQuery(parsing: "app in (db)")).count == 2)
        _ = store.delete(pod("other", "c"))
        #expect(store.list(labels: web).isEmpty)
        #expect(store.list(namespace: "other").isEmpty)
    }

    @Test("apply of the same resourceVersion is not a change")
    func sameVersion() {
        let store = Store<Pod>()
        #expect(store.apply(pod("a", "x")) != nil)
        #expect(store.apply(pod("a", "x")) == nil)
        #expect(store.apply(pod("a", "x", version: "2")) != nil)
        #expect(store.delete(pod("a", "missing")) == nil)
    }

    @Test("waitUntilSynced returns once the first list is stored")
    func waitForSync() async {
        let store = Store<Pod>()
        async let waited: Void = store.waitUntilSynced()
        _ = store.replace(with: [])
        await waited
        #expect(store.hasSynced)
    }
}
