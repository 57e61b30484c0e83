import Crypto
import Foundation
import KubeModel
import KubeTestServer
import LinkerdCore
import LinkerdIdentityServer
import LinkerdProxy
import LinkerdTestSupport
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import ServiceLifecycle
import SwiftASN1
import Synchronization
import Testing
import X509

extension Tag {
    /// Tests that start the real identity server (and the Kubernetes API test server): each takes up to a few
    /// seconds.
    @Tag static var realIdentityServer: Self
}

/// The identity service's name, as `LINKERD2_PROXY_IDENTITY_SVC_NAME` gives it to proxies.
let identityServiceName = "linkerd-identity.linkerd.serviceaccount.identity.linkerd.cluster.local"

/// The identity name of ServiceAccount `name` in `namespace`, in the `linkerd` control plane of `cluster.local`.
func meshIdentity(_ name: String, _ namespace: String) -> String {
    "\(name).\(namespace).serviceaccount.identity.linkerd.cluster.local"
}

/// A temporary directory, removed when the value is released.
final class IdentityTemporaryDirectory: Sendable {
    let path: String

    init() throws {
        path =
            FileManager.default.temporaryDirectory.appendingPathComponent("proxy-identity-\(UUID().uuidString)")
            .path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> String {
        "\(path)/\(name)"
    }

    /// Creates a subdirectory and returns its path.
    func directory(_ name: String) throws -> String {
        try FileManager.default.createDirectory(atPath: file(name), withIntermediateDirectories: true)
        return file(name)
    }

    func write(_ bytes: [UInt8], to name: String) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: file(name)))
    }

    func read(_ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: URL(fileURLWithPath: file(name))))
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// A mesh PKI for tests: a trust anchor (a `TestCertificateAuthority`) and an issuer CA it signed, written where the
/// identity server reads them.
struct IdentityTestPKI: Sendable {
    let anchor: TestCertificateAuthority
    let issuerCertificatePEM: String
    let issuerKeyPEM: String
    let files: IdentityTemporaryDirectory

    var trustAnchorsPath: String { files.file("ca-bundle.crt") }
    var issuerDirectory: String { files.file("issuer") }

    init() throws {
        let anchor = try TestCertificateAuthority(commonName: "root.linkerd.cluster.local")
        let authorityKeyIdentifier = try anchor.certificate.extensions.subjectKeyIdentifier?.keyIdentifier
        let key = P256.Signing.PrivateKey()
        let publicKey = Certificate.PublicKey(key.publicKey)
        let issuer = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: publicKey,
            notValidBefore: Date() - 3600, notValidAfter: Date() + 365 * 86_400, issuer: anchor.certificate.subject,
            subject: try DistinguishedName { CommonName("identity.linkerd.cluster.local") },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: publicKey)
                AuthorityKeyIdentifier(keyIdentifier: authorityKeyIdentifier)
            },
            issuerPrivateKey: Certificate.PrivateKey(anchor.privateKey))
        let certificatePEM = try issuer.serializeAsPEM().pemString
        let files = try IdentityTemporaryDirectory()
        try files.write(Array(anchor.certificatePEM.utf8), to: "ca-bundle.crt")
        _ = try files.directory("issuer")
        try files.write(Array(certificatePEM.utf8), to: "issuer/crt.pem")
        try files.write(Array(key.pemRepresentation.utf8), to: "issuer/key.pem")
        issuerCertificatePEM = certificatePEM
        issuerKeyPEM = key.pemRepresentation
        self.files = files
        self.anchor = anchor
    }

    /// The anchors as the proxy gets them.
    func trustAnchors() throws -> IdentityTrustAnchors {
        try IdentityTrustAnchors(pemBundle: anchor.certificatePEM)
    }
}

/// A running identity server (the real `IdentityController`, TLS on 127.0.0.1) against the API test server.
struct IdentityServerFixture: Sendable {
    let api: KubeTestServer
    let port: Int
    let pki: IdentityTestPKI

    /// Registers `token` as ServiceAccount `name` in `namespace`, with the `identity.l5d.io` audience.
    func registerToken(_ token: String, serviceAccount name: String, namespace: String) {
        api.registerServiceAccountToken(
            token, user: UserInfo(username: "system:serviceaccount:\(namespace):\(name)"),
            audiences: ["identity.l5d.io"])
    }

    /// A proxy's identity material in a fresh directory: the token file holds `token`, the key and CSR are generated
    /// for `localName`.
    func proxy(
        _ localName: String, token: String, serverIdentity: String = identityServiceName,
        clock: any WallClock = SystemWallClock(), trustAnchors: IdentityTrustAnchors? = nil
    ) throws -> ProxyIdentityFixture {
        let directory = try IdentityTemporaryDirectory()
        try directory.write(Array(token.utf8), to: "token")
        let files = try IdentityFiles.prepare(directory: try directory.directory("identity"), localName: localName)
        let anchors = try trustAnchors ?? pki.trustAnchors()
        let client = try IdentityClient(
            configuration: .init(
                host: "127.0.0.1", port: port, serverIdentity: serverIdentity, tokenPath: directory.file("token"),
                callTimeout: .seconds(5)),
            files: files, trustAnchors: anchors, clock: clock)
        return ProxyIdentityFixture(
            directory: directory, files: files, client: client,
            credentials: ProxyCredentials(files: files, trustAnchors: anchors))
    }
}

/// One proxy's identity pieces.
struct ProxyIdentityFixture: Sendable {
    let directory: IdentityTemporaryDirectory
    let files: IdentityFiles
    let client: IdentityClient
    let credentials: ProxyCredentials

