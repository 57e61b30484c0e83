import Foundation
import NIOSSL
import SwiftASN1
import Synchronization
import X509

/// The webhook server's serving certificate and key, hot-swappable.
///
/// `update(certificateChainPEM:privateKeyPEM:)` validates a new pair completely (every PEM block parses as an X.509
/// certificate, the key parses, the key's public key is the leaf's, BoringSSL accepts both) and only then replaces the
/// current `NIOSSLContext`. A rejected update throws a `TLSCredentialError` and leaves the previous context in place,
/// so a bad Secret or a half-written file never takes the server down.
///
/// Thread-safety: every member may be called from any thread or task. The current credentials live in one `Mutex`;
/// a reader gets either the old or the new context, never a mix, and `sslContext` and `notAfter` read together
/// through `current` are consistent. The server should read `sslContext` once per accepted connection: connections
/// already established keep the context they were handshaken with, new ones use the latest.
public final class TLSCredentialStore: Sendable {
    /// One validated pair, as installed by the last successful `update`.
    public struct Credentials: Sendable {
        /// The context to put in a `NIOSSLServerHandler` for a new connection.
        public let sslContext: NIOSSLContext
        /// The certificate chain, leaf first.
        public let chain: [Certificate]
        /// The leaf (the first certificate of the chain).
        public var leaf: Certificate { chain[0] }
        /// The leaf's expiry.
        public var notAfter: Date { leaf.notValidAfter }
    }

    private let minimumTLSVersion: TLSVersion
    private let state = Mutex<Credentials?>(nil)

    /// An empty store: `sslContext` is nil until the first successful `update`.
    ///
    /// - Parameter minimumTLSVersion: the lowest TLS version the server accepts; the Go injector uses TLS 1.3.
    public init(minimumTLSVersion: TLSVersion = .tlsv13) {
        self.minimumTLSVersion = minimumTLSVersion
    }

    /// Validates a certificate chain and private key and, when valid, makes them the served credentials.
    ///
    /// - Parameters:
    ///   - certificateChainPEM: one or more `CERTIFICATE` PEM blocks, the leaf first (the `tls.crt` of a
    ///     `kubernetes.io/tls` Secret).
    ///   - privateKeyPEM: the leaf's key as a `PRIVATE KEY` (PKCS#8), `EC PRIVATE KEY` (SEC1) or `RSA PRIVATE KEY`
    ///     block (`tls.key`); an `EC PARAMETERS` block before it is ignored.
    /// - Throws: `TLSCredentialError` naming what is wrong; the previous credentials stay in place.
    public func update(certificateChainPEM: String, privateKeyPEM: String) throws(TLSCredentialError) {
        let credentials = try Self.validate(
            certificateChainPEM: certificateChainPEM,
            privateKeyPEM: privateKeyPEM,
            minimumTLSVersion: minimumTLSVersion
        )
        state.withLock { $0 = credentials }
    }

    /// The context for new connections, or nil before the first successful `update`.
    public var sslContext: NIOSSLContext? {
        state.withLock { $0?.sslContext }
    }

    /// The served leaf's expiry, or nil before the first successful `update`.
    public var notAfter: Date? {
        state.withLock { $0?.notAfter }
    }

    /// The served credentials, read atomically, or nil before the first successful `update`.
    public var current: Credentials? {
        state.withLock { $0 }
    }

