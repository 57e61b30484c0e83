import Crypto
import Foundation
import LinkerdCore
import SwiftASN1
import X509

/// What `linkerd identity inspect` reports about one PEM bundle.
struct BundleInspection: Codable, Hashable, Sendable {
    /// The file, or `stdin`.
    var source: String
    var certificates: [CertificateInspection]
}

/// What `linkerd identity inspect` reports about one certificate, at a given time. Encoded as is for `-o json`.
struct CertificateInspection: Codable, Hashable, Sendable {
    /// How a certificate relates to the one after it in its bundle.
    enum ChainLink: String, Codable, Hashable, Sendable {
        /// The next certificate's subject is this one's issuer and its key verifies this one's signature.
        case signedByNext = "signed-by-next"
        /// The next certificate did not sign this one (the reason is in ``CertificateInspection/chainProblem``).
        case notSignedByNext = "not-signed-by-next"
        /// The last of its bundle, and self-signed (issuer and subject equal, its own key verifies its signature).
        case selfSigned = "self-signed"
        /// The last of its bundle, signed by a certificate the bundle does not hold.
        case last
    }

    /// Where the certificate stands at the time of inspection.
    enum Status: String, Codable, Hashable, Sendable {
        case valid
        /// Valid, but for less than ``CertificateInspection/warningPeriod``.
        case expiringSoon = "expiring-soon"
        case expired
        case notYetValid = "not-yet-valid"
    }

    /// `linkerd check` warns this long before a trust anchor or issuer expires (control-plane.md §4.5).
    static let warningPeriod: TimeInterval = 60 * 86_400

    var subject: String
    var issuer: String
    /// Colon-separated lowercase hex, as OpenSSL prints serials.
    var serialNumber: String
    /// `DNS:name`, `IP:address`, `URI:uri`, `email:address`, or swift-certificates' description of other kinds.
    var subjectAlternativeNames: [String]
    /// `ECDSA P-256`, `RSA 2048`, `Ed25519`.
    var publicKey: String
    var signatureAlgorithm: String
    var isCertificateAuthority: Bool
    /// The basicConstraints path length of a CA; nil when unlimited or not a CA.
    var pathLength: Int?
    var keyUsage: [String]
    var extendedKeyUsage: [String]
    var notBefore: String
    var notAfter: String
    /// Whole days from the time of inspection to `notAfter`, rounded down: negative once expired.
    var daysLeft: Int
    var status: Status
    /// Set for every status but `valid`: `EXPIRED …`, `expires in < 60 days …`, `NOT YET VALID …`.
    var warning: String?
    /// Colon-separated uppercase hex of the SHA-256 of the DER, as `openssl x509 -fingerprint -sha256` prints it.
    var sha256Fingerprint: String
    var chain: ChainLink
    /// Why the next certificate did not sign this one; nil unless `chain` is `not-signed-by-next`.
    var chainProblem: String?

    /// Inspects `bundled`, followed in its bundle by `next` (nil for the last), at `now`.
    ///
    /// - Throws: ``IdentityError`` naming `source` when an extension is malformed.
    init(
        _ bundled: BundledCertificate, next: Certificate?, now: Date, source: String, position: Int
    ) throws(IdentityError) {
        let certificate = bundled.certificate
        let extensions = certificate.extensions
        let constraints: BasicConstraints?
        let names: SubjectAlternativeNames?
        let usage: KeyUsage?
        let extendedUsage: ExtendedKeyUsage?
        do {
            constraints = try extensions.basicConstraints
            names = try extensions.subjectAlternativeNames
            usage = try extensions.keyUsage
            extendedUsage = try extensions.extendedKeyUsage
        } catch {
            throw IdentityError(source: source, reason: "certificate \(position) has a malformed extension: \(error)")
        }

        subject = certificate.subject.description
        issuer = certificate.issuer.description
        serialNumber = certificate.serialNumber.bytes.map(Self.hexByte).joined(separator: ":")
        subjectAlternativeNames = (names.map(Array.init) ?? []).map(Self.describe)
        publicKey = IdentityPKI.keyName(certificate.publicKey)
        // swift-certificates describes the known algorithms as `SignatureAlgorithm.ecdsaWithSHA256`.
        let algorithm = String(describing: certificate.signatureAlgorithm)
        let prefix = "SignatureAlgorithm."
        signatureAlgorithm = algorithm.hasPrefix(prefix) ? String(algorithm.dropFirst(prefix.count)) : algorithm
        if case .isCertificateAuthority(let maxPathLength) = constraints {
            isCertificateAuthority = true
            pathLength = maxPathLength
        } else {
            isCertificateAuthority = false
            pathLength = nil
        }
        keyUsage = usage.map { $0.description.components(separatedBy: ", ").filter { !$0.isEmpty } } ?? []
        extendedKeyUsage = extendedUsage.map { $0.map(\.description) } ?? []
        notBefore = IdentityPKI.timestamp(certificate.notValidBefore)
        notAfter = IdentityPKI.timestamp(certificate.notValidAfter)

        let remaining = certificate.notValidAfter.timeIntervalSince(now)
        daysLeft = Int((remaining / 86_400).rounded(.down))
        if now < certificate.notValidBefore {
            status = .notYetValid
            warning = "NOT YET VALID: valid from \(notBefore)"
        } else if remaining <= 0 {
            status = .expired
            let elapsed = Int((-remaining / 86_400).rounded(.down))
            let ago = elapsed == 0 ? "less than a day ago" : "\(elapsed) day\(elapsed == 1 ? "" : "s") ago"
            warning = "EXPIRED on \(notAfter), \(ago)"
        } else if remaining < Self.warningPeriod {
            status = .expiringSoon
            warning = "expires in < 60 days (on \(notAfter)); linkerd check warns from 60 days before expiry"
        } else {
            status = .valid
            warning = nil
        }

        sha256Fingerprint = SHA256.hash(data: bundled.derBytes).map(Self.hexByte).joined(separator: ":").uppercased()
        chainProblem = nil
        if let next {
            if certificate.issuer != next.subject {
                chain = .notSignedByNext
                chainProblem =
                    "its issuer is \(issuer.quoted), the next certificate is \(next.subject.description.quoted)"
            } else if !next.publicKey.isValidSignature(certificate.signature, for: certificate) {
                chain = .notSignedByNext
                chainProblem = "the next certificate's key does not verify its signature"
            } else {
                chain = .signedByNext
            }
        } else if certificate.issuer == certificate.subject,
            certificate.publicKey.isValidSignature(certificate.signature, for: certificate)
        {
            chain = .selfSigned
        } else {
            chain = .last
        }
    }

