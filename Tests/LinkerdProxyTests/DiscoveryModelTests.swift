import LinkerdCore
import LinkerdProxy
import LinkerdProxyAPI
import LinkerdProxyCore
import LinkerdProxyTestSupport
import Testing

/// The socket address `text`, for tables (the literals are valid).
func socketAddress(_ text: String) throws -> IPSocketAddress {
    try IPSocketAddress(parsing: text)
}

/// An endpoint at `address`, told apart from others at the same address by `weight`.
func endpoint(_ address: String, weight: UInt32 = 10_000) throws -> Endpoint {
    Endpoint(address: try socketAddress(address), weight: weight)
}

@Suite("Endpoint sets")
struct DiscoveryEndpointSetTests {
    /// One row: the updates applied in order, then the expected endpoints as `address/weight`, and status.
    struct Row: Sendable, CustomTestStringConvertible {
        let name: String
        let updates: @Sendable () throws -> [EndpointUpdate]
        let expected: [String]
        let status: EndpointSet.Status

        var testDescription: String { name }
    }

    static let rows: [Row] = [
        Row(name: "nothing applied", updates: { [] }, expected: [], status: .awaitingFirstUpdate),
        Row(
            name: "adds accumulate, ordered by address",
            updates: {
                [
                    .add([try endpoint("10.0.0.2:80"), try endpoint("[fd00::1]:80")]),
                    .add([try endpoint("10.0.0.1:81"), try endpoint("10.0.0.1:80")]),
                ]
            },
            expected: ["10.0.0.1:80/10000", "10.0.0.1:81/10000", "10.0.0.2:80/10000", "[fd00::1]:80/10000"],
            status: .resolved),
        Row(
            name: "an add replaces the endpoint at the same address",
            updates: {
                [.add([try endpoint("10.0.0.1:80", weight: 1)]), .add([try endpoint("10.0.0.1:80", weight: 2)])]
            },
            expected: ["10.0.0.1:80/2"], status: .resolved),
        Row(
            name: "remove drops by address, ignoring unknown addresses",
            updates: {
                [
                    .add([try endpoint("10.0.0.1:80"), try endpoint("10.0.0.2:80")]),
                    .remove([try socketAddress("10.0.0.1:80"), try socketAddress("10.9.9.9:80")]),
                ]
            },
            expected: ["10.0.0.2:80/10000"], status: .resolved),
        Row(
            name: "remove of the same IP on another port keeps the endpoint",
            updates: { [.add([try endpoint("10.0.0.1:80")]), .remove([try socketAddress("10.0.0.1:81")])] },
            expected: ["10.0.0.1:80/10000"], status: .resolved),
        Row(
            name: "no endpoints (exists) clears and stays resolved",
            updates: { [.add([try endpoint("10.0.0.1:80")]), .noEndpoints(exists: true)] },
            expected: [], status: .resolved),
        Row(
            name: "no endpoints (does not exist) clears and marks the name missing",
            updates: { [.add([try endpoint("10.0.0.1:80")]), .noEndpoints(exists: false)] },
            expected: [], status: .doesNotExist),
        Row(
            name: "an add after does-not-exist resolves the name again",
            updates: { [.noEndpoints(exists: false), .add([try endpoint("10.0.0.3:80")])] },
            expected: ["10.0.0.3:80/10000"], status: .resolved),
        Row(
            name: "reset replaces the whole set",
            updates: {
                [
                    .add([try endpoint("10.0.0.1:80"), try endpoint("10.0.0.2:80")]),
                    .reset([try endpoint("10.0.0.2:80", weight: 5), try endpoint("10.0.0.3:80")]),
                ]
            },
            expected: ["10.0.0.2:80/5", "10.0.0.3:80/10000"], status: .resolved),
        Row(
            name: "reset to nothing empties the set but the name exists",
            updates: { [.noEndpoints(exists: false), .reset([])] }, expected: [], status: .resolved),
    ]

    @Test("Applying updates", arguments: rows)
    func apply(row: Row) throws {
        let set = EndpointSet(applying: try row.updates())
        #expect(set.endpoints.map { "\($0.address)/\($0.weight)" } == row.expected)
        #expect(set.count == row.expected.count)
        #expect(set.isEmpty == row.expected.isEmpty)
        #expect(set.status == row.status)
    }

    @Test("Lookup by address")
    func lookup() throws {
        var set = EndpointSet()
        let web = Endpoint(address: try socketAddress("10.0.0.1:80"), tlsIdentity: "web.ns.serviceaccount.identity")
        set.apply(.add([web]))
        let webAddress = try socketAddress("10.0.0.1:80")
        let otherPort = try socketAddress("10.0.0.1:81")
        #expect(set[webAddress] == web)
        #expect(set[otherPort] == nil)
    }
}

