import GRPCCore
import LinkerdCore
import LinkerdProxy
import LinkerdProxyAPI
import LinkerdProxyCore
import LinkerdProxyTestSupport
import LinkerdTestSupport
import Logging
import Testing

/// What the tests' proxy sends as its context token.
let discoveryContextToken = #"{"ns":"emojivoto","nodeName":"node-1","pod":"vote-bot-5b7f5657f6-xbjjw"}"#
let webAuthority = "web-svc.emojivoto.svc.cluster.local:80"
let webPodIdentity = meshIdentity("web", "emojivoto")

/// A backoff short enough for tests on the real clock: 10 ms to 40 ms, without jitter.
func fastBackoff() throws -> ExponentialBackoff {
    try ExponentialBackoff(minimum: .milliseconds(10), maximum: .milliseconds(40), jitter: 0)
}

/// Runs a destination client connected to `server` (plaintext on loopback unless `security` says otherwise) while
/// `body` runs, then stops it. The backoff is ``fastBackoff()`` unless given.
func withDestinationClient(
    _ server: FakeDestinationServer, backoff: ExponentialBackoff? = nil, clock: any WallClock = SystemWallClock(),
    security: DestinationClient.Security = .plaintext, logger: Logger = Logger(label: "test.destination"),
    _ body: (DestinationClient) async throws -> Void
) async throws {
    let address = try #require(
        ControlPlaneAddress(host: .ip(.v4(0x7F00_0001)), port: UInt16(server.port), serverName: nil))
    let client = try DestinationClient(
        configuration: .init(
            address: address, contextToken: discoveryContextToken, backoff: try backoff ?? fastBackoff()),
        security: security, clock: clock, logger: logger)
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await client.run() }
        do {
            try await body(client)
        } catch {
            group.cancelAll()
            throw error
        }
        group.cancelAll()
        try await group.waitForAll()
    }
}

@Suite("The destination client against the fake Destination service", .timeLimit(.minutes(1)))
struct DiscoveryClientTests {
    @Test("Adds, removes and no-endpoints arrive in order, with the context token sent")
    func updatesInOrder() async throws {
        try await withFakeDestinationServer { server in
            let get = server.expectGet(path: webAuthority)
            let web1 = try FakeDestinationServer.weightedAddr(
                "10.42.0.7:8080", labels: ["pod": "web-1"], identity: webPodIdentity, hint: .h2,
                opaqueTransportPort: 4143)
            let web2 = try FakeDestinationServer.weightedAddr("[fd00::42]:8080", hint: .opaque)
            get.send(.add([web1, web2], setLabels: ["namespace": "emojivoto", "service": "web-svc"]))
            get.send(.remove([web1.addr]))
            get.send(.noEndpoints(exists: true))
            get.send(.noEndpoints(exists: false))

            try await withDestinationClient(server) { client in
                var updates = client.resolve(webAuthority).makeAsyncIterator()
                let setLabels = ["namespace": "emojivoto", "service": "web-svc"]
                let added = EndpointUpdate.add([
                    Endpoint(
                        address: try socketAddress("10.42.0.7:8080"),
                        metricLabels: setLabels.merging(["pod": "web-1"]) { $1 }, tlsIdentity: webPodIdentity,
                        protocolHint: .http2, opaqueTransportPort: 4143),
                    Endpoint(
                        address: try socketAddress("[fd00::42]:8080"), metricLabels: setLabels, protocolHint: .opaque),
                ])
                let removed = EndpointUpdate.remove([try socketAddress("10.42.0.7:8080")])
                let first = try await updates.next()
                #expect(first == added)
                let second = try await updates.next()
                #expect(second == removed)
                let third = try await updates.next()
                #expect(third == .noEndpoints(exists: true))
                let fourth = try await updates.next()
                #expect(fourth == .noEndpoints(exists: false))
            }
            let call = try #require(get.call)
            #expect(call.method == .get)
            #expect(call.path == webAuthority)
            #expect(call.contextToken == discoveryContextToken)
            #expect(call.scheme == "")
            #expect(server.unexpectedCalls.isEmpty)
            #expect(server.calls.count == 1)
        }
    }

    enum StreamEnd: String, CaseIterable, Sendable {
        case finished, unavailable, notFound, internalError
    }

