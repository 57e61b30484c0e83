import Foundation
import KubeClient
import KubeModel
import KubeTestServer
import Testing

@Suite("requests against KubeTestServer", .timeLimit(.minutes(1)))
struct RequestIntegrationTests {
    @Test func createGetListUpdateDelete() async throws {
        try await withServerAndClient { server, client in
            let created = try await client.create(configMap("settings", data: ["a": "1"], labels: ["app": "web"]))
            #expect(created.metadata.uid != nil)
            #expect(created.metadata.resourceVersion != nil)
            _ = try await client.create(configMap("other", labels: ["app": "api"]))

            let fetched = try await client.get(ConfigMap.self, namespace: "default", name: "settings")
            #expect(fetched.data == ["a": "1"])

            let all = try await client.list(ConfigMap.self, namespace: "default")
            #expect(Set(all.items.compactMap(\.metadata.name)) == ["settings", "other"])
            #expect(all.metadata.resourceVersion != nil)
            let web = try await client.list(
                ConfigMap.self, namespace: "default", options: ListOptions(labelSelector: "app=web"))
            #expect(web.items.map(\.metadata.name) == ["settings"])
            let none = try await client.list(ConfigMap.self, namespace: "kube-system")
            #expect(none.items.isEmpty)

            var changed = fetched
            changed.data = ["a": "2"]
            let updated = try await client.update(changed)
            #expect(updated.data == ["a": "2"])
            #expect(updated.metadata.resourceVersion != fetched.metadata.resourceVersion)

            try await client.delete(ConfigMap.self, namespace: "default", name: "settings")
            await expectKubeError(.notFound) {
                _ = try await client.get(ConfigMap.self, namespace: "default", name: "settings")
            }

            let methods = server.requestLog.map { "\($0.method) \($0.path)" }
            #expect(methods.contains("POST /api/v1/namespaces/default/configmaps"))
            #expect(methods.contains("PUT /api/v1/namespaces/default/configmaps/settings"))
            #expect(methods.contains("DELETE /api/v1/namespaces/default/configmaps/settings"))
            #expect(
                server.requestLog.first { $0.method == "GET" && $0.query["labelSelector"] != nil }?.query[
                    "labelSelector"] == "app=web")
        }
    }

    @Test func clusterScopedResourcesAndJSONValues() async throws {
        try await withServerAndClient { _, client in
            let namespaces = try await client.listAll(Namespace.self)
            #expect(Set(namespaces.compactMap(\.metadata.name)).isSuperset(of: ["default", "kube-system"]))
            let raw = try await client.get(
                .namespaces, namespace: nil, name: "kube-system", subresource: nil, as: JSONValue.self)
            #expect(raw.value(atPath: "metadata.name") == "kube-system")
            let created = try await client.create(
                .configMaps, namespace: "default",
                object: ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "raw"], "data": ["k": "v"]]
                    as JSONValue,
                subresource: nil)
            #expect(created.value(atPath: "data.k") == "v")
        }
    }

    @Test func listAllFollowsContinueTokens() async throws {
        try await withServerAndClient { server, client in
            for index in 0..<7 {
                _ = try await client.create(configMap("item-\(index)"))
            }
            let items = try await client.listAll(ConfigMap.self, namespace: "default", options: ListOptions(limit: 3))
            #expect(items.count == 7)
            #expect(Set(items.compactMap(\.metadata.name)).count == 7)
            let pages = server.requestLog.filter { $0.method == "GET" && $0.query["limit"] == "3" }
            #expect(pages.count == 3)
            #expect(pages.dropFirst().allSatisfy { $0.query["continue"] != nil })
        }
    }

    @Test func createOfAnExistingNameIsAlreadyExists() async throws {
        try await withServerAndClient { _, client in
            _ = try await client.create(configMap("dup"))
            let error = await expectKubeError(.alreadyExists) { _ = try await client.create(configMap("dup")) }
            #expect(error?.status?.reason == "AlreadyExists")
        }
    }

    @Test func staleUpdateIsAConflict() async throws {
        try await withServerAndClient { _, client in
            let original = try await client.create(configMap("cas", data: ["v": "1"]))
            var first = original
            first.data = ["v": "2"]
            _ = try await client.update(first)
            var stale = original
            stale.data = ["v": "3"]
            let error = await expectKubeError(.conflict) { _ = try await client.update(stale) }
            #expect(error?.status?.code == 409)
            #expect(try await client.get(ConfigMap.self, namespace: "default", name: "cas").data == ["v": "2"])
        }
    }

    @Test func jsonPatchAndMergePatch() async throws {
        try await withServerAndClient { server, client in
            _ = try await client.create(configMap("patched", data: ["keep": "yes", "drop": "x"], labels: ["a": "1"]))
            let merged = try await client.patch(
                ConfigMap.self, namespace: "default", name: "patched",
                patch: .merge(["data": ["drop": nil, "added": "new"], "metadata": ["labels": ["b": "2"]]]))
            #expect(merged.data == ["keep": "yes", "added": "new"])
            #expect(merged.metadata.labels == ["a": "1", "b": "2"])

            let jsonPatched = try await client.patch(
                ConfigMap.self, namespace: "default", name: "patched",
                patch: .json(
                    JSONPatch([
                        .test(path: "/data/keep", value: "yes"),
                        .replace(path: "/data/keep", value: "changed"),
                        .remove(path: "/metadata/labels/a"),
                    ])))
            #expect(jsonPatched.data == ["keep": "changed", "added": "new"])
            #expect(jsonPatched.metadata.labels == ["b": "2"])

            let failedTest = await expectKubeError(.invalid) {
                _ = try await client.patch(
                    ConfigMap.self, namespace: "default", name: "patched",
                    patch: .json(JSONPatch([.test(path: "/data/keep", value: "other")])))
            }
            #expect(failedTest != nil)

            let contentTypes = server.requestLog.filter { $0.method == "PATCH" }.map(\.contentType)
            #expect(contentTypes.first == "application/merge-patch+json")
            #expect(contentTypes.dropFirst().first == "application/json-patch+json")
        }
    }

    @Test func statusSubresourceUpdate() async throws {
        try await withServerAndClient { server, client in
            let pod = Pod(
                metadata: ObjectMeta(name: "web", namespace: "default"),
                spec: PodSpec(containers: [Container(name: "app", image: "nginx")]))
            var created = try await client.create(pod)
            created.status = PodStatus(phase: "Running", podIP: "10.0.0.7")
            let updated = try await client.updateStatus(created)
            #expect(updated.status?.phase == "Running")
            #expect(updated.status?.podIP == "10.0.0.7")
            #expect(server.requestLog.last?.path == "/api/v1/namespaces/default/pods/web/status")

            let status = try await client.get(
                .pods, namespace: "default", name: "web", subresource: "status", as: Pod.self)
            #expect(status.status?.phase == "Running")

            let patched = try await client.patch(
                Pod.self, namespace: "default", name: "web", patch: .merge(["status": ["phase": "Succeeded"]]),
                subresource: "status")
            #expect(patched.status?.phase == "Succeeded")
        }
    }

    @Test func missingNamespaceIsRejectedBeforeSending() async throws {
        try await withServerAndClient { server, client in
            let before = server.requestLog.count
            await expectKubeError(.configuration) {
                _ = try await client.create(ConfigMap(metadata: ObjectMeta(name: "nowhere")))
            }
            await expectKubeError(.configuration) {
                try await client.delete(ConfigMap.self, name: "nowhere")
            }
            #expect(server.requestLog.count == before)
        }
    }

    @Test func tenThousandObjectsInOneList() async throws {
        try await withServerAndClient { server, client in
            for index in 0..<10_000 {
                try server.put(configMap("bulk-\(index)", data: ["index": "\(index)"]))
            }
            let list = try await client.list(ConfigMap.self, namespace: "default")
            #expect(list.items.count == 10_000)
        }
    }
}