    /// Parses and cross-checks a pair and builds its server context, without installing it.
    static func validate(
        certificateChainPEM: String,
        privateKeyPEM: String,
        minimumTLSVersion: TLSVersion
    ) throws(TLSCredentialError) -> Credentials {
        let chain = try parseChain(certificateChainPEM)
        let (privateKey, keyDocument) = try parsePrivateKey(privateKeyPEM)
        guard privateKey.publicKey == chain[0].publicKey else {
            throw .privateKeyDoesNotMatchCertificate(subject: chain[0].subject.description)
        }
        do {
            let certificates = try chain.map { certificate in
                var serializer = DER.Serializer()
                try serializer.serialize(certificate)
                return NIOSSLCertificateSource.certificate(
                    try NIOSSLCertificate(bytes: serializer.serializedBytes, format: .der)
                )
            }
            let key = try NIOSSLPrivateKey(bytes: Array(keyDocument.pemString.utf8), format: .pem)
            var configuration = TLSConfiguration.makeServerConfiguration(
                certificateChain: certificates,
                privateKey: .privateKey(key)
            )
            configuration.minimumTLSVersion = minimumTLSVersion
            // The API server does not negotiate ALPN with webhooks today; offering http/1.1 is harmless and keeps
            // a client that does from picking HTTP/2, which the webhook server does not speak.
            configuration.applicationProtocols = ["http/1.1"]
            return Credentials(sslContext: try NIOSSLContext(configuration: configuration), chain: chain)
        } catch {
            throw .tlsContextRejected(reason: String(describing: error))
        }
    }

    private static func parseChain(_ pem: String) throws(TLSCredentialError) -> [Certificate] {
        let documents: [PEMDocument]
        do {
            documents = try PEMDocument.parseMultiple(pemString: pem)
        } catch {
            throw .invalidCertificatePEM(reason: String(describing: error))
        }
        guard !documents.isEmpty else { throw .noCertificate }
        var chain: [Certificate] = []
        for (index, document) in documents.enumerated() {
            guard document.discriminator == "CERTIFICATE" else {
                throw .unexpectedPEMBlock(index: index, discriminator: document.discriminator)
            }
            do {
                chain.append(try Certificate(derEncoded: document.derBytes))
            } catch {
                throw .invalidCertificate(index: index, reason: String(describing: error))
            }
        }
        return chain
    }

    private static func parsePrivateKey(
        _ pem: String
    ) throws(TLSCredentialError) -> (Certificate.PrivateKey, PEMDocument) {
        let documents: [PEMDocument]
        do {
            documents = try PEMDocument.parseMultiple(pemString: pem)
        } catch {
            throw .invalidPrivateKey(reason: String(describing: error))
        }
        let keys = documents.filter { $0.discriminator.hasSuffix("PRIVATE KEY") }
        guard keys.count == 1, let document = keys.first else {
            throw .invalidPrivateKey(reason: "expected exactly one private key PEM block, found \(keys.count)")
        }
        do {
            return (try Certificate.PrivateKey(pemDocument: document), document)
        } catch {
            throw .invalidPrivateKey(reason: String(describing: error))
        }
    }
}

/// Why `TLSCredentialStore.update` rejected a certificate chain and key.
public enum TLSCredentialError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The certificate text holds no PEM block at all.
    case noCertificate
    /// The certificate text is not well-formed PEM.
    case invalidCertificatePEM(reason: String)
    /// A PEM block of the certificate text is not a `CERTIFICATE` (the index counts from 0, the leaf).
    case unexpectedPEMBlock(index: Int, discriminator: String)
    /// A `CERTIFICATE` block is not a valid DER X.509 certificate.
    case invalidCertificate(index: Int, reason: String)
    /// The key text is not exactly one parseable private key.
    case invalidPrivateKey(reason: String)
    /// The private key's public key is not the leaf certificate's.
    case privateKeyDoesNotMatchCertificate(subject: String)
    /// BoringSSL refused the pair (for example an unsupported key type).
    case tlsContextRejected(reason: String)

    public var description: String {
        switch self {
        case .noCertificate:
            "the certificate chain contains no PEM block"
        case .invalidCertificatePEM(let reason):
            "the certificate chain is not valid PEM: \(reason)"
        case .unexpectedPEMBlock(let index, let discriminator):
            "PEM block \(index) of the certificate chain is \"\(discriminator)\", expected \"CERTIFICATE\""
        case .invalidCertificate(let index, let reason):
            "certificate \(index) of the chain is not a valid X.509 certificate: \(reason)"
        case .invalidPrivateKey(let reason):
            "the private key is invalid: \(reason)"
        case .privateKeyDoesNotMatchCertificate(let subject):
            "the private key does not match the leaf certificate (subject \(subject))"
        case .tlsContextRejected(let reason):
            "the TLS library rejected the certificate and key: \(reason)"
        }
    }
}
