import Foundation
import GRPCCore
import KubeTestServer
import LinkerdController
import LinkerdIdentity
import LinkerdIdentityServer
import LinkerdTestSupport
import NIOCore
import NIOPosix
import NIOSSL
import Testing
import X509

@Suite("linkerd-identity: the startup permission check, readiness, an expiring issuer, TLS 1.3, self-renewal")
struct StartupAndLifecycleTests {
    static let permissionMessage =
        "linkerd-identity may not create tokenreviews.authentication.k8s.io: check its ClusterRole"

    @Test("A denied SelfSubjectAccessReview for creating TokenReviews stops the service before it binds")
    func permissionDenied() async throws {
        let root = try MintedCA.root()
        let files = try IdentityFiles(anchor: root)
        try files.writeIssuer(try root.sign())
        let failure = try await withIdentityController(
            files: files, prepare: { $0.denyAccess(verb: "create", resource: "tokenreviews", namespace: nil) }
        ) { _, controller in
            let error = await #expect(throws: TokenReviewPermissionError.self) {
                try await controller.server.waitUntilBound()
            }
            #expect(error == .denied(reason: "denied by KubeTestServer"))
            #expect(!controller.server.isServing)
        }
        let error = try #require(failure as? TokenReviewPermissionError)
        #expect(error.description.hasPrefix(Self.permissionMessage), "\(error)")
    }

    @Test("A denial of another permission does not stop it")
    func otherDenialIgnored() async throws {
        let root = try MintedCA.root()
        let files = try IdentityFiles(anchor: root)
        try files.writeIssuer(try root.sign())
        let failure = try await withIdentityController(
            files: files, prepare: { $0.denyAccess(verb: "create", resource: "secrets", namespace: nil) }
        ) { _, controller in
            _ = try await controller.server.waitUntilBound()
        }
        #expect(failure == nil)
    }

    @Test("An API error during the check is retried with backoff; it serves once a review answers")
    func permissionCheckRetried() async throws {
        let root = try MintedCA.root()
        let files = try IdentityFiles(anchor: root)
        try files.writeIssuer(try root.sign())
        let failure = try await withIdentityController(
            files: files,
            prepare: {
                $0.injectFault(
                    .status(code: 500, reason: "InternalError", message: "etcd is down"), method: "POST",
                    pathPrefix: "/apis/authorization.k8s.io", count: 2)
            }
        ) { api, controller in
            let port = try await controller.server.waitUntilBound()
            let fixture = IdentityFixture(
                api: api, controller: controller, files: files, port: port,
                adminPort: try await controller.admin.waitUntilBound())
            fixture.registerToken("web-token", serviceAccount: "web", namespace: "emojivoto")
            let name = identity("web", "emojivoto")
            _ = try await fixture.certify(
                certifyRequest(
                    identity: name, token: "web-token", csr: try makeCSR(commonName: name, names: [.dnsName(name)])))
        }
        #expect(failure == nil)
    }

    @Test("An API that keeps failing the check makes the service fail after the last attempt")
    func permissionCheckGivesUp() async throws {
        let root = try MintedCA.root()
        let files = try IdentityFiles(anchor: root)
        try files.writeIssuer(try root.sign())
        let failure = try await withIdentityController(
            files: files,
            prepare: {
                $0.injectFault(
                    .status(code: 500, reason: "InternalError", message: "etcd is down"), method: "POST",
                    pathPrefix: "/apis/authorization.k8s.io", count: 3)
            }
        ) { _, controller in
            await #expect(throws: TokenReviewPermissionError.self) { try await controller.server.waitUntilBound() }
        }
        let error = try #require(failure as? TokenReviewPermissionError)
        guard case .unreachable(let attempts, let lastError) = error else {
            Issue.record("expected unreachable, got \(error)")
            return
        }
        #expect(attempts == 3)
        #expect(lastError.contains("etcd is down"), "\(lastError)")
    }

    @Test("/ready answers 500 while the check retries, then 200 ok once the server serves")
    func readiness() async throws {
        let root = try MintedCA.root()
        let files = try IdentityFiles(anchor: root)
        try files.writeIssuer(try root.sign())
        let clock = ManualClock(start: Date())
        try await withIdentityController(
            files: files, clock: clock,
            prepare: {
                $0.injectFault(
                    .status(code: 503, reason: "ServiceUnavailable", message: "not now"), method: "POST",
                    pathPrefix: "/apis/authorization.k8s.io", count: 1)
            },
            configure: { $0.permissionCheck = .init(attempts: 3, initialDelay: .seconds(5)) }
        ) { _, controller in
            let adminPort = try await controller.admin.waitUntilBound()
            // The issuer watcher's poll and the check's retry both wait on the clock.
            try await clock.waitForSleepers(atLeast: 2)
            #expect(controller.authority.issuer != nil)
            #expect(!controller.server.isServing)
            let before = try adminGet(port: adminPort, "/ready")
            #expect(before.status == 500, "\(before)")
            #expect(try adminGet(port: adminPort, "/ping").status == 200)

            clock.advance(by: .seconds(5))
            _ = try await controller.server.waitUntilBound()
            let after = try adminGet(port: adminPort, "/ready")
            #expect(after.status == 200, "\(after)")
            #expect(after.body.trimmingCharacters(in: .whitespacesAndNewlines) == "ok")
        }
    }

    @Test("An issuer that expired since it was loaded: unknown, and one IssuerValidationFailed event per interval")
    func expiredIssuer() async throws {
        let root = try MintedCA.root()
        let files = try IdentityFiles(anchor: root)
        try files.writeIssuer(try root.sign(notAfter: Date() + 3600))
        let clock = ManualClock(start: Date())
        // Plaintext: the serving certificate, clamped to the issuer, would expire with it.
        try await withIdentityService(
            files: files, clock: clock,
            configure: {
                $0.plaintext = true
                $0.certify.issuerWarningInterval = .seconds(60)
            }
        ) { fixture in
            fixture.registerToken("web-token", serviceAccount: "web", namespace: "emojivoto")
            let name = identity("web", "emojivoto")
            let request = certifyRequest(
                identity: name, token: "web-token", csr: try makeCSR(commonName: name, names: [.dnsName(name)]))
            _ = try await fixture.certify(request)
            let warnings = { fixture.eventReasons().filter { $0 == "IssuerValidationFailed" }.count }
            #expect(warnings() == 0)

            clock.advance(by: .seconds(2 * 3600))
            for _ in 0..<2 {
                let error = await rpcError { try await fixture.certify(request) }
                #expect(error?.code == .unknown, "\(String(describing: error))")
                #expect(
                    error?.message.hasPrefix("issuer certificate is not valid: ") == true,
                    "\(String(describing: error))")
                #expect(error?.message.contains("expired") == true, "\(String(describing: error))")
            }
            // The event is recorded before the call answers; the second failure is within the interval.
            #expect(warnings() == 1)

            clock.advance(by: .seconds(61))
            _ = await rpcError { try await fixture.certify(request) }
            #expect(warnings() == 2)
        }
    }

    @Test("A TLS 1.2 client is closed before any HTTP/2 exchange; a TLS 1.3 client gets its SETTINGS acknowledged")
    func tls12Refused() async throws {
        let root = try MintedCA.root()
        let files = try IdentityFiles(anchor: root)
        try files.writeIssuer(try root.sign())
        try await withIdentityService(files: files) { fixture in
            let modern = try await HTTP2Probe.run(port: fixture.port, anchor: root, maximumTLSVersion: .tlsv13)
            #expect(modern == .acknowledged)
            let old = try await HTTP2Probe.run(port: fixture.port, anchor: root, maximumTLSVersion: .tlsv12)
            #expect(old == .closed)
        }
    }

    @Test("The serving certificate is renewed at 70% of its lifetime on the injected clock, not before")
    func selfRenewal() async throws {
        let root = try MintedCA.root()
        let files = try IdentityFiles(anchor: root)
        try files.writeIssuer(try root.sign())
        let clock = ManualClock(start: Date())
        try await withIdentityService(files: files, clock: clock) { fixture in
            let certificate = fixture.controller.server.certificate
            let first = try #require(certificate.issued)
            let lifetime = first.leaf.notValidAfter.timeIntervalSince(first.leaf.notValidBefore)
            #expect(abs(first.renewAt.timeIntervalSince(first.leaf.notValidBefore) - 0.7 * lifetime) < 1)

            // The renewal loop and the issuer watcher wait on the clock.
            try await clock.waitForSleepers(atLeast: 2)
            let untilRenewal = first.renewAt.timeIntervalSince(clock.now())
            clock.advance(by: .seconds(untilRenewal - 60))
            try await clock.waitForSleepers(atLeast: 2)
            #expect(certificate.issued?.leaf.serialNumber == first.leaf.serialNumber)

            clock.advance(by: .seconds(120))
            try await eventually("a renewed certificate") {
                certificate.issued?.leaf.serialNumber != first.leaf.serialNumber
            }
            let second = try #require(certificate.issued)
            #expect(second.leaf.notValidBefore > first.leaf.notValidBefore + 0.6 * lifetime)
            #expect(second.renewAt > first.renewAt)
            #expect(second.leaf.subject == first.leaf.subject)
        }
    }
}

