import Foundation
import LinkerdCore
import NIOCore
import NIOSSL
import SwiftASN1
import Synchronization
import X509

/// The proxy's current TLS identity: the latest certificate the identity service issued, its key, and the trust
/// anchors, as NIOSSL configurations for the proxy's servers and clients (reference proxy §4.2, §4.5).
///
/// ``install(_:)`` replaces the credentials atomically: connections set up afterwards use the new certificate, and
/// connections already open keep the TLS session they have (their handlers hold the previous, immutable
/// ``ProxyTLSCredentials``). ``waitUntilCertified()`` is the readiness gate: the proxy has no identity to serve
/// or dial with until the first certificate is installed.
public final class ProxyCredentials: Sendable {
    /// The identity certificates are issued for (`LINKERD2_PROXY_IDENTITY_LOCAL_NAME`).
    public let localName: String
    public let trustAnchors: IdentityTrustAnchors
    private let privateKey: Certificate.PrivateKey
    private let state = Mutex(State())

    private struct State {
        var current: ProxyTLSCredentials?
        var nextWaiterID: UInt64 = 0
        var waiters: [UInt64: CheckedContinuation<ProxyTLSCredentials, any Error>] = [:]
        var cancelledBeforeWaiting: Set<UInt64> = []
    }

    /// - Parameter privateKey: the key of every certificate installed (the key of `key.p8`).
    public init(localName: String, privateKey: Certificate.PrivateKey, trustAnchors: IdentityTrustAnchors) {
        self.localName = localName
        self.privateKey = privateKey
        self.trustAnchors = trustAnchors
    }

    /// Credentials for the name and key of the identity directory's files.
    public convenience init(files: IdentityFiles, trustAnchors: IdentityTrustAnchors) {
        self.init(localName: files.localName, privateKey: files.privateKey, trustAnchors: trustAnchors)
    }

    /// The credentials in use; nil until the first certificate is installed.
    public var current: ProxyTLSCredentials? {
        state.withLock { $0.current }
    }

    /// When the certificate in use expires (`valid_until`); nil until the first is installed. For the
    /// `control_identity_cert_expiration_timestamp_seconds` metric.
    public var expiry: Date? {
        current?.validUntil
    }

    /// The server configuration of the credentials in use; nil until the first certificate is installed.
    public func serverConfiguration() -> ProxyServerTLSConfiguration? {
        current?.server
    }

    /// A client configuration of the credentials in use for a server that must prove `expectedIdentity`; nil until
    /// the first certificate is installed. See
    /// ``ProxyTLSCredentials/clientConfiguration(expectedIdentity:serverName:)``.
    public func clientConfiguration(
        expectedIdentity: String, serverName: String? = nil
    ) -> ProxyClientTLSConfiguration? {
        current?.clientConfiguration(expectedIdentity: expectedIdentity, serverName: serverName)
    }

    /// Builds TLS configurations for a certificate obtained from the identity service and makes them current, then
    /// wakes every ``waitUntilCertified()``.
    ///
    /// - Throws: ``IdentityMaterialError`` when the certificate was issued for another name or key than these
    ///   credentials', or BoringSSL refuses the chain or key; the credentials in use stay.
    @discardableResult
    public func install(_ identity: CertifiedIdentity) throws(IdentityMaterialError) -> ProxyTLSCredentials {
        guard identity.localName == localName, identity.leaf.publicKey == privateKey.publicKey else {
            throw IdentityMaterialError(
                source: "certificate for \(identity.localName.quoted)",
                reason: "was not issued for these credentials' name \(localName.quoted) and key")
        }
        let credentials = try ProxyTLSCredentials(
            identity: identity, privateKey: privateKey, trustAnchors: trustAnchors)
        let waiters = state.withLock { state in
            state.current = credentials
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters {
            waiter.resume(returning: credentials)
        }
        return credentials
    }

    /// Returns the credentials in use, waiting until the first certificate is installed.
    ///
    /// - Throws: `CancellationError` when the task is cancelled first.
    public func waitUntilCertified() async throws -> ProxyTLSCredentials {
        let id = state.withLock { state in
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let outcome: Result<ProxyTLSCredentials, any Error>? = state.withLock { state in
                    if state.cancelledBeforeWaiting.remove(id) != nil { return .failure(CancellationError()) }
                    if let current = state.current { return .success(current) }
                    state.waiters[id] = continuation
                    return nil
                }
                if let outcome {
                    continuation.resume(with: outcome)
                }
            }
        } onCancel: {
            let waiter = state.withLock { state in
                guard let waiter = state.waiters.removeValue(forKey: id) else {
                    state.cancelledBeforeWaiting.insert(id)
                    return nil as CheckedContinuation<ProxyTLSCredentials, any Error>?
                }
                return waiter
            }
            waiter?.resume(throwing: CancellationError())
        }
    }
}

