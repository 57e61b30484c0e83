import Crypto
import Foundation
import SwiftASN1
import X509

/// How long leaves live (reference §4.4). Helm's defaults: 24 hours, and 20 seconds of clock skew allowance.
public struct IssuanceSettings: Hashable, Sendable {
    /// How long a leaf is valid after `now` (before the skew allowance and the issuer's own expiry are applied).
    public var lifetime: Duration
    /// How far `notValidBefore` is set back, and `notValidAfter` pushed out, to tolerate clocks that differ from ours.
    public var clockSkewAllowance: Duration

    public init(lifetime: Duration = .seconds(24 * 3600), clockSkewAllowance: Duration = .seconds(20)) {
        self.lifetime = lifetime
        self.clockSkewAllowance = clockSkewAllowance
    }
}

/// A leaf certificate issued for a proxy, with what Certify returns.
public struct IssuedLeaf: Hashable, Sendable {
    public let certificate: Certificate
    /// `leaf_certificate`: the leaf, DER.
    public let certificateDER: [UInt8]
    /// `intermediate_certificates`: the issuer first, then the rest of its chain
    /// (``IssuerCredentials/intermediateCertificatesDER``).
    public let intermediateCertificatesDER: [[UInt8]]
    /// `valid_until`: the leaf's `notValidAfter`, as encoded (whole seconds).
    public var validUntil: Date { certificate.notValidAfter }
}

extension IssuerCredentials {
    /// Issues a leaf for a checked request.
    ///
    /// The leaf is valid from `now − clockSkewAllowance` until `now + lifetime + clockSkewAllowance`, cut to
    /// ``notValidAfter`` (the earliest expiry of the issuer's chain, trust anchor included) so it never outlives its
    /// issuer. It carries a random positive 128-bit serial, the request's subject and its one DNS name (the
    /// subject alternative names are critical when the subject is empty, as RFC 5280 requires), `basicConstraints`
    /// CA:FALSE and `keyUsage` digitalSignature and keyEncipherment (both critical, as upstream), `extKeyUsage`
    /// serverAuth and clientAuth, and subject and authority key identifiers; it is signed with ECDSA-SHA256.
    ///
    /// It does not check that the issuer is valid at `now` (``validityProblem(at:)`` does).
    ///
    /// - Throws: ``IdentityError`` with code `internalError` when the certificate cannot be built or signed.
    public func issue(
        for request: ValidatedSigningRequest,
        now: Date,
        settings: IssuanceSettings = IssuanceSettings()
    ) throws(IdentityError) -> IssuedLeaf {
        let skew = settings.clockSkewAllowance.timeInterval
        let notValidAfter = min(now + settings.lifetime.timeInterval + skew, self.notValidAfter)
        let subjectIsEmpty = request.subject.isEmpty
        do {
            let extensions = try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true, keyEncipherment: true))
                try ExtendedKeyUsage([.serverAuth, .clientAuth])
                SubjectKeyIdentifier(hash: request.publicKey)
                AuthorityKeyIdentifier(keyIdentifier: keyIdentifier)
                if subjectIsEmpty {
                    Critical(SubjectAlternativeNames([.dnsName(request.dnsName)]))
                } else {
                    SubjectAlternativeNames([.dnsName(request.dnsName)])
                }
            }
            let leaf = try Certificate(
                version: .v3,
                serialNumber: Self.randomSerialNumber(),
                publicKey: request.publicKey,
                notValidBefore: now - skew,
                notValidAfter: notValidAfter,
                issuer: certificate.subject,
                subject: request.subject,
                signatureAlgorithm: .ecdsaWithSHA256,
                extensions: extensions,
                issuerPrivateKey: privateKey
            )
            return IssuedLeaf(
                certificate: leaf, certificateDER: try Self.der(leaf),
                intermediateCertificatesDER: intermediateCertificatesDER)
        } catch {
            throw IdentityError(code: .internalError, message: "signing the leaf certificate failed: \(error)")
        }
    }

    /// 128 random bits, read as a positive integer (the encoding adds a leading zero byte when the top bit is set);
    /// never zero, which RFC 5280 forbids.
    static func randomSerialNumber() -> Certificate.SerialNumber {
        var generator = SystemRandomNumberGenerator()
        while true {
            let bytes = (0..<16).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
            if bytes.contains(where: { $0 != 0 }) {
                return Certificate.SerialNumber(bytes: bytes)
            }
        }
    }
}

extension Duration {
    /// The duration in seconds, as Foundation measures intervals.
    var timeInterval: TimeInterval {
        let (seconds, attoseconds) = components
        return TimeInterval(seconds) + TimeInterval(attoseconds) * 1e-18
    }
}