    private static func hexByte(_ byte: UInt8) -> String {
        byte < 16 ? "0" + String(byte, radix: 16) : String(byte, radix: 16)
    }

    private static func describe(_ name: GeneralName) -> String {
        switch name {
        case .dnsName(let dns):
            return "DNS:\(dns)"
        case .ipAddress(let octets):
            let bytes = Array(octets.bytes)
            return "IP:" + (IPAddress(bytes: bytes).map(String.init(describing:)) ?? bytes.map(hexByte).joined())
        case .uniformResourceIdentifier(let uri):
            return "URI:\(uri)"
        case .rfc822Name(let address):
            return "email:\(address)"
        default:
            return String(describing: name)
        }
    }
}

/// The plain-text form of `linkerd identity inspect`.
enum InspectionText {
    static func render(_ bundles: [BundleInspection]) -> String {
        var lines: [String] = []
        for bundle in bundles {
            if !lines.isEmpty { lines.append("") }
            let count = bundle.certificates.count
            lines.append("\(bundle.source): \(count) certificate\(count == 1 ? "" : "s")")
            for (index, certificate) in bundle.certificates.enumerated() {
                lines.append("")
                lines += render(certificate, position: index + 1, isLast: index == count - 1)
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private static func render(_ certificate: CertificateInspection, position: Int, isLast: Bool) -> [String] {
        let authority: String
        if certificate.isCertificateAuthority {
            authority = "yes, path length " + (certificate.pathLength.map(String.init) ?? "unlimited")
        } else {
            authority = "no"
        }
        let chain: String
        switch certificate.chain {
        case .signedByNext: chain = "yes (certificate \(position + 1))"
        case .notSignedByNext: chain = "NO: " + (certificate.chainProblem ?? "")
        case .selfSigned: chain = "self-signed (last in the bundle)"
        case .last: chain = "by a certificate not in the bundle (last in the bundle)"
        }
        func list(_ values: [String]) -> String { values.isEmpty ? "none" : values.joined(separator: ", ") }
        var fields: [(String, String)] = [
            ("Subject", certificate.subject),
            ("Issuer", certificate.issuer),
            ("Serial", certificate.serialNumber),
            ("SANs", list(certificate.subjectAlternativeNames)),
            ("Public key", certificate.publicKey),
            ("Signature", certificate.signatureAlgorithm),
            ("CA", authority),
            ("Key usage", list(certificate.keyUsage)),
            ("Extended key usage", list(certificate.extendedKeyUsage)),
            ("Not before", certificate.notBefore),
            ("Not after", certificate.notAfter),
            ("Days left", String(certificate.daysLeft)),
            ("SHA-256 fingerprint", certificate.sha256Fingerprint),
            (isLast ? "Signed" : "Signed by next", chain),
        ]
        if let warning = certificate.warning {
            fields.append(("Warning", warning))
        }
        let width = fields.map(\.0.count).max() ?? 0
        return ["[\(position)] \(certificate.subject)"]
            + fields.map { label, value in
                "  " + label + ":" + String(repeating: " ", count: width - label.count + 1) + value
            }
    }
}
