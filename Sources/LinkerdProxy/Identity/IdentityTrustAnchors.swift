import LinkerdCore
import SwiftASN1
import X509

/// The mesh's trust anchors as the proxy gets them (`LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS`, a PEM bundle): the
/// roots that the identity service's certificate, the certificates it issues and every peer's certificate must chain
/// to (reference proxy §4.1, §4.5).
public struct IdentityTrustAnchors: Hashable, Sendable {
    /// At least one certificate, in bundle order.
    public let certificates: [Certificate]
    /// The same certificates, DER-encoded.
    public let derEncoded: [[UInt8]]

    /// Parses a PEM bundle of one or more `CERTIFICATE` blocks.
    ///
    /// - Parameter source: names the bundle in errors, such as the environment variable it came from.
    /// - Throws: ``IdentityMaterialError`` naming `source` when the text is not PEM, holds a block that is not a
    ///   certificate or does not parse, or holds no certificate at all.
    public init(
        pemBundle: String, source: String = "LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS"
    ) throws(IdentityMaterialError) {
        let documents: [PEMDocument]
        do {
            documents = try PEMDocument.parseMultiple(pemString: pemBundle)
        } catch {
            throw IdentityMaterialError(source: source, reason: "is not a PEM certificate bundle: \(error)")
        }
        var certificates: [Certificate] = []
        var derEncoded: [[UInt8]] = []
        for (index, document) in documents.enumerated() {
            guard document.discriminator == Certificate.defaultPEMDiscriminator else {
                throw IdentityMaterialError(
                    source: source,
                    reason: "PEM block \(index + 1) is a \(document.discriminator.quoted) block, but only CERTIFICATE "
                        + "blocks are allowed")
            }
            do {
                certificates.append(try Certificate(derEncoded: document.derBytes))
            } catch {
                throw IdentityMaterialError(
                    source: source, reason: "PEM block \(index + 1) is not a valid X.509 certificate: \(error)")
            }
            derEncoded.append(document.derBytes)
        }
        guard !certificates.isEmpty else {
            throw IdentityMaterialError(source: source, reason: "contains no certificate")
        }
        self.certificates = certificates
        self.derEncoded = derEncoded
    }
}
