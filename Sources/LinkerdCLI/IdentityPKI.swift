import Crypto
import Foundation
import LinkerdCore
import SwiftASN1
import X509

/// Why an identity command failed: the input or output it concerns (a path, or `stdin`) and what is wrong with it.
struct IdentityError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The file (or `stdin`) the problem is in; nil when it concerns no single file.
    var source: String?
    var reason: String

    init(source: String?, reason: String) {
        self.source = source
        self.reason = reason
    }

    /// `<source>: <reason>`, or the reason alone.
    var description: String {
        guard let source else { return reason }
        return "\(source): \(reason)"
    }
}

/// One certificate of a PEM bundle, with the DER bytes it was decoded from (for fingerprints).
struct BundledCertificate {
    var certificate: Certificate
    var derBytes: [UInt8]
}

/// A CA certificate and the private key that signs with it.
struct SigningAuthority {
    var certificate: Certificate
    var privateKey: Certificate.PrivateKey
}

/// A new CA certificate with its new key, in the encodings the commands write.
struct CreatedAuthority {
    var certificate: Certificate
    /// The certificate as one PEM `CERTIFICATE` block.
    var certificatePEM: String
    /// The private key as PKCS#8 PEM (`PRIVATE KEY`), which both Linkerd (Go's `x509.ParsePKCS8PrivateKey`) and
    /// this project read.
    var privateKeyPEM: String
}

/// The mesh's PKI as Linkerd lays it out: a self-signed trust anchor (root) and the issuer (an intermediate CA the
/// identity service signs workload certificates with). Both use ECDSA P-256 keys and ECDSA-SHA256 signatures, which
/// is what `linkerd check` requires of the issuer (control-plane.md §4.5). Pure: the time is a parameter.
enum IdentityPKI {
    /// How far before "now" a new certificate's validity starts, so that machines whose clocks lag a little accept
    /// it at once.
    static let backdating: TimeInterval = 300

    /// The trust anchor's path length: one intermediate (the issuer) may sit below it, as in Linkerd's documented
    /// `step certificate create … --profile root-ca`.
    static let anchorPathLength = 1

