import Foundation
import KubeModel
import KubeTestServer
import Testing

@Suite("discovery documents", .timeLimit(.minutes(1)))
struct DiscoveryTests {
    @Test func versionAndCoreVersions() async throws {
        try await withServer { server, client async throws in
            let version = try await client.get("/version").json
            #expect(version["gitVersion"] == "v1.31.0-linkerd-swift-test")
            #expect(version["major"] == "1")
            #expect(version["minor"] == "31")
            #expect(version["platform"] == "linux/amd64")
            let api = try await client.get("/api").json
            #expect(api["kind"] == "APIVersions")
            #expect(api["versions"] == ["v1"])
            let address = api["serverAddressByClientCIDRs"]?.arrayValue?.first?["serverAddress"]?.stringValue
            #expect(address?.hasSuffix(":\(server.port)") == true)
            #expect(try await client.get("/healthz").body == Data("ok".utf8))
        }
    }

    @Test func groupsListEveryBuiltInGroup() async throws {
        try await withServer { _, client async throws in
            let groups = try await client.get("/apis").json
            #expect(groups["kind"] == "APIGroupList")
            let names = Set(groups["groups"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? [])
            let expected = Set(ResourceType.builtIn.map(\.group).filter { !$0.isEmpty })
            #expect(names == expected)
            let apps = try await client.get("/apis/apps").json
            #expect(apps["kind"] == "APIGroup")
            #expect(apps["preferredVersion"] == ["groupVersion": "apps/v1", "version": "v1"])
            #expect(apps["versions"] == [["groupVersion": "apps/v1", "version": "v1"]])
        }
    }

    @Test func resourceListsWithSubresources() async throws {
        try await withServer { _, client async throws in
            let core = try await client.get("/api/v1").json
            #expect(core["kind"] == "APIResourceList")
            #expect(core["groupVersion"] == "v1")
            let resources = core["resources"]?.arrayValue ?? []
            let pods = try #require(resources.first { $0["name"] == "pods" })
            #expect(pods["namespaced"] == true)
            #expect(pods["kind"] == "Pod")
            #expect(pods["verbs"]?.arrayValue?.contains("watch") == true)
            #expect(resources.contains { $0["name"] == "pods/status" })
            #expect(resources.contains { $0["name"] == "namespaces" && $0["namespaced"] == false })
            #expect(!resources.contains { $0["name"] == "configmaps/status" })

            let reviews = try await client.get("/apis/authentication.k8s.io/v1").json
            let tokenReviews = try #require(reviews["resources"]?.arrayValue?.first)
            #expect(tokenReviews["name"] == "tokenreviews")
            #expect(tokenReviews["verbs"] == ["create"])

            let apps = try await client.get("/apis/apps/v1").json
            #expect(apps["groupVersion"] == "apps/v1")
            #expect(apps["resources"]?.arrayValue?.contains { $0["name"] == "deployments/status" } == true)
        }
    }
}
