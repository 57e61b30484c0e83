import Crypto
import LinkerdCore
import SwiftASN1
import X509

/// The checks a proxy's certificate signing request must pass before it is signed, in two stages that Certify runs
/// at different points (reference §4.3):
///
/// 1. ``parse(derEncoded:)``: the bytes are a DER CSR of at most ``maximumSize`` bytes, its extensions decode, and
///    its self-signature verifies with its own public key. Failures are `invalidArgument`: the bytes are not a
///    well-formed, self-consistent request, whatever the server's state. Upstream never verifies the signature; a
///    request whose signature does not verify was not made by the holder of the key it names (or was altered), so
///    it is as malformed as unparsable bytes.
/// 2. ``check(_:identity:)``: exactly one DNS subject alternative name, equal to the requested identity; the common
///    name(s) empty or equal to it; no other kind of subject alternative name (upstream rejects email, IP and URI
///    names; this rejects every non-DNS kind); an ECDSA P-256 key. Failures are `failedPrecondition`, as upstream's
///    name checks are. Upstream answers `internal` for a non-ECDSA key, when signing fails; rejecting it here, with
///    a message naming the key type, tells the client what to fix. P-384 and RSA keys are refused too: Linkerd
///    proxies generate P-256 keys, and the mesh's certificates are all P-256.
public enum CertificateSigningRequestCheck {
    /// The largest CSR accepted, in bytes. A P-256 CSR for a 253-character name is under 700 bytes.
    public static let maximumSize = 16 * 1024

    /// Stage 1: decodes a DER CSR and verifies its self-signature.
    ///
    /// - Throws: ``IdentityError`` with code `invalidArgument` when the request is too large, is not DER, has
    ///   extensions that cannot be decoded, or has a signature that does not verify.
    public static func parse(derEncoded bytes: [UInt8]) throws(IdentityError) -> ParsedSigningRequest {
        guard bytes.count <= maximumSize else {
            throw .invalidArgument(
                "certificate signing request is \(bytes.count) bytes, more than the \(maximumSize) allowed")
        }
        let request: CertificateSigningRequest
        do {
            request = try CertificateSigningRequest(derEncoded: bytes)
        } catch {
            throw .invalidArgument("certificate signing request could not be parsed as DER: \(error)")
        }
        let names: SubjectAlternativeNames?
        do {
            names = try request.attributes.extensionRequest?.extensions.subjectAlternativeNames
        } catch {
            throw .invalidArgument("certificate signing request extensions could not be parsed: \(error)")
        }
        guard request.publicKey.isValidSignature(request.signature, for: request) else {
            throw .invalidArgument(
                "certificate signing request signature does not verify with the request's own public key "
                    + "(\(request.signatureAlgorithm))")
        }
        return ParsedSigningRequest(
            request: request, subjectAlternativeNames: Array(names ?? SubjectAlternativeNames()))
    }

    /// Stage 2: checks that the request asks for exactly `identity`, with a P-256 key.
    ///
    /// - Throws: ``IdentityError`` with code `failedPrecondition` naming the offending name or key.
    public static func check(
        _ parsed: ParsedSigningRequest, identity: String
    ) throws(IdentityError) -> ValidatedSigningRequest {
        var dnsNames: [String] = []
        for name in parsed.subjectAlternativeNames {
            switch name {
            case .dnsName(let dnsName):
                dnsNames.append(dnsName)
            case .rfc822Name(let email):
                throw .failedPrecondition(
                    "certificate signing request has the email subject alternative name \(email.quoted), "
                        + "but only one DNS name is allowed")
            case .uniformResourceIdentifier(let uri):
                throw .failedPrecondition(
                    "certificate signing request has the URI subject alternative name \(uri.quoted), "
                        + "but only one DNS name is allowed")
            case .ipAddress:
                throw .failedPrecondition(
                    "certificate signing request has an IP address subject alternative name, "
                        + "but only one DNS name is allowed")
            default:
                throw .failedPrecondition(
                    "certificate signing request has a subject alternative name that is not a DNS name (\(name)), "
                        + "but only one DNS name is allowed")
            }
        }
        guard dnsNames.count == 1, let dnsName = dnsNames.first else {
            let found =
                dnsNames.isEmpty
                ? "no DNS subject alternative name"
                : "\(dnsNames.count) DNS subject alternative names (\(dnsNames.map(\.quoted).joined(separator: ", ")))"
            throw .failedPrecondition(
                "certificate signing request has \(found), but must have exactly one: the requested identity "
                    + identity.quoted)
        }
        guard dnsName == identity else {
            throw .failedPrecondition(
                "certificate signing request DNS subject alternative name \(dnsName.quoted) does not match the "
                    + "requested identity \(identity.quoted)")
        }
        for rdn in parsed.request.subject {
            for attribute in rdn where attribute.type == .RDNAttributeType.commonName {
                guard let commonName = String(attribute.value) else {
                    throw .failedPrecondition("certificate signing request common name is not a string")
                }
                guard commonName.isEmpty || commonName == identity else {
                    throw .failedPrecondition(
                        "certificate signing request common name \(commonName.quoted) does not match the requested "
                            + "identity \(identity.quoted)")
                }
            }
        }
        guard P256.Signing.PublicKey(parsed.request.publicKey) != nil else {
            throw .failedPrecondition(
                "certificate signing request key (\(parsed.request.publicKey)) is not ECDSA P-256, the only key type "
                    + "accepted")
        }
        return ValidatedSigningRequest(
            subject: parsed.request.subject, dnsName: dnsName, publicKey: parsed.request.publicKey)
    }
}

/// A CSR that passed ``CertificateSigningRequestCheck/parse(derEncoded:)``: well-formed and self-signed.
public struct ParsedSigningRequest: Hashable, Sendable {
    public let request: CertificateSigningRequest
    /// The subject alternative names of the request's extension request, in order (empty without one).
    public let subjectAlternativeNames: [GeneralName]
}

/// A CSR that passed every check: what a leaf certificate is issued for. Only
/// ``CertificateSigningRequestCheck/check(_:identity:)`` makes one.
public struct ValidatedSigningRequest: Hashable, Sendable {
    /// The request's subject, copied into the leaf (as upstream does).
    public let subject: DistinguishedName
    /// The one DNS subject alternative name: the requested identity.
    public let dnsName: String
    /// An ECDSA P-256 public key.
    public let publicKey: Certificate.PublicKey
}
