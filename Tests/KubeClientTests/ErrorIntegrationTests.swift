import Foundation
import KubeClient
import KubeModel
import KubeTestServer
import LinkerdTestSupport
import Testing

@Suite("typed errors against KubeTestServer", .timeLimit(.minutes(1)))
struct ErrorIntegrationTests {
    @Test func notFound() async throws {
        try await withServerAndClient { _, client in
            let error = await expectKubeError(.notFound) {
                _ = try await client.get(ConfigMap.self, namespace: "default", name: "absent")
            }
            #expect(error?.status?.reason == "NotFound")
            #expect(error?.message.hasPrefix("GET /api/v1/namespaces/default/configmaps/absent: ") == true)
            await expectKubeError(.notFound) {
                try await client.delete(ConfigMap.self, namespace: "default", name: "absent")
            }
        }
    }

    @Test func injectedStatusCodes() async throws {
        try await withServerAndClient { server, client in
            let cases: [(Int, String, KubeError.Code)] = [
                (403, "Forbidden", .forbidden),
                (401, "Unauthorized", .unauthorized),
                (422, "Invalid", .invalid),
                (400, "BadRequest", .badRequest),
                (500, "InternalError", .server(statusCode: 500)),
                (503, "ServiceUnavailable", .server(statusCode: 503)),
            ]
            for (code, reason, expected) in cases {
                server.injectFault(
                    .status(code: code, reason: reason, message: "injected \(code)"), method: "GET",
                    pathPrefix: "/api/v1/namespaces/default/configmaps")
                let error = await expectKubeError(expected) {
                    _ = try await client.list(ConfigMap.self, namespace: "default")
                }
                #expect(error?.status?.reason == reason)
                #expect(error?.message.contains("injected \(code)") == true)
            }
            // Each fault fires once: the next request succeeds.
            _ = try await client.list(ConfigMap.self, namespace: "default")
        }
    }

    @Test func tooManyRequestsCarriesRetryAfter() async throws {
        try await withServerAndClient { server, client in
            server.injectFault(
                .status(code: 429, reason: "TooManyRequests", message: "slow down", retryAfterSeconds: 4),
                method: "POST")
            let error = await expectKubeError(.tooManyRequests) { _ = try await client.create(configMap("throttled")) }
            #expect(error?.retryAfter == .seconds(4))
            #expect(error?.isRetryable == true)
        }
    }

    @Test func garbageBodyIsADecodingError() async throws {
        try await withServerAndClient { server, client in
            _ = try await client.create(configMap("garbled"))
            server.injectFault(.garbageBody, method: "GET")
            let error = await expectKubeError(.decoding) {
                _ = try await client.get(ConfigMap.self, namespace: "default", name: "garbled")
            }
            #expect(error?.message.contains("the body starts with") == true)
        }
    }

    @Test func closedConnectionIsATransportError() async throws {
        try await withServerAndClient { server, client in
            server.injectFault(.closeConnection, method: "GET")
            let error = await expectKubeError(.transport) {
                _ = try await client.list(ConfigMap.self, namespace: "default")
            }
            #expect(error?.isRetryable == true)
            _ = try await client.list(ConfigMap.self, namespace: "default")
        }
    }

    @Test func slowResponseTimesOut() async throws {
        try await withServerAndClient(configure: { $0.requestTimeout = .milliseconds(300) }) { server, client in
            server.injectFault(.delay(.seconds(3)), method: "GET")
            await expectKubeError(.timeout) { _ = try await client.list(ConfigMap.self, namespace: "default") }
        }
    }

    @Test func oversizedResponsesAreRejected() async throws {
        try await withServerAndClient(configure: {
            $0.maximumResponseBodySize = 4096
            $0.maximumWatchEventSize = 2048
        }) { server, client in
            let stream = try await client.watch(ConfigMap.self, namespace: "default")
            for index in 0..<5 {
                _ = try await client.create(
                    configMap("big-\(index)", data: ["blob": String(repeating: "x", count: 3000)]))
            }
            let listError = await expectKubeError(.decoding) {
                _ = try await client.list(ConfigMap.self, namespace: "default")
            }
            #expect(listError?.message.contains("size limit") == true)
            let watchError = await expectKubeError(.decoding) {
                for try await _ in stream {}
            }
            #expect(watchError?.message.contains("limit of 2048 bytes") == true)
        }
    }

    @Test func unreachableServerIsATransportError() async throws {
        // Connection attempts are not retried: retrying until the request timeout would give .timeout, not .transport.
        let closed = try ClosedPort()
        let configuration = KubeClientConfiguration(
            server: "https://127.0.0.1:\(closed.port)", requestTimeout: .seconds(5))
        try await withClient(configuration) { client in
            let error = await expectKubeError(.transport) {
                _ = try await client.list(ConfigMap.self, namespace: "default")
            }
            #expect(error?.message.contains("GET /api/v1/namespaces/default/configmaps") == true)
            await expectKubeError(.transport) {
                _ = try await client.watch(ConfigMap.self, namespace: "default")
            }
        }
        withExtendedLifetime(closed) {}
    }

    @Test func untrustedServerCertificateIsATransportError() async throws {
        try await withServerAndClient { server, _ in
            let otherAuthority = try TestCertificateAuthority(commonName: "someone else")
            let configuration = KubeClientConfiguration(
                server: server.baseURL, certificateAuthorityPEM: Array(otherAuthority.certificatePEM.utf8))
            try await withClient(configuration) { client in
                await expectKubeError(.transport) { _ = try await client.list(Namespace.self) }
            }
            let insecure = KubeClientConfiguration(server: server.baseURL, insecureSkipTLSVerify: true)
            try await withClient(insecure) { client in
                let namespaces = try await client.list(Namespace.self)
                #expect(namespaces.items.isEmpty == false)
            }
        }
    }

    @Test func invalidClientConfiguration() {
        expectConfigurationError(containing: ["the server \"localhost:6443\" is not an http:// or https:// URL"]) {
            _ = try KubeClient(configuration: KubeClientConfiguration(server: "localhost:6443"))
        }
        expectConfigurationError(containing: ["the certificate authority", "PEM"]) {
            _ = try KubeClient(
                configuration: KubeClientConfiguration(server: "https://x", certificateAuthorityPEM: Array("junk".utf8))
            )
        }
        expectConfigurationError(containing: ["a client certificate is configured without its key"]) {
            let authority = try TestCertificateAuthority()
            _ = try KubeClient(
                configuration: KubeClientConfiguration(
                    server: "https://x", clientCertificatePEM: Array(authority.certificatePEM.utf8)))
        }
    }
}