    @Test(
        "When the stream ends, the client calls again and the new stream's first update replaces the set",
        arguments: StreamEnd.allCases)
    func reconnectResets(end: StreamEnd) async throws {
        try await withFakeDestinationServer { server in
            let first = server.expectGet(path: webAuthority)
            let second = server.expectGet(path: webAuthority)
            let web1 = try FakeDestinationServer.weightedAddr("10.42.0.7:8080")
            let web2 = try FakeDestinationServer.weightedAddr("10.42.0.8:8080")
            let web3 = try FakeDestinationServer.weightedAddr("10.42.0.9:8080")

            try await withDestinationClient(server) { client in
                var updates = client.resolve(webAuthority).makeAsyncIterator()
                var set = EndpointSet()
                first.send(.add([web1, web2]))
                set.apply(try #require(try await updates.next()))
                #expect(set.endpoints.map(\.address.description) == ["10.42.0.7:8080", "10.42.0.8:8080"])

                switch end {
                case .finished: first.finish()
                case .unavailable: first.fail(.unavailable)
                case .notFound: first.fail(.notFound)
                case .internalError: first.fail(.internalError)
                }
                try await second.waitForCall()
                // Until the new stream says something, the endpoints known stay.
                #expect(set.count == 2)
                second.send(.add([web2, web3]))
                let reset = try #require(try await updates.next())
                let expectedReset = EndpointUpdate.reset([
                    try endpoint("10.42.0.8:8080"), try endpoint("10.42.0.9:8080"),
                ])
                #expect(reset == expectedReset)
                set.apply(reset)
                #expect(set.endpoints.map(\.address.description) == ["10.42.0.8:8080", "10.42.0.9:8080"])
                // Later updates of the new stream are applied as they are.
                second.send(.remove([web3.addr]))
                let removal = try await updates.next()
                let expectedRemoval = EndpointUpdate.remove([try socketAddress("10.42.0.9:8080")])
                #expect(removal == expectedRemoval)
            }
            #expect(first.end == end.expected)
            let calls = server.calls
            #expect(calls.count == 2)
            #expect(calls.allSatisfy { $0.path == webAuthority && $0.contextToken == discoveryContextToken })
            #expect(server.unexpectedCalls.isEmpty)
        }
    }

    @Test("InvalidArgument is not retried: the sequence ends with the service's message")
    func invalidArgumentEnds() async throws {
        try await withFakeDestinationServer { server in
            let get = server.expectGet(path: "10.42.0.7:8080")
            get.fail(.invalidArgument, message: "IP queries not supported by Get API")
            try await withDestinationClient(server) { client in
                var updates = client.resolve("10.42.0.7:8080").makeAsyncIterator()
                await #expect(
                    throws: DestinationClientError.rejected(
                        method: "Get", path: "10.42.0.7:8080", message: "IP queries not supported by Get API")
                ) {
                    _ = try await updates.next()
                }
                // Several backoff periods later, there was still only the one call.
                try await Task.sleep(for: .milliseconds(200))
            }
            #expect(server.calls.count == 1)
        }
    }

    @Test("GetProfile for a pod's ip:port gives its endpoint; for a name, each profile replaces the last")
    func profiles() async throws {
        try await withFakeDestinationServer { server in
            let podProfile = server.expectProfile(path: "10.42.0.7:8080")
            podProfile.send(
                FakeDestinationServer.profile(
                    opaqueProtocol: true,
                    endpoint: try FakeDestinationServer.weightedAddr(
                        "10.42.0.7:8080", labels: ["pod": "web-1", "namespace": "emojivoto"],
                        identity: webPodIdentity, hint: .opaque, opaqueTransportPort: 4143),
                    retryBudget: (ratio: 0.2, minRetriesPerSecond: 10, ttl: .seconds(10))))
            let serviceProfile = server.expectProfile(path: webAuthority)
            serviceProfile.send(
                FakeDestinationServer.profile(fullyQualifiedName: "web-svc.emojivoto.svc.cluster.local"))
            serviceProfile.send(
                FakeDestinationServer.profile(
                    fullyQualifiedName: "web-svc.emojivoto.svc.cluster.local",
                    dstOverrides: [(authority: "web-svc-v2.emojivoto.svc.cluster.local:80", weight: 10_000)]))

            try await withDestinationClient(server) { client in
                var pod = client.profile("10.42.0.7:8080").makeAsyncIterator()
                let endpointProfile = try #require(try await pod.next())
                #expect(endpointProfile.fullyQualifiedName == nil)
                #expect(endpointProfile.opaqueProtocol)
                let podEndpoint = Endpoint(
                    address: try socketAddress("10.42.0.7:8080"),
                    metricLabels: ["pod": "web-1", "namespace": "emojivoto"], tlsIdentity: webPodIdentity,
                    protocolHint: .opaque, opaqueTransportPort: 4143)
                #expect(endpointProfile.endpoint == podEndpoint)
                #expect(endpointProfile.retryBudget?.retryRatio == 0.2)

                var service = client.profile(webAuthority).makeAsyncIterator()
                let initial = try #require(try await service.next())
                #expect(initial.fullyQualifiedName == "web-svc.emojivoto.svc.cluster.local")
                #expect(initial.endpoint == nil)
                #expect(initial.dstOverrides.isEmpty)
                let split = try #require(try await service.next())
                #expect(split.dstOverrides.map(\.authority) == ["web-svc-v2.emojivoto.svc.cluster.local:80"])
            }
            #expect(server.calls.map(\.method) == [.getProfile, .getProfile])
            #expect(server.calls.allSatisfy { $0.contextToken == discoveryContextToken })
            #expect(server.unexpectedCalls.isEmpty)
        }
    }

