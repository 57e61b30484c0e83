import Foundation
import LinkerdController
import LinkerdTestSupport
import NIOCore
import NIOPosix
import NIOSSL
import Testing
import X509

@Suite("TLSCredentialStore")
struct CertificateCredentialStoreTests {
    @Test("an empty store serves nothing; a valid pair is installed with its expiry")
    func install() throws {
        let store = TLSCredentialStore()
        #expect(store.sslContext == nil)
        #expect(store.notAfter == nil)
        let ca = try TestCertificateAuthority()
        let leaf = try ca.issue(commonName: injectorHost, dnsNames: [injectorHost], clientAuth: false)
        try store.update(
            certificateChainPEM: leaf.certificatePEM + ca.certificatePEM, privateKeyPEM: leaf.privateKeyPEM)
        #expect(store.sslContext != nil)
        #expect(store.notAfter == leaf.certificate.notValidAfter)
        #expect(store.current?.chain == [leaf.certificate, ca.certificate])
    }

    @Test("a bad pair is rejected with a precise error and the previous context stays")
    func rejects() throws {
        let ca = try TestCertificateAuthority()
        let leaf = try ca.issue(commonName: injectorHost, dnsNames: [injectorHost])
        let other = try ca.issue(commonName: "other", dnsNames: ["other"])
        let store = TLSCredentialStore()
        try store.update(certificateChainPEM: leaf.certificatePEM, privateKeyPEM: leaf.privateKeyPEM)
        let installed = try #require(store.sslContext)

        let cases: [(String, String, String, TLSCredentialError)] = [
            (
                "mismatched key", leaf.certificatePEM, other.privateKeyPEM,
                .privateKeyDoesNotMatchCertificate(subject: "CN=\(injectorHost)")
            ),
            ("empty chain", "", leaf.privateKeyPEM, .noCertificate),
            (
                "key instead of certificate", leaf.privateKeyPEM, leaf.privateKeyPEM,
                .unexpectedPEMBlock(index: 0, discriminator: "PRIVATE KEY")
            ),
            (
                "no key", leaf.certificatePEM, "",
                .invalidPrivateKey(reason: "expected exactly one private key PEM block, found 0")
            ),
        ]
        for (name, chain, key, expected) in cases {
            #expect(throws: expected, "\(name)") {
                try store.update(certificateChainPEM: chain, privateKeyPEM: key)
            }
        }

        // Garbage: the error says which part and why.
        let garbage = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"
        let certificateError = #expect(throws: TLSCredentialError.self) {
            try store.update(certificateChainPEM: garbage, privateKeyPEM: leaf.privateKeyPEM)
        }
        guard case .invalidCertificate(index: 0, _) = certificateError else {
            Issue.record("expected invalidCertificate, got \(String(describing: certificateError))")
            return
        }
        #expect(
            certificateError?.description.hasPrefix("certificate 0 of the chain is not a valid X.509 certificate")
                == true)
        let keyError = #expect(throws: TLSCredentialError.self) {
            try store.update(
                certificateChainPEM: leaf.certificatePEM,
                privateKeyPEM: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
        }
        #expect(keyError?.description.hasPrefix("the private key is invalid:") == true)
        #expect(
            TLSCredentialError.privateKeyDoesNotMatchCertificate(subject: "CN=x").description
                == "the private key does not match the leaf certificate (subject CN=x)")

        #expect(store.sslContext === installed, "every rejected update kept the installed context")
        #expect(store.notAfter == leaf.certificate.notValidAfter)
    }

    @Test("a real TLS 1.3 handshake verifies the chain and the host name, and new connections see a reload")
    func handshake() async throws {
        let authority = WebhookCertificateAuthority(namespace: "linkerd")
        let bundle = try authority.issue(now: Date())
        let store = TLSCredentialStore()
        try store.update(certificateChainPEM: try bundle.certificatePEM, privateKeyPEM: try bundle.privateKeyPEM)
        let caPEM = try bundle.caBundlePEM

        let server = try await EchoServer.start(store: store)
        defer { server.close() }

        #expect(try await server.exchange("ping", trusting: caPEM, host: injectorHost) == "ping")
        #expect(try await server.exchange("fqdn", trusting: caPEM, host: "\(injectorHost).cluster.local") == "fqdn")

        // Negative checks prove the positive ones verify something.
        await #expect(throws: (any Error).self, "a host name the leaf does not name") {
            try await server.exchange("x", trusting: caPEM, host: "linkerd-destination.linkerd.svc")
        }
        let stranger = try TestCertificateAuthority()
        await #expect(throws: (any Error).self, "a CA that did not sign the leaf") {
            try await server.exchange("x", trusting: stranger.certificatePEM, host: injectorHost)
        }
        await #expect(throws: (any Error).self, "TLS 1.2 is below the minimum") {
            try await server.exchange("x", trusting: caPEM, host: injectorHost, maximumTLSVersion: .tlsv12)
        }

        // Hot reload: the next connection is served by the new pair, from another CA.
        let renewed = try authority.issue(now: Date())
        try store.update(certificateChainPEM: try renewed.certificatePEM, privateKeyPEM: try renewed.privateKeyPEM)
        await #expect(throws: (any Error).self, "the old CA no longer verifies") {
            try await server.exchange("x", trusting: caPEM, host: injectorHost)
        }
        #expect(try await server.exchange("pong", trusting: try renewed.caBundlePEM, host: injectorHost) == "pong")
    }
}

/// A TLS echo server on 127.0.0.1 that takes its context from a `TLSCredentialStore` for each connection, as the
/// webhook server does.
private struct EchoServer {
    let channel: any Channel
    let port: Int

    static func start(store: TLSCredentialStore) async throws -> EchoServer {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    guard let context = store.sslContext else { throw ChannelError.ioOnClosedChannel }
                    try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
                    try channel.pipeline.syncOperations.addHandler(EchoHandler())
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(channel.localAddress?.port)
        return EchoServer(channel: channel, port: port)
    }

    func close() {
        channel.close(promise: nil)
    }

    /// Connects, verifying the server against `trusting` for `host`, sends `message` and returns the echo.
    func exchange(
        _ message: String, trusting caPEM: String, host: String, maximumTLSVersion: TLSVersion? = nil
    ) async throws -> String {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(caPEM.utf8)))
        configuration.maximumTLSVersion = maximumTLSVersion
        let context = try NIOSSLContext(configuration: configuration)
        let group = MultiThreadedEventLoopGroup.singleton
        let reply = group.next().makePromise(of: String.self)
        let client = try await ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        NIOSSLClientHandler(context: context, serverHostname: host))
                    try channel.pipeline.syncOperations.addHandler(ReplyHandler(reply: reply))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        defer { client.close(promise: nil) }
        client.writeAndFlush(ByteBuffer(string: message), promise: nil)
        return try await reply.futureResult.get()
    }
}

private final class EchoHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.writeAndFlush(data, promise: nil)
    }
}

/// Completes `reply` with the first bytes read, or with the first error (a failed handshake) or the close.
private final class ReplyHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let reply: EventLoopPromise<String>
    private var completed = false

    init(reply: EventLoopPromise<String>) {
        self.reply = reply
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !completed else { return }
        completed = true
        reply.succeed(String(buffer: unwrapInboundIn(data)))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard !completed else { return }
        completed = true
        reply.fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        guard !completed else { return }
        completed = true
        reply.fail(ChannelError.eof)
    }
}
