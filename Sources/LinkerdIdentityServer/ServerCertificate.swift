import Crypto
import Foundation
import LinkerdCore
import LinkerdIdentity
import NIOCertificateReloading
import NIOSSL
import SwiftASN1
import Synchronization
import X509

/// The identity service's own serving certificate, issued by the current issuer to
/// `linkerd-identity.<ns>.serviceaccount.identity.<ns>.<trust-domain>` (the name proxies verify,
/// `LINKERD2_PROXY_IDENTITY_SVC_NAME`), exactly as a proxy's: a fresh P-256 key, a CSR checked by
/// `CertificateSigningRequestCheck`, and `IssuerCredentials.issue` with the authority's issuance settings.
///
/// It is the transport's `CertificateReloader`: every TLS handshake reads the current chain and key, so a renewal
/// applies to new connections at once, without restarting the server (connections already open keep theirs).
public final class ServerCertificate: CertificateReloader, Sendable {
    /// A serving certificate in use.
    public struct Issued: Sendable {
        /// The leaf, then the issuer's chain.
        public let chain: [Certificate]
        public var leaf: Certificate { chain[0] }
        /// When it should be replaced: 70% into its lifetime, as proxies renew theirs.
        public let renewAt: Date
        let override: NIOSSLContextConfigurationOverride
    }

    /// The DNS name the certificate is issued to.
    public let serverName: String
    private let settings: IssuanceSettings
    private let current = Mutex<Issued?>(nil)

    /// - Throws: `ParseError` when the namespace or trust domain make no valid identity name.
    public init(
        controlPlaneNamespace: String, trustDomain: String, settings: IssuanceSettings
    ) throws(ParseError) {
        serverName = try IdentityName.controlPlane(
            component: "linkerd-identity", namespace: controlPlaneNamespace, trustDomain: trustDomain
        ).description
        self.settings = settings
    }

    /// The certificate in use, nil before the first `renew`.
    public var issued: Issued? {
        current.withLock { $0 }
    }

    public var sslContextConfigurationOverride: NIOSSLContextConfigurationOverride {
        current.withLock { $0?.override } ?? .noChanges
    }

    /// Issues a new certificate with `issuer` and serves it from the next handshake on.
    ///
    /// - Throws: `IdentityError` when issuing fails (the previous certificate stays in use).
    @discardableResult
    public func renew(with issuer: IssuerCredentials, now: Date) throws(IdentityError) -> Issued {
        let key = P256.Signing.PrivateKey()
        let request = try CertificateSigningRequestCheck.check(
            try CertificateSigningRequestCheck.parse(derEncoded: try Self.signingRequest(serverName, key: key)),
            identity: serverName)
        let leaf = try issuer.issue(for: request, now: now, settings: settings)
        let chainDER = [leaf.certificateDER] + leaf.intermediateCertificatesDER
        var override = NIOSSLContextConfigurationOverride()
        do {
            override.certificateChain = try chainDER.map {
                .certificate(try NIOSSLCertificate(bytes: $0, format: .der))
            }
            override.privateKey = .privateKey(
                try NIOSSLPrivateKey(bytes: Array(key.pemRepresentation.utf8), format: .pem))
        } catch {
            throw IdentityError(code: .internalError, message: "BoringSSL refused the serving certificate: \(error)")
        }
        let chain = [leaf.certificate] + issuer.verifiedChain.dropLast()
        let lifetime = leaf.certificate.notValidAfter.timeIntervalSince(leaf.certificate.notValidBefore)
        let issued = Issued(
            chain: chain, renewAt: leaf.certificate.notValidBefore + lifetime * 0.7, override: override)
        current.withLock { $0 = issued }
        return issued
    }

    /// A DER CSR for `name` (CN and the one DNS name), signed by `key`.
    private static func signingRequest(_ name: String, key: P256.Signing.PrivateKey) throws(IdentityError) -> [UInt8] {
        do {
            let extensions = try Certificate.Extensions { SubjectAlternativeNames([.dnsName(name)]) }
            var attributes = CertificateSigningRequest.Attributes()
            attributes.insert(try CertificateSigningRequest.Attribute(ExtensionRequest(extensions: extensions)))
            let request = try CertificateSigningRequest(
                version: .v1, subject: try DistinguishedName { CommonName(name) },
                privateKey: Certificate.PrivateKey(key), attributes: attributes)
            var serializer = DER.Serializer()
            try serializer.serialize(request)
            return serializer.serializedBytes
        } catch {
            throw IdentityError(
                code: .internalError, message: "cannot build the serving certificate's request: \(error)")
        }
    }
}
