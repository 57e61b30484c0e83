import Crypto
import Foundation
import LinkerdCore
import SwiftASN1
import X509

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A throw-away certificate authority for tests, minted at runtime with a fresh P-256 key.
///
/// The CA certificate is self-signed, valid from one hour ago for ten years, and carries `basicConstraints CA:TRUE`
/// (critical), `keyUsage keyCertSign, cRLSign` (critical) and a subject key identifier. Nothing is written to disk;
/// every instance is a new, unrelated CA.
///
/// `@unchecked Sendable` only because swift-crypto (3.12) does not annotate `P256.Signing.PrivateKey`; the key is
/// immutable after creation and BoringSSL signs with it from any thread.
public struct TestCertificateAuthority: @unchecked Sendable {
    public let certificate: Certificate
    public let privateKey: P256.Signing.PrivateKey
    /// The CA certificate as one PEM block.
    public let certificatePEM: String

    public init(commonName: String = "linkerd-swift test CA") throws {
        let key = P256.Signing.PrivateKey()
        let publicKey = Certificate.PublicKey(key.publicKey)
        let name = try DistinguishedName { CommonName(commonName) }
        let now = Date()
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: publicKey,
            notValidBefore: now - 3600,
            notValidAfter: now + 10 * 365 * 86_400,
            issuer: name,
            subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: publicKey)
            },
            issuerPrivateKey: Certificate.PrivateKey(key)
        )
        self.certificate = certificate
        self.privateKey = key
        self.certificatePEM = try certificate.serializeAsPEM().pemString
    }

    /// Issues a leaf certificate signed by this CA, with a fresh P-256 key.
    ///
    /// The leaf is valid from five minutes ago (to tolerate clock skew) for `validity`, and carries
    /// `basicConstraints CA:FALSE` and `keyUsage digitalSignature` (both critical), the requested extended key usages,
    /// the subject alternative names (when any), and subject and authority key identifiers.
    ///
    /// - Parameters:
    ///   - commonName: the subject's CN; the Kubernetes API server takes it as the user name of a client certificate.
    ///   - dnsNames: DNS subject alternative names.
    ///   - ipAddresses: IPv4 (`127.0.0.1`) or IPv6 (`::1`) subject alternative names.
    /// - Throws: when an IP address cannot be parsed, or when certificate construction fails.
    public func issue(
        commonName: String,
        dnsNames: [String] = [],
        ipAddresses: [String] = [],
        clientAuth: Bool = true,
        serverAuth: Bool = true,
        validity: Duration = .seconds(86_400)
    ) throws -> IssuedCertificate {
        let key = P256.Signing.PrivateKey()
        let publicKey = Certificate.PublicKey(key.publicKey)
        var names: [GeneralName] = dnsNames.map { .dnsName($0) }
        for address in ipAddresses {
            names.append(.ipAddress(ASN1OctetString(contentBytes: try Self.addressBytes(address)[...])))
        }
        var usages: [ExtendedKeyUsage.Usage] = []
        if serverAuth { usages.append(.serverAuth) }
        if clientAuth { usages.append(.clientAuth) }
        let authorityKeyID = try certificate.extensions.subjectKeyIdentifier?.keyIdentifier
        let seconds = validity.inSeconds
        let now = Date()
        let leaf = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: publicKey,
            notValidBefore: now - 300,
            notValidAfter: now + seconds,
            issuer: certificate.subject,
            subject: try DistinguishedName { CommonName(commonName) },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                if !usages.isEmpty {
                    try ExtendedKeyUsage(usages)
                }
                SubjectKeyIdentifier(hash: publicKey)
                AuthorityKeyIdentifier(keyIdentifier: authorityKeyID)
                if !names.isEmpty {
                    SubjectAlternativeNames(names)
                }
            },
            issuerPrivateKey: Certificate.PrivateKey(privateKey)
        )
        return IssuedCertificate(
            certificate: leaf,
            privateKey: key,
            certificatePEM: try leaf.serializeAsPEM().pemString,
            privateKeyPEM: key.pemRepresentation
        )
    }

    /// The last common name of a DER-encoded certificate's subject, or nil when it has none.
    ///
    /// For servers that authenticate clients by certificate and take the CN as the user name.
    public static func subjectCommonName(derEncoded bytes: [UInt8]) throws -> String? {
        let certificate = try Certificate(derEncoded: bytes)
        for rdn in certificate.subject.reversed() {
            for attribute in rdn.reversed() where attribute.type == .RDNAttributeType.commonName {
                return String(attribute.value)
            }
        }
        return nil
    }

    private static func addressBytes(_ text: String) throws -> [UInt8] {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { Array($0) }
        }
        throw InvalidIPAddress(text: text)
    }

    /// An `ipAddresses` entry that is neither an IPv4 nor an IPv6 address.
    public struct InvalidIPAddress: Error, Hashable, Sendable, CustomStringConvertible {
        public var text: String

        public init(text: String) {
            self.text = text
        }

        public var description: String {
            "\"\(text)\" is not an IPv4 or IPv6 address"
        }
    }
}

/// A leaf certificate and its key, as issued by `TestCertificateAuthority.issue`.
///
/// `@unchecked Sendable` for the same reason as `TestCertificateAuthority`: an immutable, unannotated P-256 key.
public struct IssuedCertificate: @unchecked Sendable {
    public let certificate: Certificate
    public let privateKey: P256.Signing.PrivateKey
    /// The leaf certificate as one PEM block (without the CA).
    public let certificatePEM: String
    /// The private key as a PKCS#8 PEM block (`-----BEGIN PRIVATE KEY-----`).
    public let privateKeyPEM: String
}
