import Foundation
import KubeModel
import KubeTestServer
import NIOHTTP1
import Testing

@Suite("create, get, update, patch and delete over HTTP", .timeLimit(.minutes(1)))
struct CRUDTests {
    let configMaps = "/api/v1/namespaces/default/configmaps"

    @Test func createGetAndAlreadyExists() async throws {
        try await withServer { server, client async throws in
            let created = try await client.send(.POST, configMaps, json: configMap("a", data: ["k": "v"]))
            #expect(created.status == 201)
            #expect(created.headers.first(name: "content-type") == "application/json")
            #expect(created.json.value(atPath: "metadata.namespace") == "default")
            #expect(
                created.json.value(atPath: "metadata.resourceVersion")?.stringValue
                    == "\(server.currentResourceVersion)")

            let fetched = try await client.get("\(configMaps)/a")
            #expect(fetched.status == 200)
            #expect(fetched.json == created.json)

            let duplicate = try await client.send(.POST, configMaps, json: configMap("a"))
            #expect(duplicate.status == 409)
            #expect(duplicate.json["kind"] == "Status")
            #expect(duplicate.json["apiVersion"] == "v1")
            #expect(duplicate.json["status"] == "Failure")
            #expect(duplicate.json["reason"] == "AlreadyExists")
            #expect(duplicate.json["code"] == 409)
            #expect(duplicate.message == "configmaps \"a\" already exists")
            #expect(duplicate.json["details"] == ["name": "a", "kind": "configmaps"])

            let missing = try await client.get("\(configMaps)/nope")
            #expect(missing.status == 404)
            #expect(missing.json["reason"] == "NotFound")
            #expect(missing.message == "configmaps \"nope\" not found")
        }
    }

    @Test func createValidatesLikeTheRealServer() async throws {
        try await withServer { _, client async throws in
            let noNamespace = try await client.send(
                .POST, "/api/v1/namespaces/absent/configmaps", json: configMap("a"))
            #expect(noNamespace.status == 404)
            #expect(noNamespace.message == "namespaces \"absent\" not found")

            let mismatch = try await client.send(.POST, configMaps, json: configMap("a", namespace: "kube-system"))
            #expect(mismatch.status == 400)
            #expect(mismatch.json["reason"] == "BadRequest")

            let unnamed = try await client.send(.POST, configMaps, json: ["metadata": [:]])
            #expect(unnamed.status == 422)
            #expect(unnamed.json["reason"] == "Invalid")

            let generated = try await client.send(.POST, configMaps, json: ["metadata": ["generateName": "gen-"]])
            #expect(generated.status == 201)
            #expect(generated.json.value(atPath: "metadata.name")?.stringValue?.hasPrefix("gen-") == true)

            let badJSON = try await client.send(.POST, configMaps, body: Data("{not json".utf8))
            #expect(badJSON.status == 400)
            #expect(badJSON.json["kind"] == "Status")

            let yaml = try await client.send(
                .POST, configMaps, body: Data("metadata: {name: y}".utf8), contentType: "application/yaml")
            #expect(yaml.status == 415)

            let huge = Data(repeating: UInt8(ascii: " "), count: 3 * 1024 * 1024 + 1)
            let tooLarge = try await client.send(.POST, configMaps, body: huge)
            #expect(tooLarge.status == 413)
            #expect(tooLarge.json["reason"] == "RequestEntityTooLarge")
            #expect(try await client.get(configMaps).status == 200, "the connection stays usable")
        }
    }

    @Test func dryRunValidatesWithoutStoring() async throws {
        try await withServer { server, client async throws in
            let before = server.currentResourceVersion
            let reply = try await client.send(.POST, "\(configMaps)?dryRun=All", json: configMap("dry"))
            #expect(reply.status == 201)
            #expect(reply.json.value(atPath: "metadata.name") == "dry")
            #expect(server.object(.configMaps, namespace: "default", name: "dry") == nil)
            #expect(server.currentResourceVersion == before)
            _ = try await client.send(.POST, configMaps, json: configMap("real"))
            let duplicate = try await client.send(.POST, "\(configMaps)?dryRun=All", json: configMap("real"))
            #expect(duplicate.status == 409, "a dry run is validated like a real create")
        }
    }

    @Test func updateConflictsOnAStaleResourceVersion() async throws {
        try await withServer { server, client async throws in
            let created = try await client.send(.POST, configMaps, json: configMap("a")).json
            var changed = created
            changed["data"] = ["k": "1"]
            let updated = try await client.send(.PUT, "\(configMaps)/a", json: changed)
            #expect(updated.status == 200)
            #expect(updated.json.value(atPath: "data.k") == "1")
            #expect(updated.json.value(atPath: "metadata.generation") == 2)

            changed["data"] = ["k": "2"]
            let stale = try await client.send(.PUT, "\(configMaps)/a", json: changed)
            #expect(stale.status == 409)
            #expect(stale.json["reason"] == "Conflict")
            #expect(
                stale.message
                    == "Operation cannot be fulfilled on configmaps \"a\": the object has been modified; please apply "
                    + "your changes to the latest version and try again")

            var unconditional = changed
            unconditional["metadata"]?["resourceVersion"] = nil
            let forced = try await client.send(.PUT, "\(configMaps)/a", json: unconditional)
            #expect(forced.status == 200)
            #expect(server.object(.configMaps, namespace: "default", name: "a")?.value(atPath: "data.k") == "2")

            let wrongName = try await client.send(.PUT, "\(configMaps)/b", json: unconditional)
            #expect(wrongName.status == 400)
            let missing = try await client.send(.PUT, "\(configMaps)/c", json: configMap("c"))
            #expect(missing.status == 404)
        }
    }

    @Test func statusSubresourceOfPods() async throws {
        try await withServer { server, client async throws in
            let pods = "/api/v1/namespaces/default/pods"
            _ = try await client.send(.POST, pods, json: pod("web"))
            let status = try await client.send(
                .PATCH, "\(pods)/web/status", json: ["status": ["phase": "Running"]],
                contentType: "application/merge-patch+json")
            #expect(status.status == 200)
            #expect(status.json.value(atPath: "status.phase") == "Running")
            let main = try await client.send(
                .PATCH, "\(pods)/web", json: ["status": ["phase": "Failed"], "metadata": ["labels": ["a": "b"]]],
                contentType: "application/merge-patch+json")
            #expect(main.json.value(atPath: "status.phase") == "Running")
            #expect(main.json.value(atPath: "metadata.labels.a") == "b")
            let noStatus = try await client.get("\(configMaps)/x/status")
            #expect(noStatus.status == 404)
            #expect(try await client.get("\(pods)/web/status").json.value(atPath: "status.phase") == "Running")
            #expect(server.object(.pods, namespace: "default", name: "web")?.value(atPath: "status.phase") == "Running")
        }
    }

    @Test func patchContentTypes() async throws {
        try await withServer { _, client async throws in
            _ = try await client.send(.POST, configMaps, json: configMap("p", data: ["a": "1"]))
            let json = try await client.send(
                .PATCH, "\(configMaps)/p",
                json: [
                    ["op": "add", "path": "/data/b", "value": "2"], ["op": "test", "path": "/data/a", "value": "1"],
                ],
                contentType: "application/json-patch+json")
            #expect(json.status == 200)
            #expect(json.json["data"] == ["a": "1", "b": "2"])

            let failedTest = try await client.send(
                .PATCH, "\(configMaps)/p", json: [["op": "test", "path": "/data/a", "value": "9"]],
                contentType: "application/json-patch+json")
            #expect(failedTest.status == 422)
            #expect(failedTest.message.contains("test failed"))

            let merge = try await client.send(
                .PATCH, "\(configMaps)/p", json: ["data": ["a": nil, "c": "3"]],
                contentType: "application/merge-patch+json")
            #expect(merge.json["data"] == ["b": "2", "c": "3"])

            let strategic = try await client.send(
                .PATCH, "\(configMaps)/p", json: ["data": ["d": "4"]],
                contentType: "application/strategic-merge-patch+json")
            #expect(strategic.status == 415)
            #expect(strategic.json["reason"] == "UnsupportedMediaType")
            #expect(strategic.message.contains("strategic merge patch"))

            let stale = try await client.send(
                .PATCH, "\(configMaps)/p", json: ["metadata": ["resourceVersion": "1"]],
                contentType: "application/merge-patch+json")
            #expect(stale.status == 409)

            let missing = try await client.send(
                .PATCH, "\(configMaps)/none", json: ["data": [:]], contentType: "application/merge-patch+json")
            #expect(missing.status == 404)
        }
    }

    @Test func deleteReturnsTheObjectAndNamespacesCascade() async throws {
        try await withServer { server, client async throws in
            _ = try await client.send(.POST, "/api/v1/namespaces", json: ["metadata": ["name": "team"]])
            let namespace = try await client.get("/api/v1/namespaces/team")
            #expect(namespace.json.value(atPath: "status.phase") == "Active")
            #expect(namespace.json.value(atPath: "metadata.labels")?["kubernetes.io/metadata.name"] == "team")

            _ = try await client.send(.POST, "/api/v1/namespaces/team/configmaps", json: configMap("inside"))
            let deleted = try await client.send(.DELETE, "/api/v1/namespaces/team/configmaps/inside")
            #expect(deleted.status == 200)
            #expect(deleted.json.value(atPath: "metadata.name") == "inside")
            #expect(try await client.send(.DELETE, "/api/v1/namespaces/team/configmaps/inside").status == 404)

            _ = try await client.send(.POST, "/api/v1/namespaces/team/configmaps", json: configMap("again"))
            #expect(try await client.send(.DELETE, "/api/v1/namespaces/team").status == 200)
            #expect(server.objects(.configMaps, namespace: "team").isEmpty)
        }
    }

    @Test func deleteCollectionWithASelector() async throws {
        try await withServer { server, client async throws in
            for (name, app) in [("a", "web"), ("b", "web"), ("c", "db")] {
                _ = try await client.send(.POST, configMaps, json: configMap(name, labels: ["app": app]))
            }
            let deleted = try await client.send(.DELETE, "\(configMaps)?labelSelector=app%3Dweb")
            #expect(deleted.status == 200)
            #expect(deleted.json["kind"] == "ConfigMapList")
            let names = deleted.json["items"]?.arrayValue?.compactMap { $0.value(atPath: "metadata.name") }
            #expect(names == ["a", "b"])
            #expect(
                server.objects(.configMaps, namespace: "default").map { $0.value(atPath: "metadata.name") } == ["c"])
        }
    }

    @Test func unknownPathsAndMethods() async throws {
        try await withServer { _, client async throws in
            let unknown = try await client.get("/api/v1/namespaces/default/widgets")
            #expect(unknown.status == 404)
            #expect(unknown.message == "the server could not find the requested resource")
            #expect(try await client.get("/apis/nothing.example.com/v1").status == 404)
            #expect(try await client.get("/api/v1/pods/x").status == 404)
            #expect(try await client.get("/nonsense").status == 404)

            let head = try await client.send(.HEAD, configMaps)
            #expect(head.status == 405)
            let options = try await client.send(.OPTIONS, configMaps)
            #expect(options.status == 405)
            #expect(options.json["reason"] == "MethodNotAllowed")
            #expect(try await client.send(.POST, "/api/v1/pods", json: pod("x")).status == 405)
            #expect(try await client.get("/apis/authentication.k8s.io/v1/tokenreviews").status == 405)
        }
    }

    @Test func directStoreAccess() async throws {
        try await withServer { server, client async throws in
            let namespace = Namespace(metadata: ObjectMeta(name: "direct", labels: ["team": "a"]))
            let stored = try server.put(namespace)
            #expect(stored.status?.phase == "Active")
            let put = try server.put(.configMaps, configMap("direct", namespace: "direct"))
            #expect(put.value(atPath: "metadata.resourceVersion")?.stringValue == "\(server.currentResourceVersion)")
            let again = try server.put(.configMaps, configMap("direct", namespace: "direct"))
            #expect(again.value(atPath: "metadata.resourceVersion") != put.value(atPath: "metadata.resourceVersion"))
            #expect(again.value(atPath: "metadata.uid") == put.value(atPath: "metadata.uid"))
            #expect(try await client.get("/api/v1/namespaces/direct/configmaps/direct").status == 200)

            #expect(throws: KubeError.self) { try server.put(.configMaps, configMap("lost", namespace: "nowhere")) }

            server.remove(.configMaps, namespace: "direct", name: "direct")
            #expect(server.object(.configMaps, namespace: "direct", name: "direct") == nil)
            server.remove(.configMaps, namespace: "direct", name: "direct")
        }
    }

    @Test func customResources() async throws {
        try await withServer { server, client async throws in
            let servers = ResourceType(
                group: "policy.linkerd.io", version: "v1beta3", plural: "servers", kind: "Server", namespaced: true)
            server.registerResource(servers, statusSubresource: true)
            let created = try await client.send(
                .POST, servers.path(namespace: "default"),
                json: ["apiVersion": "policy.linkerd.io/v1beta3", "kind": "Server", "metadata": ["name": "s"]])
            #expect(created.status == 201)
            let list = try await client.get(servers.path(namespace: "default"))
            #expect(list.json["items"]?.arrayValue?.first?["kind"] == "Server", "custom resources' items keep kind")
            #expect(try await client.get("/apis/policy.linkerd.io/v1beta3").json["resources"]?.arrayValue?.count == 2)
        }
    }
}