@Suite("Endpoint stream recovery across reconnections")
struct DiscoveryStreamRecoveryTests {
    @Test("The first stream passes updates unchanged, even after an empty first stream")
    func firstStream() throws {
        var recovery = EndpointStreamRecovery()
        recovery.streamStarted()
        // A stream that delivered nothing does not make the next one a replacement.
        recovery.streamStarted()
        let add = EndpointUpdate.add([try endpoint("10.0.0.1:80")])
        #expect(recovery.deliver(add) == add)
        let remove = EndpointUpdate.remove([try socketAddress("10.0.0.1:80")])
        #expect(recovery.deliver(remove) == remove)
    }

    @Test(
        "The first update of a later stream replaces the set",
        arguments: [
            (
                "add", EndpointUpdate.add([Endpoint(address: IPSocketAddress(ip: .v4(0x0A00_0002), port: 80))]),
                EndpointUpdate.reset([Endpoint(address: IPSocketAddress(ip: .v4(0x0A00_0002), port: 80))])
            ),
            ("remove", .remove([IPSocketAddress(ip: .v4(0x0A00_0001), port: 80)]), .reset([])),
            ("no endpoints", .noEndpoints(exists: true), .noEndpoints(exists: true)),
            ("does not exist", .noEndpoints(exists: false), .noEndpoints(exists: false)),
        ] as [(String, EndpointUpdate, EndpointUpdate)])
    func reconnection(kind: String, first: EndpointUpdate, expected: EndpointUpdate) throws {
        var recovery = EndpointStreamRecovery()
        recovery.streamStarted()
        _ = recovery.deliver(.add([try endpoint("10.0.0.1:80")]))
        recovery.streamStarted()
        #expect(recovery.deliver(first) == expected, "first update: \(kind)")
        // Only the first update of the stream is turned into a replacement.
        let next = EndpointUpdate.add([try endpoint("10.0.0.3:80")])
        #expect(recovery.deliver(next) == next)
    }

    @Test("The set after a reconnection holds only what the new stream said")
    func setAfterReconnection() throws {
        var recovery = EndpointStreamRecovery()
        var set = EndpointSet()
        recovery.streamStarted()
        set.apply(recovery.deliver(.add([try endpoint("10.0.0.1:80"), try endpoint("10.0.0.2:80")])))
        recovery.streamStarted()
        // Between the reconnection and its first update, the old endpoints stay.
        #expect(set.count == 2)
        let replacement = try endpoint("10.0.0.3:80")
        set.apply(recovery.deliver(.add([replacement])))
        #expect(set.endpoints == [replacement])
    }
}

@Suite("Exponential backoff")
struct DiscoveryBackoffTests {
    @Test(
        "The schedule doubles from the minimum and stops at the maximum",
        arguments: [
            // (failures, expected base delay in milliseconds) for 100ms…60s
            (-1, 100), (0, 100), (1, 200), (2, 400), (3, 800), (9, 51_200), (10, 60_000), (11, 60_000),
            (1_000, 60_000), (Int.max, 60_000),
        ] as [(Int, Int64)])
    func schedule(failures: Int, expectedMilliseconds: Int64) {
        let backoff = ExponentialBackoff.outboundDefault
        #expect(backoff.baseDelay(afterFailures: failures) == .milliseconds(expectedMilliseconds))
        #expect(backoff.delay(afterFailures: failures, randomFraction: 0) == .milliseconds(expectedMilliseconds))
    }

