import Foundation
import KubeModel
import KubeTestServer
import NIOHTTP1
import Testing

@Suite("injected faults", .timeLimit(.minutes(1)))
struct FaultTests {
    let configMaps = "/api/v1/namespaces/default/configmaps"

    @Test func statusWithRetryAfter() async throws {
        try await withServer { server, client async throws in
            server.injectFault(
                .status(code: 429, reason: "TooManyRequests", message: "slow down", retryAfterSeconds: 2),
                method: "get", pathPrefix: "/api/v1/namespaces/default", count: 2)
            for _ in 0..<2 {
                let throttled = try await client.get(configMaps)
                #expect(throttled.status == 429)
                #expect(throttled.headers.first(name: "retry-after") == "2")
                #expect(throttled.json["reason"] == "TooManyRequests")
                #expect(throttled.json.value(atPath: "details.retryAfterSeconds") == 2)
                #expect(throttled.message == "slow down")
            }
            #expect(try await client.get(configMaps).status == 200)
            #expect(server.requestLog.count == 3)
        }
    }

    @Test func faultsMatchMethodAndPath() async throws {
        try await withServer { server, client async throws in
            server.injectFault(.status(code: 500, reason: "InternalError", message: "boom"), method: "POST")
            #expect(try await client.get(configMaps).status == 200)
            #expect(try await client.get("/api/v1/namespaces").status == 200)
            #expect(try await client.send(.POST, configMaps, json: configMap("a")).status == 500)
            #expect(try await client.send(.POST, configMaps, json: configMap("a")).status == 201)
        }
    }

    @Test func garbageBody() async throws {
        try await withServer { server, client async throws in
            server.injectFault(.garbageBody)
            let reply = try await client.get(configMaps)
            #expect(reply.status == 200)
            #expect(reply.headers.first(name: "content-type") == "application/json")
            #expect((try? JSONValue(json: reply.body)) == nil)
        }
    }

    @Test func closeConnection() async throws {
        try await withServer { server, client async throws in
            server.injectFault(.closeConnection)
            await #expect(throws: (any Error).self) { _ = try await client.get(configMaps) }
            #expect(try await client.get(configMaps).status == 200)
        }
    }

    @Test func delay() async throws {
        try await withServer { server, client async throws in
            server.injectFault(.delay(.milliseconds(400)))
            let started = ContinuousClock.now
            #expect(try await client.get(configMaps).status == 200)
            #expect(started.duration(to: .now) >= .milliseconds(400))
        }
    }
}