    /// Certifies and installs the certificate.
    @discardableResult
    func certify() async throws -> ProxyTLSCredentials {
        try credentials.install(try await client.certify())
    }

    func writeToken(_ token: String) throws {
        try directory.write(Array(token.utf8), to: "token")
    }
}

/// Starts the API test server and the identity server with `pki` (on 127.0.0.1, TLS unless `configure` says
/// otherwise), waits until the gRPC server is bound, runs
/// `body`, and shuts everything down.
func withIdentityServer(
    _ pki: IdentityTestPKI, configure: (inout IdentityController.Settings) -> Void = { _ in },
    _ body: (IdentityServerFixture) async throws -> Void
) async throws {
    try await withServerAndClient { api, client in
        _ = try api.put(Namespace(metadata: ObjectMeta(name: "linkerd")))
        var settings = IdentityController.Settings.loopback(
            issuerDirectory: pki.issuerDirectory, trustAnchorsPath: pki.trustAnchorsPath)
        settings.permissionCheck = .init(attempts: 3, initialDelay: .milliseconds(20))
        configure(&settings)
        let logger = Logger(label: "test.identity-server")
        let controller = try IdentityController(settings: settings, api: client, logger: logger)
        let group = ServiceGroup(services: controller.services, logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            do {
                let port = try await controller.server.waitUntilBound()
                try await body(IdentityServerFixture(api: api, port: port, pki: pki))
            } catch {
                await group.triggerGracefulShutdown()
                try? await tasks.waitForAll()
                throw error
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }
}

// MARK: - mTLS between two NIO channels

/// What a TLS connection showed one side.
struct TLSConnectionOutcome: Sendable {
    /// The bytes the other side sent before closing.
    var received: String = ""
    /// The first error the pipeline reported.
    var error: (any Error)?
    /// The leaf certificate the peer presented and this side verified.
    var verifiedPeerLeaf: Certificate?
}

/// Answers the first bytes a client sends (so the handshake is complete) with the verified client identity, or
/// `<none>`, then closes. Records the errors its pipeline reports.
final class IdentityEchoHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var answered = false
    private let errors: Locked<[any Error]>

    init(errors: Locked<[any Error]>) {
        self.errors = errors
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !answered else { return }
        answered = true
        let name = TLSPeerIdentity.verifiedPeerName(in: context.pipeline.syncOperations) ?? "<none>"
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: name)))
            .assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        errors.withLock { $0.append(error) }
        context.close(promise: nil)
    }
}

/// Sends a greeting (NIOSSL holds it until the handshake completes), collects what the server answers, the peer
/// certificate this side verified and the first error, and fulfils `done` when the connection closes.
final class TLSProbeHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var outcome = TLSConnectionOutcome()
    private let done: EventLoopPromise<TLSConnectionOutcome>

    init(done: EventLoopPromise<TLSConnectionOutcome>) {
        self.done = done
    }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "hello")), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if outcome.verifiedPeerLeaf == nil,
            let handler = try? context.pipeline.syncOperations.handler(type: NIOSSLHandler.self),
            let leaf = handler.peerValidatedCertificateChain?.leaf
        {
            outcome.verifiedPeerLeaf = try? Certificate(derEncoded: leaf.toDERBytes())
        }
        var buffer = unwrapInboundIn(data)
        outcome.received += buffer.readString(length: buffer.readableBytes) ?? ""
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if outcome.error == nil {
            outcome.error = error
        }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        done.succeed(outcome)
        context.fireChannelInactive()
    }
}

/// A TLS echo-identity server on 127.0.0.1 whose handlers come from `configure`, called for each connection.
struct TLSIdentityServer: Sendable {
    let port: Int
    /// The errors the server's connections reported.
    let errors: Locked<[any Error]>
}

/// Runs `body` with a ``TLSIdentityServer``, then closes it.
func withTLSIdentityServer(
    _ configure: @escaping @Sendable (ChannelPipeline.SynchronousOperations) throws -> Void,
    _ body: (TLSIdentityServer) async throws -> Void
) async throws {
    let errors = Locked<[any Error]>([])
    let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .childChannelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try configure(channel.pipeline.syncOperations)
                try channel.pipeline.syncOperations.addHandler(IdentityEchoHandler(errors: errors))
            }
        }
        .bind(host: "127.0.0.1", port: 0).get()
    do {
        try await body(TLSIdentityServer(port: server.localAddress?.port ?? 0, errors: errors))
    } catch {
        try? await server.close()
        throw error
    }
    try await server.close()
}

/// Connects to 127.0.0.1:`port` with the handlers `configure` adds, and returns what the connection showed.
func connectTLS(
    port: Int, _ configure: @escaping @Sendable (ChannelPipeline.SynchronousOperations) throws -> Void
) async throws -> TLSConnectionOutcome {
    let eventLoop = MultiThreadedEventLoopGroup.singleton.next()
    let done = eventLoop.makePromise(of: TLSConnectionOutcome.self)
    _ = try await ClientBootstrap(group: eventLoop)
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try configure(channel.pipeline.syncOperations)
                try channel.pipeline.syncOperations.addHandler(TLSProbeHandler(done: done))
            }
        }
        .connect(host: "127.0.0.1", port: port).get()
    return try await done.futureResult.get()
}

// MARK: - Logs

/// Records log messages, for tests that check what a service logged.
struct RecordingLogHandler: LogHandler {
    let records: Locked<[(level: Logger.Level, message: String)]>
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        records.withLock { $0.append((event.level, event.message.description)) }
    }
}
