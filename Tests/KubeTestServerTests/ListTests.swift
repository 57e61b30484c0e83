import Foundation
import KubeModel
import KubeTestServer
import NIOHTTP1
import Testing

@Suite("lists: selectors and pagination", .timeLimit(.minutes(1)))
struct ListTests {
    let configMaps = "/api/v1/namespaces/default/configmaps"

    func names(_ list: JSONValue) -> [String] {
        list["items"]?.arrayValue?.compactMap { $0.value(atPath: "metadata.name")?.stringValue } ?? []
    }

    @Test func listDocumentShape() async throws {
        try await withServer { server, client async throws in
            _ = try await client.send(.POST, configMaps, json: configMap("a"))
            let list = try await client.get(configMaps)
            #expect(list.status == 200)
            #expect(list.json["kind"] == "ConfigMapList")
            #expect(list.json["apiVersion"] == "v1")
            #expect(
                list.json.value(atPath: "metadata.resourceVersion")?.stringValue == "\(server.currentResourceVersion)")
            let item = try #require(list.json["items"]?.arrayValue?.first)
            #expect(item["kind"] == nil, "built-in list items carry no type meta")
            #expect(item["apiVersion"] == nil)

            let deployments = try await client.get("/apis/apps/v1/deployments")
            #expect(deployments.json["kind"] == "DeploymentList")
            #expect(deployments.json["apiVersion"] == "apps/v1")
            #expect(deployments.json["items"] == [])
        }
    }

    @Test func labelAndFieldSelectors() async throws {
        try await withServer { _, client async throws in
            _ = try await client.send(.POST, "/api/v1/namespaces", json: ["metadata": ["name": "other"]])
            let objects: [(String, String, [String: String])] = [
                ("default", "web-1", ["app": "web", "tier": "front"]),
                ("default", "web-2", ["app": "web"]),
                ("default", "db", ["app": "db"]),
                ("other", "web-3", ["app": "web"]),
            ]
            for (namespace, name, labels) in objects {
                _ = try await client.send(
                    .POST, "/api/v1/namespaces/\(namespace)/configmaps", json: configMap(name, labels: labels))
            }
            #expect(names(try await client.get("\(configMaps)?labelSelector=app%3Dweb").json) == ["web-1", "web-2"])
            #expect(
                names(try await client.get("/api/v1/configmaps?labelSelector=app%3Dweb").json) == [
                    "web-1", "web-2", "web-3",
                ])
            #expect(names(try await client.get("\(configMaps)?labelSelector=app%20in%20(db)%2C!tier").json) == ["db"])
            #expect(names(try await client.get("\(configMaps)?labelSelector=tier").json) == ["web-1"])
            #expect(
                names(try await client.get("/api/v1/configmaps?fieldSelector=metadata.namespace%3Dother").json) == [
                    "web-3"
                ])
            #expect(
                names(try await client.get("\(configMaps)?fieldSelector=metadata.name!%3Ddb").json) == [
                    "web-1", "web-2",
                ])
            let invalid = try await client.get("\(configMaps)?labelSelector=app%20in%20web")
            #expect(invalid.status == 400)
            #expect(invalid.json["reason"] == "BadRequest")
        }
    }

    @Test func limitAndContinue() async throws {
        try await withServer { _, client async throws in
            for name in ["e", "c", "a", "d", "b"] {
                _ = try await client.send(.POST, configMaps, json: configMap(name))
            }
            let first = try await client.get("\(configMaps)?limit=2").json
            #expect(names(first) == ["a", "b"])
            #expect(first.value(atPath: "metadata.remainingItemCount") == 3)
            let token = try #require(first.value(atPath: "metadata.continue")?.stringValue)
            let escaped = token.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? token
            let second = try await client.get("\(configMaps)?limit=2&continue=\(escaped)").json
            #expect(names(second) == ["c", "d"])
            #expect(second.value(atPath: "metadata.resourceVersion") == first.value(atPath: "metadata.resourceVersion"))
            let next = try #require(second.value(atPath: "metadata.continue")?.stringValue)
            let last = try await client.get(
                "\(configMaps)?limit=2&continue=\(next.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)"
            ).json
            #expect(names(last) == ["e"])
            #expect(last.value(atPath: "metadata.continue") == nil)
            #expect(last.value(atPath: "metadata.remainingItemCount") == nil)

            let selected = try await client.get("\(configMaps)?limit=1&labelSelector=").json
            #expect(selected.value(atPath: "metadata.remainingItemCount") == 4)
            let garbage = try await client.get("\(configMaps)?limit=2&continue=garbage")
            #expect(garbage.status == 400)
        }
    }

    @Test func continueTokenFromBeforeExpiryIsGone() async throws {
        try await withServer { server, client async throws in
            for name in ["a", "b", "c"] {
                _ = try await client.send(.POST, configMaps, json: configMap(name))
            }
            let first = try await client.get("\(configMaps)?limit=1").json
            let token = try #require(first.value(atPath: "metadata.continue")?.stringValue)
            server.expireWatches()
            let expired = try await client.get(
                "\(configMaps)?limit=1&continue=\(token.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)")
            #expect(expired.status == 410)
            #expect(expired.json["reason"] == "Expired")
            let fresh = try await client.get("\(configMaps)?limit=1")
            #expect(fresh.status == 200)
        }
    }
}