/// A raw TLS + HTTP/2 client: it sends the connection preface and an empty SETTINGS frame, and reports whether the
/// server acknowledged the SETTINGS or closed the connection.
final class HTTP2Probe: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Outcome: Hashable, Sendable {
        case acknowledged
        case closed
    }

    private let promise: EventLoopPromise<Outcome>
    private var buffer = ByteBuffer()
    private var done = false

    init(promise: EventLoopPromise<Outcome>) {
        self.promise = promise
    }

    static func run(port: Int, anchor: MintedCA, maximumTLSVersion: TLSVersion) async throws -> Outcome {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates([try NIOSSLCertificate(bytes: Array(anchor.certificatePEM.utf8), format: .pem)])
        tls.maximumTLSVersion = maximumTLSVersion
        tls.applicationProtocols = ["h2"]
        let context = try NIOSSLContext(configuration: tls)
        let eventLoop = MultiThreadedEventLoopGroup.singleton.next()
        let promise = eventLoop.makePromise(of: Outcome.self)
        let channel = try await ClientBootstrap(group: eventLoop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        NIOSSLClientHandler(context: context, serverHostname: serverName))
                    try channel.pipeline.syncOperations.addHandler(HTTP2Probe(promise: promise))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        // A server that neither answers nor closes fails the probe instead of hanging the test.
        let timeout = eventLoop.scheduleTask(in: .seconds(10)) {
            Issue.record("the server neither acknowledged nor closed within 10 s")
            channel.close(promise: nil)
        }
        let outcome = try await promise.futureResult.get()
        timeout.cancel()
        try? await channel.close()
        return outcome
    }

    func channelActive(context: ChannelHandlerContext) {
        // Written now, sent by the TLS handler once the handshake completes.
        var preface = context.channel.allocator.buffer(string: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        preface.writeBytes([0, 0, 0, 0x4, 0, 0, 0, 0, 0])
        context.writeAndFlush(wrapOutboundOut(preface), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        buffer.writeBuffer(&bytes)
        // Frames: a 24-bit length, a type, flags, a stream id, then the payload. SETTINGS is 0x4, ACK the flag 0x1.
        while let header = buffer.getBytes(at: buffer.readerIndex, length: 9) {
            let length = Int(header[0]) << 16 | Int(header[1]) << 8 | Int(header[2])
            guard buffer.readableBytes >= 9 + length else { break }
            buffer.moveReaderIndex(forwardBy: 9 + length)
            if header[3] == 0x4, header[4] & 0x1 != 0 {
                finish(.acknowledged)
                return
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(.closed)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        finish(.closed)
        context.close(promise: nil)
    }

    private func finish(_ outcome: Outcome) {
        guard !done else { return }
        done = true
        promise.succeed(outcome)
    }
}