/// One certificate's worth of TLS credentials: immutable, so a connection that captured it keeps using it after a
/// refresh installs the next.
///
/// Both sides speak TLS 1.3 only, offer the key exchanges X25519MLKEM768, X25519, P-256 and P-384, present the
/// proxy's certificate chain and verify the peer's chain against the trust anchors, never against host names
/// (reference proxy §4.5).
public struct ProxyTLSCredentials: Sendable {
    /// The certificate and what the identity service said about it.
    public let identity: CertifiedIdentity
    /// The configuration for the proxy's inbound TLS server.
    public let server: ProxyServerTLSConfiguration
    /// The client side's TLS configuration; see ``clientConfiguration(expectedIdentity:serverName:)``.
    public let clientTLSConfiguration: TLSConfiguration
    private let clientContext: NIOSSLContext
    private let verifier: TrustAnchorVerifier

    /// When the certificate expires (`valid_until`).
    public var validUntil: Date { identity.validUntil }

    init(
        identity: CertifiedIdentity, privateKey: Certificate.PrivateKey, trustAnchors: IdentityTrustAnchors
    ) throws(IdentityMaterialError) {
        let source = "certificate for \(identity.localName.quoted)"
        let chain: [NIOSSLCertificateSource]
        let key: NIOSSLPrivateKey
        let roots: [NIOSSLCertificate]
        do {
            chain = try identity.chainDER.map { .certificate(try NIOSSLCertificate(bytes: $0, format: .der)) }
            key = try NIOSSLPrivateKey(bytes: Array(privateKey.serializeAsPEM().pemString.utf8), format: .pem)
            roots = try trustAnchors.derEncoded.map { try NIOSSLCertificate(bytes: $0, format: .der) }
        } catch {
            throw IdentityMaterialError(source: source, reason: "BoringSSL cannot load the chain or key: \(error)")
        }

        var server = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
        // Client certificates are requested, not required: clients without identity may connect (their traffic is
        // then unauthenticated, and policy decides); a certificate that is presented must verify.
        server.certificateVerification = .optionalVerification
        var client = TLSConfiguration.makeClientConfiguration()
        client.certificateChain = chain
        client.privateKey = .privateKey(key)
        // The custom verification callback replaces BoringSSL's checks; host names are never checked.
        client.certificateVerification = .noHostnameVerification
        server.applyMeshSettings(trustRoots: roots)
        client.applyMeshSettings(trustRoots: roots)
        let verifier = TrustAnchorVerifier(anchors: trustAnchors)
        do {
            self.server = ProxyServerTLSConfiguration(
                tlsConfiguration: server, context: try NIOSSLContext(configuration: server), verifier: verifier)
            clientContext = try NIOSSLContext(configuration: client)
        } catch {
            throw IdentityMaterialError(source: source, reason: "BoringSSL refused the TLS configuration: \(error)")
        }
        self.identity = identity
        self.verifier = verifier
        clientTLSConfiguration = client
    }

    /// The configuration for dialling a server that must prove `expectedIdentity`.
    ///
    /// - Parameters:
    ///   - expectedIdentity: the identity the server's certificate must carry (from discovery's `tls_identity`).
    ///   - serverName: the SNI to send; nil sends `expectedIdentity` (the DNS identity), as upstream does when
    ///     discovery gives no separate server name. A SPIFFE ID is not a valid SNI: give its server name.
    public func clientConfiguration(expectedIdentity: String, serverName: String? = nil) -> ProxyClientTLSConfiguration
    {
        ProxyClientTLSConfiguration(
            expectedIdentity: expectedIdentity, serverName: serverName ?? expectedIdentity,
            tlsConfiguration: clientTLSConfiguration, context: clientContext, verifier: verifier)
    }
}