    @Test(
        "Jitter adds up to jitter times the base delay",
        arguments: [
            // (jitter, random fraction, failures, expected milliseconds) for 100ms…1s
            (0.1, 1.0, 0, 110), (0.1, 0.5, 1, 210), (0.1, 1.0, 5, 1_100), (1.0, 1.0, 2, 800), (0.0, 1.0, 2, 400),
            (0.5, 2.0, 0, 150),  // the fraction is clamped to 1
            (0.5, -1.0, 0, 100),  // and to 0
        ] as [(Double, Double, Int, Int64)])
    func jitter(jitter: Double, fraction: Double, failures: Int, expectedMilliseconds: Int64) throws {
        let backoff = try ExponentialBackoff(minimum: .milliseconds(100), maximum: .seconds(1), jitter: jitter)
        #expect(
            backoff.delay(afterFailures: failures, randomFraction: fraction) == .milliseconds(expectedMilliseconds))
    }

    @Test("Random delays stay within the jitter")
    func randomDelays() {
        var generator = SystemRandomNumberGenerator()
        let backoff = ExponentialBackoff.outboundDefault
        for failures in 0..<12 {
            let base = backoff.baseDelay(afterFailures: failures)
            let delay = backoff.delay(afterFailures: failures, using: &generator)
            #expect(delay >= base && delay <= base + base * 0.1, "\(delay) after \(failures) failures")
        }
    }

    @Test("A zero minimum never waits")
    func zeroMinimum() throws {
        let backoff = try ExponentialBackoff(minimum: .zero, maximum: .seconds(1), jitter: 0.5)
        #expect(backoff.delay(afterFailures: 5, randomFraction: 1) == .zero)
    }

    @Test(
        "Invalid parameters are refused with the reason",
        arguments: [
            (-1, 1_000, 0.1, "the minimum -0.001 seconds is negative"),
            (0, 0, 0.1, "the maximum 0.0 seconds is not above zero"),
            (2_000, 1_000, 0.1, "the minimum 2.0 seconds is longer than the maximum 1.0 seconds"),
            (100, 1_000, 101, "the jitter 101.0 is not a number from 0 to 100"),
            (100, 1_000, -0.5, "the jitter -0.5 is not a number from 0 to 100"),
            (100, 1_000, .nan, "the jitter nan is not a number from 0 to 100"),
        ] as [(Int64, Int64, Double, String)])
    func invalid(minimum: Int64, maximum: Int64, jitter: Double, reason: String) {
        #expect {
            _ = try ExponentialBackoff(minimum: .milliseconds(minimum), maximum: .milliseconds(maximum), jitter: jitter)
        } throws: { error in
            (error as? ExponentialBackoff.InvalidParameters)?.reason == reason
        }
    }

    @Test("The proxy's configured backoff is used as is")
    func fromConfiguration() throws {
        let configuration = try ProxyConfiguration(
            environment: DictionaryEnvironment(
                DiscoveryTestEnvironment.minimal.merging([
                    "LINKERD2_PROXY_OUTBOUND_CONNECT_EXP_BACKOFF_MIN": "50ms",
                    "LINKERD2_PROXY_OUTBOUND_CONNECT_EXP_BACKOFF_MAX": "5s",
                    "LINKERD2_PROXY_OUTBOUND_CONNECT_EXP_BACKOFF_JITTER": "0.3",
                ]) { _, new in new }))
        let backoff = ExponentialBackoff(configuration.outbound.connect.backoff)
        let expected = try ExponentialBackoff(minimum: .milliseconds(50), maximum: .seconds(5), jitter: 0.3)
        #expect(backoff == expected)
        let client = DestinationClient.Configuration(proxyConfiguration: configuration)
        #expect(client.backoff == backoff)
        #expect(client.contextToken == #"{"ns":"emojivoto","nodeName":"node-1","pod":"web-1"}"#)
        #expect(client.address.description == "linkerd-dst-headless.linkerd.svc.cluster.local.:8086")
    }
}

/// The variables a proxy needs to start, for configuration tests.
enum DiscoveryTestEnvironment {
    static let minimal: [String: String] = [
        "LINKERD2_PROXY_DESTINATION_SVC_ADDR": "linkerd-dst-headless.linkerd.svc.cluster.local.:8086",
        "LINKERD2_PROXY_DESTINATION_SVC_NAME":
            "linkerd-destination.linkerd.serviceaccount.identity.linkerd.cluster.local",
        "LINKERD2_PROXY_DESTINATION_CONTEXT": #"{"ns":"emojivoto","nodeName":"node-1","pod":"web-1"}"#,
        "LINKERD2_PROXY_POLICY_SVC_ADDR": "linkerd-policy.linkerd.svc.cluster.local.:8090",
        "LINKERD2_PROXY_POLICY_SVC_NAME": "linkerd-destination.linkerd.serviceaccount.identity.linkerd.cluster.local",
        "LINKERD2_PROXY_POLICY_WORKLOAD": #"{"ns":"emojivoto","pod":"web-1"}"#,
        "LINKERD2_PROXY_IDENTITY_SVC_ADDR": "linkerd-identity-headless.linkerd.svc.cluster.local.:8080",
        "LINKERD2_PROXY_IDENTITY_SVC_NAME": "linkerd-identity.linkerd.serviceaccount.identity.linkerd.cluster.local",
        // Parsing only checks that a PEM certificate block is there.
        "LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS": "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n",
        "LINKERD2_PROXY_IDENTITY_LOCAL_NAME": "web.emojivoto.serviceaccount.identity.linkerd.cluster.local",
        "LINKERD2_PROXY_IDENTITY_DIR": "/var/run/linkerd/identity/end-entity",
        "LINKERD2_PROXY_IDENTITY_TOKEN_FILE": "/var/run/secrets/tokens/linkerd-identity-token",
    ]
}

@Suite("Destination messages")
struct DiscoveryMessageTests {
    let webIdentity = "web.emojivoto.serviceaccount.identity.linkerd.cluster.local"