    @Test("An unexpected call is answered with an error, recorded, and retried by the client")
    func unexpectedCall() async throws {
        try await withFakeDestinationServer { server in
            try await withDestinationClient(server) { client in
                let following = Task {
                    for try await _ in client.resolve("emoji-svc.emojivoto.svc.cluster.local:8080") {}
                }
                let calls = try await server.waitForCalls(2)
                following.cancel()
                _ = await following.result
                #expect(calls.allSatisfy { !$0.wasExpected && $0.method == .get })
                #expect(calls.allSatisfy { $0.path == "emoji-svc.emojivoto.svc.cluster.local:8080" })
                #expect(server.unexpectedCalls.count >= 2)
            }
        }
    }

    @Test("An unexpected profile lookup answered with InvalidArgument means no profile")
    func unexpectedProfileRejected() async throws {
        try await withFakeDestinationServer(unexpectedCallCode: .invalidArgument) { server in
            try await withDestinationClient(server) { client in
                var profiles = client.profile("10.42.0.99:80").makeAsyncIterator()
                do {
                    _ = try await profiles.next()
                    Issue.record("the profile sequence did not fail")
                } catch let DestinationClientError.rejected(method, path, message) {
                    #expect(method == "GetProfile")
                    #expect(path == "10.42.0.99:80")
                    #expect(message.contains("unexpected GetProfile \"10.42.0.99:80\""), "\(message)")
                }
            }
            #expect(server.unexpectedCalls.map(\.path) == ["10.42.0.99:80"])
        }
    }

    @Test("The client waits min·2ⁿ between attempts, up to the maximum, and starts over after a message")
    func backoffSchedule() async throws {
        let clock = ManualClock()
        let backoff = try ExponentialBackoff(minimum: .milliseconds(100), maximum: .milliseconds(400), jitter: 0)
        try await withFakeDestinationServer { server in
            let failing = (0..<5).map { _ in server.expectGet(path: webAuthority) }
            for stream in failing {
                stream.fail(.unavailable)
            }
            let delivering = server.expectGet(path: webAuthority)
            let afterMessage = server.expectGet(path: webAuthority)

            try await withDestinationClient(server, backoff: backoff, clock: clock) { client in
                let following = Task { for try await _ in client.resolve(webAuthority) {} }
                try await failing[0].waitForCall()
                // After failures 1…5 the waits are 100, 200, 400, 400, 400 ms.
                for (index, expectedWait) in [100, 200, 400, 400, 400].enumerated() {
                    try await clock.waitForSleepers(atLeast: 1)
                    clock.advance(by: .milliseconds(expectedWait - 1))
                    #expect(clock.sleeperCount == 1, "the wait after failure \(index + 1) was under \(expectedWait) ms")
                    clock.advance(by: .milliseconds(1))
                    let next = index + 1 < failing.count ? failing[index + 1] : delivering
                    try await next.waitForCall()
                }
                // A stream that delivered a message (read before its failure status) resets the backoff.
                delivering.send(.noEndpoints(exists: true))
                delivering.fail(.unavailable)
                try await clock.waitForSleepers(atLeast: 1)
                clock.advance(by: .milliseconds(99))
                #expect(clock.sleeperCount == 1, "the wait after a delivering stream was under 100 ms")
                clock.advance(by: .milliseconds(1))
                try await afterMessage.waitForCall()
                following.cancel()
                _ = await following.result
            }
            #expect(server.calls.count == 7)
        }
    }