/// The proxy's inbound TLS server side: TLS 1.3 only, the proxy's certificate for any SNI, client certificates
/// requested but optional and, when presented, verified against the trust anchors (host names ignored). The
/// client's identity is then ``TLSPeerIdentity/verifiedPeerName(in:)``.
public struct ProxyServerTLSConfiguration: Sendable {
    /// The NIOSSL configuration. Its `certificateVerification` is `optionalVerification`; the chain checks are
    /// made by the verification callback of the handler ``addHandlers(to:position:)`` adds.
    public let tlsConfiguration: TLSConfiguration
    private let context: NIOSSLContext
    private let verifier: TrustAnchorVerifier

    init(tlsConfiguration: TLSConfiguration, context: NIOSSLContext, verifier: TrustAnchorVerifier) {
        self.tlsConfiguration = tlsConfiguration
        self.context = context
        self.verifier = verifier
    }

    /// Adds a TLS server handler, then a handler that reports a rejected client certificate as a
    /// ``PeerCertificateError``, at `position` (on the channel's event loop).
    public func addHandlers(
        to pipeline: ChannelPipeline.SynchronousOperations,
        position: ChannelPipeline.SynchronousOperations.Position = .first
    ) throws {
        let report = PeerVerificationReport()
        let tls = NIOSSLServerHandler(
            context: context,
            customVerificationCallbackWithMetadata: verifier.tlsCallback(
                expectedIdentity: nil, subject: "the client certificate", report: report))
        try pipeline.addHandlers([tls, PeerVerificationErrorHandler(report: report)], position: position)
    }
}

/// The proxy's outbound TLS client side towards one expected identity: TLS 1.3 only, the proxy's certificate
/// presented, the server's chain verified against the trust anchors and its certificate required to carry
/// ``expectedIdentity`` as a DNS subject alternative name (a URI one for a SPIFFE ID). The host name dialled is
/// never checked; a mismatched identity fails the handshake.
public struct ProxyClientTLSConfiguration: Sendable {
    public let expectedIdentity: String
    /// The SNI sent.
    public let serverName: String
    /// The NIOSSL configuration. Its `certificateVerification` is `noHostnameVerification`; the chain and identity
    /// checks are made by the verification callback of the handler ``addHandlers(to:position:)`` adds.
    public let tlsConfiguration: TLSConfiguration
    private let context: NIOSSLContext
    private let verifier: TrustAnchorVerifier

    init(
        expectedIdentity: String, serverName: String, tlsConfiguration: TLSConfiguration, context: NIOSSLContext,
        verifier: TrustAnchorVerifier
    ) {
        self.expectedIdentity = expectedIdentity
        self.serverName = serverName
        self.tlsConfiguration = tlsConfiguration
        self.context = context
        self.verifier = verifier
    }

    /// Adds a TLS client handler, then a handler that reports a rejected server certificate as a
    /// ``PeerCertificateError``, at `position` (on the channel's event loop).
    ///
    /// - Throws: NIOSSL's error when ``serverName`` cannot be sent as SNI (an IP address, for example).
    public func addHandlers(
        to pipeline: ChannelPipeline.SynchronousOperations,
        position: ChannelPipeline.SynchronousOperations.Position = .first
    ) throws {
        try pipeline.addHandlers(makeHandlers(), position: position)
    }

    /// The handlers ``addHandlers(to:position:)`` adds, for transports that add them themselves.
    func makeHandlers(report: PeerVerificationReport = PeerVerificationReport()) throws -> [any ChannelHandler] {
        let tls = try NIOSSLClientHandler(
            context: context, serverHostname: serverName,
            customVerificationCallbackWithMetadata: verifier.tlsCallback(
                expectedIdentity: expectedIdentity, subject: "the server certificate", report: report))
        return [tls, PeerVerificationErrorHandler(report: report)]
    }
}

extension TLSConfiguration {
    /// What every mesh TLS configuration shares (reference proxy §4.5): TLS 1.3 only; the key exchanges
    /// X25519MLKEM768, X25519, P-256 and P-384; the trust anchors as trust roots, so that the configuration never
    /// falls back to the system's CAs (the verification callbacks check chains against the anchors themselves).
    /// TLS 1.3's cipher suites are not configurable in BoringSSL; its three are upstream's.
    mutating func applyMeshSettings(trustRoots roots: [NIOSSLCertificate]) {
        minimumTLSVersion = .tlsv13
        maximumTLSVersion = .tlsv13
        curves = [.x25519_MLKEM768, .x25519, .secp256r1, .secp384r1]
        trustRoots = .certificates(roots)
    }
}