    @Test("An add carries every endpoint field, with the address's labels over the set's")
    func add() throws {
        let meshed = try FakeDestinationServer.weightedAddr(
            "10.1.0.5:8080", weight: 7, labels: ["pod": "web-1", "service": "own"], identity: webIdentity, hint: .h2,
            opaqueTransportPort: 4143)
        let opaque = try FakeDestinationServer.weightedAddr(
            "[fd00::7]:3306", identity: webIdentity, serverName: "sni.example", hint: .opaque)
        let plain = try FakeDestinationServer.weightedAddr("192.168.0.9:80")
        let update = FakeDestinationServer.Update.add(
            [meshed, opaque, plain], setLabels: ["namespace": "emojivoto", "service": "web"])
        let labels = ["namespace": "emojivoto", "service": "web"]
        let expected = EndpointUpdate.add([
            Endpoint(
                address: try socketAddress("10.1.0.5:8080"), weight: 7,
                metricLabels: ["namespace": "emojivoto", "service": "own", "pod": "web-1"], tlsIdentity: webIdentity,
                protocolHint: .http2, opaqueTransportPort: 4143),
            Endpoint(
                address: try socketAddress("[fd00::7]:3306"), metricLabels: labels, tlsIdentity: webIdentity,
                tlsServerName: "sni.example", protocolHint: .opaque),
            Endpoint(address: try socketAddress("192.168.0.9:80"), metricLabels: labels),
        ])
        #expect(EndpointUpdate(update.message) == expected)
    }

    @Test("Addresses without an IP or with a port above 65535 are dropped")
    func unusableAddresses() throws {
        var noIP = Io_Linkerd_Proxy_Destination_WeightedAddr()
        noIP.addr.port = 80
        var bigPort = try FakeDestinationServer.weightedAddr("10.0.0.1:80")
        bigPort.addr.port = 70_000
        let good = try FakeDestinationServer.weightedAddr("10.0.0.2:80")
        let add = FakeDestinationServer.Update.add([noIP, bigPort, good]).message
        let goodEndpoint = try endpoint("10.0.0.2:80")
        #expect(EndpointUpdate(add) == .add([goodEndpoint]))
        let remove = FakeDestinationServer.Update.remove([bigPort.addr, good.addr]).message
        #expect(EndpointUpdate(remove) == .remove([goodEndpoint.address]))
    }

    @Test("No endpoints, and an update of no known kind")
    func otherUpdates() {
        #expect(
            EndpointUpdate(FakeDestinationServer.Update.noEndpoints(exists: true).message) == .noEndpoints(exists: true)
        )
        #expect(
            EndpointUpdate(FakeDestinationServer.Update.noEndpoints(exists: false).message)
                == .noEndpoints(exists: false))
        #expect(EndpointUpdate(Io_Linkerd_Proxy_Destination_Update()) == nil)
    }

    @Test("IPv6 addresses keep their 128 bits")
    func ipv6() throws {
        let address = try FakeDestinationServer.tcpAddress("[2001:db8:1:2:3:4:5:6]:443")
        let expected = try socketAddress("[2001:db8:1:2:3:4:5:6]:443")
        #expect(IPSocketAddress(address) == expected)
    }

    @Test("A profile carries its name, opaqueness, endpoint, retry budget and overrides")
    func profile() throws {
        let message = FakeDestinationServer.profile(
            fullyQualifiedName: "web.emojivoto.svc.cluster.local", opaqueProtocol: true,
            endpoint: try FakeDestinationServer.weightedAddr("10.1.0.5:8080", identity: webIdentity, hint: .h2),
            retryBudget: (ratio: 0.2, minRetriesPerSecond: 10, ttl: .seconds(10)),
            dstOverrides: [(authority: "web-v2.emojivoto.svc.cluster.local:8080", weight: 10_000)])
        let update = DestinationProfileUpdate(message)
        #expect(update.fullyQualifiedName == "web.emojivoto.svc.cluster.local")
        #expect(update.opaqueProtocol)
        let expectedEndpoint = Endpoint(
            address: try socketAddress("10.1.0.5:8080"), tlsIdentity: webIdentity, protocolHint: .http2)
        #expect(update.endpoint == expectedEndpoint)
        #expect(update.retryBudget?.retryRatio == 0.2)
        #expect(update.retryBudget?.minRetriesPerSecond == 10)
        #expect(update.retryBudget == message.retryBudget)
        #expect(update.dstOverrides.map(\.authority) == ["web-v2.emojivoto.svc.cluster.local:8080"])
        #expect(update.routes.isEmpty)

        let empty = DestinationProfileUpdate(Io_Linkerd_Proxy_Destination_DestinationProfile())
        #expect(empty == DestinationProfileUpdate())
    }
}