    @Test("Cancelling the consumer cancels the open call, and no reconnection follows")
    func cancellationWhileOpen() async throws {
        let clock = ManualClock()
        try await withFakeDestinationServer { server in
            let get = server.expectGet(path: webAuthority)
            get.send(.noEndpoints(exists: true))
            try await withDestinationClient(server, clock: clock) { client in
                let following = Task {
                    var received: [EndpointUpdate] = []
                    for try await update in client.resolve(webAuthority) {
                        received.append(update)
                    }
                    return received
                }
                try await get.waitForCall()
                following.cancel()
                let received = try await following.value
                #expect(received.count <= 1)
                let end = try await get.waitForEnd()
                #expect(end == .cancelledByClient)
                clock.advance(by: .seconds(120))
                try await Task.sleep(for: .milliseconds(100))
                #expect(clock.sleeperCount == 0)
            }
            #expect(server.calls.count == 1)
        }
    }

    @Test("Cancelling the consumer during the backoff stops reconnecting")
    func cancellationWhileBackingOff() async throws {
        let clock = ManualClock()
        try await withFakeDestinationServer { server in
            let get = server.expectGet(path: webAuthority)
            get.finish()
            try await withDestinationClient(server, clock: clock) { client in
                let following = Task { for try await _ in client.resolve(webAuthority) {} }
                try await clock.waitForSleepers(atLeast: 1)
                following.cancel()
                // The sequence ends without an error, and the sleep is abandoned.
                try await following.value
                try await eventually("the backoff sleep was cancelled") { clock.sleeperCount == 0 }
                clock.advance(by: .seconds(120))
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(server.calls.count == 1)
            #expect(server.unexpectedCalls.isEmpty)
        }
    }

    @Test("When the client stops, open sequences end with `stopped`, and later ones at once")
    func clientStops() async throws {
        try await withFakeDestinationServer { server in
            let get = server.expectGet(path: webAuthority)
            let address = try #require(
                ControlPlaneAddress(host: .ip(.v4(0x7F00_0001)), port: UInt16(server.port), serverName: nil))
            let client = try DestinationClient(
                configuration: .init(address: address, contextToken: discoveryContextToken, backoff: try fastBackoff()),
                security: .plaintext, logger: Logger(label: "test.destination"))
            let running = Task { try await client.run() }
            var updates = client.resolve(webAuthority).makeAsyncIterator()
            try await get.waitForCall()
            running.cancel()
            try await running.value
            await #expect(throws: DestinationClientError.stopped(method: "Get", path: webAuthority)) {
                _ = try await updates.next()
            }
            var later = client.profile(webAuthority).makeAsyncIterator()
            await #expect(throws: DestinationClientError.stopped(method: "GetProfile", path: webAuthority)) {
                _ = try await later.next()
            }
        }
    }

    @Test("Plaintext is refused to an address that is not loopback")
    func plaintextNeedsLoopback() throws {
        let address = try #require(
            ControlPlaneAddress(
                host: .name("linkerd-dst-headless.linkerd.svc.cluster.local."), port: 8086,
                serverName: try TLSServerName(
                    parsing: "linkerd-destination.linkerd.serviceaccount.identity.linkerd.cluster.local")))
        #expect(
            throws: DestinationClientError.invalidConfiguration(
                "plaintext is allowed only to a loopback address (127.0.0.0/8, ::1, localhost), not to "
                    + "linkerd-dst-headless.linkerd.svc.cluster.local.:8086")
        ) {
            _ = try DestinationClient(
                configuration: .init(address: address, backoff: .outboundDefault), security: .plaintext,
                logger: Logger(label: "test.destination"))
        }
    }
}

extension DiscoveryClientTests.StreamEnd {
    /// How the fake server records the end.
    var expected: ExpectedStream<Io_Linkerd_Proxy_Destination_Update>.End {
        switch self {
        case .finished: .finished
        case .unavailable: .failed(.unavailable)
        case .notFound: .failed(.notFound)
        case .internalError: .failed(.internalError)
        }
    }
}
