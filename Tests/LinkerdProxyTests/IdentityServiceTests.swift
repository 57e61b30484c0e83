import Foundation
import LinkerdCore
import LinkerdProxy
import LinkerdProxyCore
import LinkerdTestSupport
import Logging
import NIOCore
import Testing
import X509

@Suite("The proxy's identity task on an injected clock", .tags(.realIdentityServer), .timeLimit(.minutes(1)))
struct IdentityServiceTests {
    let name = meshIdentity("web", "emojivoto")

    @Test("Refreshes at 70% of the certificate's remaining life and swaps the credentials new connections use")
    func refreshes() async throws {
        let pki = try IdentityTestPKI()
        try await withIdentityServer(pki) { server in
            server.registerToken("web-token", serviceAccount: "web", namespace: "emojivoto")
            let clock = ManualClock(start: Date())
            let proxy = try server.proxy(name, token: "web-token", clock: clock)
            let logs = Locked<[(level: Logger.Level, message: String)]>([])
            let service = IdentityService(
                client: proxy.client, credentials: proxy.credentials, clock: clock,
                logger: Logger(label: "test.proxy-identity") { _ in RecordingLogHandler(records: logs) })
            let credentials = proxy.credentials
            try await withTLSIdentityServer({ pipeline in
                // Each connection gets the credentials current when it is accepted.
                guard let configuration = credentials.serverConfiguration() else { throw CancellationError() }
                try configuration.addHandlers(to: pipeline)
            }) { tlsServer in
                let port = tlsServer.port
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await service.run() }
                    let first = try await credentials.waitUntilCertified()
                    try await clock.waitForSleepers(atLeast: 1)
                    #expect(logs.value.map(\.message) == ["Certified identity"])
                    #expect(try await servedSerial(credentials, port: port) == first.identity.leaf.serialNumber)

                    let delay = IdentityRefreshSchedule.standard.refreshDelay(
                        expiry: first.validUntil, now: clock.now())
                    #expect(delay > .seconds(16 * 3600) && delay < .seconds(17 * 3600), "\(delay)")
                    clock.advance(by: delay - .seconds(1))
                    try await Task.sleep(for: .milliseconds(50))
                    #expect(clock.sleeperCount == 1, "the refresh came early")
                    #expect(credentials.current?.identity.leaf.serialNumber == first.identity.leaf.serialNumber)

                    clock.advance(by: .seconds(1))
                    try await eventually("a refreshed certificate") {
                        credentials.current?.identity.leaf.serialNumber != first.identity.leaf.serialNumber
                    }
                    let second = try #require(credentials.current)
                    try await clock.waitForSleepers(atLeast: 1)
                    #expect(logs.value.map(\.message) == ["Certified identity", "Certified identity"])
                    #expect(second.identity.leaf.publicKey == first.identity.leaf.publicKey)
                    // The snapshot taken before is untouched (connections holding it keep it); new ones get the new.
                    #expect(first.identity.leaf.serialNumber != second.identity.leaf.serialNumber)
                    #expect(try await servedSerial(credentials, port: port) == second.identity.leaf.serialNumber)
                    group.cancelAll()
                    try await group.waitForAll()
                }
            }
        }
    }

    @Test("Failures are logged and retried after 10 s until a certificate comes; readiness waits for it")
    func retriesUntilCertified() async throws {
        let pki = try IdentityTestPKI()
        try await withIdentityServer(pki) { server in
            server.registerToken("web-token", serviceAccount: "web", namespace: "emojivoto")
            let clock = ManualClock(start: Date())
            let proxy = try server.proxy(name, token: "not-yet-valid", clock: clock)
            let logs = Locked<[(level: Logger.Level, message: String)]>([])
            let service = IdentityService(
                client: proxy.client, credentials: proxy.credentials, clock: clock,
                logger: Logger(label: "test.proxy-identity") { _ in RecordingLogHandler(records: logs) })
            try await withThrowingTaskGroup(of: Void.self) { group in
                let ready = Locked(false)
                group.addTask {
                    _ = try await proxy.credentials.waitUntilCertified()
                    ready.withLock { $0 = true }
                }
                group.addTask { try await service.run() }
                try await clock.waitForSleepers(atLeast: 1)
                #expect(logs.value.map(\.message) == ["Failed to obtain identity"])
                #expect(logs.value.first?.level == .error)
                #expect(proxy.credentials.current == nil && !ready.value)

                try proxy.writeToken("web-token")
                clock.advance(by: .seconds(9))
                try await Task.sleep(for: .milliseconds(50))
                #expect(clock.sleeperCount == 1 && proxy.credentials.current == nil)
                clock.advance(by: .seconds(1))
                try await eventually("readiness") { ready.value }
                #expect(logs.value.map(\.message) == ["Failed to obtain identity", "Certified identity"])
                group.cancelAll()
                try await group.waitForAll()
            }
        }
    }

    @Test("Readiness waiters are released on cancellation")
    func readinessCancellation() async throws {
        let directory = try IdentityTemporaryDirectory()
        let files = try IdentityFiles.prepare(directory: directory.path, localName: name)
        let credentials = ProxyCredentials(files: files, trustAnchors: try IdentityTestPKI().trustAnchors())
        let waiter = Task { try await credentials.waitUntilCertified() }
        waiter.cancel()
        await #expect(throws: CancellationError.self) { try await waiter.value }
        #expect(credentials.expiry == nil)
    }

    /// The serial of the certificate the server on `port` presents to a client of `credentials` (dialling itself).
    private func servedSerial(_ credentials: ProxyCredentials, port: Int) async throws -> Certificate.SerialNumber? {
        let client = try #require(credentials.clientConfiguration(expectedIdentity: name))
        let outcome = try await connectTLS(port: port) { try client.addHandlers(to: $0) }
        #expect(outcome.error == nil)
        #expect(outcome.received == name)
        return outcome.verifiedPeerLeaf?.serialNumber
    }
}
