import GRPCCore
import LinkerdCore
import LinkerdProxy
import LinkerdProxyCore
import LinkerdProxyTestSupport
import LinkerdTestSupport
import Logging
import NIOCore
import NIOHTTP1
import Testing

/// The outbound proxy with its discovery (``DiscoveryResolver``) against the fake Destination service: the original
/// destination's profile names a service, whose `Get` stream gives the endpoints requests are balanced over.
@Suite("Outbound discovery through the Destination service", .serialized, .timeLimit(.minutes(1)))
struct OutboundDiscoveryTests {
    let serviceName = "api.emojivoto.svc.cluster.local"

    private func withDiscoveringProxy(
        originalDestination: SocketAddress, _ server: FakeDestinationServer,
        _ body: (_ port: Int, _ metrics: ProxyMetricsRegistry) async throws -> Void
    ) async throws {
        let metrics = ProxyMetricsRegistry()
        try await withDestinationClient(server) { client in
            let discovery = DiscoveryResolver(
                destination: client,
                settings: DiscoveryResolver.Settings(
                    profileNetworks: [try CIDR(parsing: "127.0.0.0/8")],
                    profileSuffixes: [try DNSSuffix(parsing: "svc.cluster.local.")], failfastTimeout: .seconds(2)),
                metrics: metrics, logger: Logger(label: "test.discovery"))
            let proxy = OutboundProxy(
                settings: OutboundProxy.Settings(
                    listenAddress: try SocketAddress(ipAddress: "127.0.0.1", port: 0),
                    originalDestination: .fixed(originalDestination)),
                resolver: discovery, credentials: try uncertifiedCredentials(meshIdentity("web", "emojivoto")),
                metrics: metrics, logger: Logger(label: "test.outbound"))
            try await whileServing({ try await proxy.run() }, bound: { try await proxy.waitUntilBound() }) { port in
                try await body(port, metrics)
            }
        }
    }

    @Test("A Service IP resolves to its name; requests reach its endpoints, which a reconnection's first update resets")
    func serviceEndpointsResetOnReconnect() async throws {
        let first = try await TestHTTPApp.start()
        let second = try await TestHTTPApp.start()
        // The "ClusterIP" is the first application's address: discovery, not the address, decides where requests go.
        let clusterIP = try first.address
        let authority = "\(serviceName):\(first.port)"
        try await withFakeDestinationServer { server in
            let profile = server.expectProfile(path: "127.0.0.1:\(first.port)")
            profile.send(FakeDestinationServer.profile(fullyQualifiedName: serviceName + "."))
            let get = server.expectGet(path: authority)
            let afterReconnect = server.expectGet(path: authority)
            get.send(
                .add(
                    [try FakeDestinationServer.weightedAddr("127.0.0.1:\(first.port)", labels: ["pod": "api-1"])],
                    setLabels: ["namespace": "emojivoto", "service": "api"]))
            try await withDiscoveringProxy(originalDestination: clusterIP, server) { port, metrics in
                let url = "http://127.0.0.1:\(port)/via-discovery"
                #expect(try await curl(["--http1.1"], url: url).status == 200)
                #expect(first.requests.count == 1)

                get.fail(.unavailable)
                try await afterReconnect.waitForCall()
                afterReconnect.send(
                    .add([try FakeDestinationServer.weightedAddr("127.0.0.1:\(second.port)", labels: ["pod": "api-2"])])
                )
                try await eventually("requests go to the endpoint the new stream gave") {
                    (try? await curl(["--http1.1"], url: url).header("x-seen-uri")) != nil && second.requests.count > 0
                }
                let before = first.requests.count
                for _ in 0..<3 {
                    #expect(try await curl(["--http1.1"], url: url).status == 200)
                }
                #expect(first.requests.count == before)

                let scrape = metrics.render()
                #expect(scrape.contains(#"request_total{direction="outbound",authority="\#(authority)""#))
                #expect(scrape.contains(#"dst_pod="api-2""#))
                #expect(scrape.contains(#"dst_namespace="emojivoto""#))
                #expect(scrape.contains(#"status_code="200",classification="success"} "#))
            }
        }
        await first.close()
        await second.close()
    }

    @Test("Without a profile, connections go to their original destination")
    func noProfileFallsBack() async throws {
        let app = try await TestHTTPApp.start()
        try await withFakeDestinationServer(unexpectedCallCode: .invalidArgument) { server in
            try await withDiscoveringProxy(originalDestination: try app.address, server) { port, _ in
                let result = try await curl(["--http1.1"], url: "http://127.0.0.1:\(port)/direct")
                #expect(result.status == 200)
                #expect(app.requests.map(\.head.uri) == ["/direct"])
            }
        }
        await app.close()
    }
}