    /// A self-signed root CA named `commonName` with a fresh P-256 key, valid from ``backdating`` before `now` until
    /// `now + validity`: basicConstraints CA:TRUE with path length 1 and keyUsage keyCertSign, cRLSign (both
    /// critical), and a subject key identifier.
    static func makeTrustAnchor(
        commonName: String, validity: GoDuration, now: Date
    ) throws(IdentityError) -> CreatedAuthority {
        let key = P256.Signing.PrivateKey()
        let publicKey = Certificate.PublicKey(key.publicKey)
        return try build(key: key) {
            let name = try DistinguishedName { CommonName(commonName) }
            return try Certificate(
                version: .v3,
                serialNumber: Certificate.SerialNumber(),
                publicKey: publicKey,
                notValidBefore: now - backdating,
                notValidAfter: now + validity.duration.inSeconds,
                issuer: name,
                subject: name,
                signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.isCertificateAuthority(maxPathLength: anchorPathLength))
                    Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                    SubjectKeyIdentifier(hash: publicKey)
                },
                issuerPrivateKey: Certificate.PrivateKey(key)
            )
        }
    }

    /// An intermediate CA named `commonName` with a fresh P-256 key, signed by `signer` with ECDSA-SHA256:
    /// basicConstraints CA:TRUE with path length 0 and keyUsage keyCertSign, cRLSign (both critical), subject and
    /// authority key identifiers.
    ///
    /// Its validity runs from ``backdating`` before `now` to `now + validity`, clamped to the signer's own validity
    /// (a certificate outliving its signer would fail verification from then on).
    ///
    /// - Returns: the issuer, and whether its end was clamped to the signer's.
    static func makeIssuer(
        commonName: String, validity: GoDuration, signer: SigningAuthority, now: Date
    ) throws(IdentityError) -> (issuer: CreatedAuthority, clamped: Bool) {
        let key = P256.Signing.PrivateKey()
        let publicKey = Certificate.PublicKey(key.publicKey)
        let requestedEnd = now + validity.duration.inSeconds
        let notValidAfter = min(requestedEnd, signer.certificate.notValidAfter)
        let notValidBefore = max(now - backdating, signer.certificate.notValidBefore)
        let anchorKeyIdentifier =
            (try? signer.certificate.extensions.subjectKeyIdentifier)?.keyIdentifier
            ?? SubjectKeyIdentifier(hash: signer.certificate.publicKey).keyIdentifier
        let issuer = try build(key: key) {
            try Certificate(
                version: .v3,
                serialNumber: Certificate.SerialNumber(),
                publicKey: publicKey,
                notValidBefore: notValidBefore,
                notValidAfter: notValidAfter,
                issuer: signer.certificate.subject,
                subject: try DistinguishedName { CommonName(commonName) },
                signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                    Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                    SubjectKeyIdentifier(hash: publicKey)
                    AuthorityKeyIdentifier(keyIdentifier: anchorKeyIdentifier)
                },
                issuerPrivateKey: signer.privateKey
            )
        }
        return (issuer, notValidAfter < requestedEnd)
    }

    private static func build(
        key: P256.Signing.PrivateKey, _ makeCertificate: () throws -> Certificate
    ) throws(IdentityError) -> CreatedAuthority {
        do {
            let certificate = try makeCertificate()
            return CreatedAuthority(
                certificate: certificate,
                certificatePEM: try certificate.serializeAsPEM().pemString + "\n",
                privateKeyPEM: key.pemRepresentation + "\n")
        } catch {
            throw IdentityError(source: nil, reason: "cannot build the certificate: \(error)")
        }
    }

    /// The certificates of a PEM text, in order. Blocks of other types (keys, parameters) are skipped.
    ///
    /// - Throws: ``IdentityError`` naming `source` when the text is not PEM, holds no `CERTIFICATE` block, or a
    ///   certificate does not decode.
    static func certificates(inPEM text: String, source: String) throws(IdentityError) -> [BundledCertificate] {
        let documents = try pemDocuments(text, source: source, expecting: "CERTIFICATE")
        let blocks = documents.filter { $0.discriminator == "CERTIFICATE" }
        guard !blocks.isEmpty else {
            let found = documents.map(\.discriminator).joined(separator: ", ")
            throw IdentityError(source: source, reason: "no CERTIFICATE PEM block (found: \(found))")
        }
        var certificates: [BundledCertificate] = []
        for (index, block) in blocks.enumerated() {
            do {
                certificates.append(
                    BundledCertificate(
                        certificate: try Certificate(derEncoded: block.derBytes), derBytes: block.derBytes))
            } catch {
                throw IdentityError(
                    source: source,
                    reason: "certificate \(index + 1) of \(blocks.count) is not a valid X.509 certificate: \(error)")
            }
        }
        return certificates
    }

    /// The private key of a PEM text: one `PRIVATE KEY` (PKCS#8), `EC PRIVATE KEY` (SEC 1) or `RSA PRIVATE KEY`
    /// block; other blocks, such as OpenSSL's `EC PARAMETERS`, are skipped.
    ///
    /// - Throws: ``IdentityError`` naming `source` when the text is not PEM, holds no key or several, the key is
    ///   encrypted, or it does not decode.
    static func privateKey(inPEM text: String, source: String) throws(IdentityError) -> Certificate.PrivateKey {
        let documents = try pemDocuments(text, source: source, expecting: "PRIVATE KEY")
        if documents.contains(where: { $0.discriminator == "ENCRYPTED PRIVATE KEY" }) {
            throw IdentityError(
                source: source,
                reason: "the private key is encrypted; decrypt it first (openssl pkey -in FILE -out PLAIN.key)")
        }
        let keyTypes: Set = ["PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY"]
        let keys = documents.filter { keyTypes.contains($0.discriminator) }
        guard keys.count == 1, let block = keys.first else {
            let found = documents.map(\.discriminator).joined(separator: ", ")
            throw IdentityError(
                source: source,
                reason: keys.isEmpty
                    ? "no private key PEM block (PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY; found: \(found))"
                    : "\(keys.count) private keys; expected one")
        }
        do {
            return try Certificate.PrivateKey(pemDocument: block)
        } catch {
            throw IdentityError(source: source, reason: "the \(block.discriminator) block does not decode: \(error)")
        }
    }

    /// The CA that signs a new issuer: the certificate of `certificatePEM` that `keyPEM`'s key belongs to.
    ///
    /// - Throws: ``IdentityError`` when either text does not decode, the key is not ECDSA P-256 (the issuer is
    ///   signed with ECDSA-SHA256), the key belongs to no certificate of the bundle, that certificate is not a CA that
    ///   may sign an intermediate (basicConstraints CA:TRUE, path length absent or at least 1, keyCertSign when
    ///   keyUsage is present), or it has expired at `now`.
    static func signingAuthority(
        certificatePEM: String, certificateSource: String, keyPEM: String, keySource: String, now: Date
    ) throws(IdentityError) -> SigningAuthority {
        let bundle = try certificates(inPEM: certificatePEM, source: certificateSource)
        let key = try privateKey(inPEM: keyPEM, source: keySource)
        guard P256.Signing.PublicKey(key.publicKey) != nil else {
            throw IdentityError(
                source: keySource,
                reason: "a \(keyName(key.publicKey)) key; the issuer is signed with ECDSA-SHA256, so the trust "
                    + "anchor's key must be ECDSA P-256")
        }
        guard let match = bundle.first(where: { $0.certificate.publicKey == key.publicKey }) else {
            let names = bundle.map { $0.certificate.subject.description.quoted }.joined(separator: ", ")
            throw IdentityError(
                source: keySource,
                reason: "the private key does not belong to the certificate in \(certificateSource) (\(names))")
        }
        let certificate = match.certificate
        let subject = certificate.subject.description.quoted
        let constraints: BasicConstraints?
        let usage: KeyUsage?
        do {
            constraints = try certificate.extensions.basicConstraints
            usage = try certificate.extensions.keyUsage
        } catch {
            throw IdentityError(source: certificateSource, reason: "the certificate \(subject) has \(error)")
        }
        guard case .isCertificateAuthority(let pathLength) = constraints else {
            throw IdentityError(
                source: certificateSource,
                reason: "the certificate \(subject) is not a CA (no basicConstraints CA:TRUE), so it cannot sign "
                    + "an issuer")
        }
        if let pathLength, pathLength < 1 {
            throw IdentityError(
                source: certificateSource,
                reason: "the certificate \(subject) has path length \(pathLength), which allows no CA below it; "
                    + "the issuer is one")
        }
        if let usage, !usage.keyCertSign {
            throw IdentityError(
                source: certificateSource,
                reason: "the certificate \(subject) lacks the keyCertSign key usage (it has: \(usage))")
        }
        guard certificate.notValidAfter > now else {
            throw IdentityError(
                source: certificateSource,
                reason: "the certificate \(subject) expired on \(timestamp(certificate.notValidAfter))")
        }
        return SigningAuthority(certificate: certificate, privateKey: key)
    }

    private static func pemDocuments(
        _ text: String, source: String, expecting type: String
    ) throws(IdentityError) -> [PEMDocument] {
        guard text.contains("-----BEGIN ") else {
            throw IdentityError(
                source: source,
                reason: "not PEM: no -----BEGIN \(type)----- block (for DER input: openssl x509 -inform der)")
        }
        do {
            return try PEMDocument.parseMultiple(pemString: text)
        } catch {
            throw IdentityError(source: source, reason: "malformed PEM: \(error)")
        }
    }

    /// The algorithm and size of a public key as people name it: `ECDSA P-256`, `RSA 2048`, `Ed25519`.
    static func keyName(_ key: Certificate.PublicKey) -> String {
        if P256.Signing.PublicKey(key) != nil { return "ECDSA P-256" }
        if P384.Signing.PublicKey(key) != nil { return "ECDSA P-384" }
        if P521.Signing.PublicKey(key) != nil { return "ECDSA P-521" }
        if Curve25519.Signing.PublicKey(key) != nil { return "Ed25519" }
        // RSA keys are only reachable through _CryptoExtras, which this target does not import; swift-certificates
        // describes them as `RSA<bits>.PublicKey`.
        let description = String(describing: key)
        if description.hasPrefix("RSA"), let bits = Int(description.dropFirst(3).prefix(while: \.isNumber)) {
            return "RSA \(bits)"
        }
        return description
    }

    /// A date as RFC 3339 in UTC, the way the commands print and encode them: `2025-06-01T12:00:00Z`.
    static func timestamp(_ date: Date) -> String {
        date.formatted(.iso8601)
    }
}
