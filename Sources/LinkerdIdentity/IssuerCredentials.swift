import Crypto
import Foundation
import SwiftASN1
@_spi(FixedExpiryValidationTime) import X509

/// Which files of the issuer directory (the mounted Secret `linkerd-identity-issuer`) hold the issuer's certificate
/// and key (reference §4.5). The raw values are upstream's `-identity-scheme` flag values.
public enum IssuerFileLayout: String, Hashable, Sendable, CaseIterable {
    /// Helm's Secret: `crt.pem` (the issuer certificate, then any intermediates) and `key.pem`.
    case linkerd = "linkerd.io/tls"
    /// cert-manager's Secret: `tls.crt` and `tls.key`. Its `ca.crt` (the certificate that signed the issuer) is not
    /// read: trust comes from the trust anchors only, as upstream.
    case kubernetes = "kubernetes.io/tls"

    public var certificateFile: String {
        switch self {
        case .linkerd: "crt.pem"
        case .kubernetes: "tls.crt"
        }
    }

    public var privateKeyFile: String {
        switch self {
        case .linkerd: "key.pem"
        case .kubernetes: "tls.key"
        }
    }

    /// The layout whose certificate file is among `fileNames`, preferring ``linkerd``; nil when neither is.
    public static func detect(in fileNames: some Sequence<String>) -> IssuerFileLayout? {
        let names = Set(fileNames)
        return allCases.first { names.contains($0.certificateFile) }
    }
}

/// The identity issuer: an intermediate CA certificate and its ECDSA P-256 key, verified against the trust anchors
/// when loaded. Values are immutable; a reload makes a new one (see ``IdentityAuthority/update(issuer:)``).
///
/// Loading checks, in order, each failure naming the file at fault: the certificate file is a PEM bundle of
/// certificates (the issuer first, then any intermediates); the key file is a private key (PKCS#8 or SEC 1 PEM),
/// ECDSA P-256, and the key of the issuer certificate; the issuer certificate is a CA (`basicConstraints` CA:TRUE);
/// and it chains to a trust anchor, through the bundle's other certificates, under RFC 5280 rules with every
/// certificate of the chain valid at the given time (no name check, as upstream).
public struct IssuerCredentials: Sendable {
    /// The issuer (CA) certificate that signs leaves.
    public let certificate: Certificate
    /// The issuer's key, ECDSA P-256.
    public let privateKey: Certificate.PrivateKey
    /// The chain the issuer was verified through: the issuer first, the trust anchor last.
    public let verifiedChain: [Certificate]
    /// What Certify returns as `intermediate_certificates`, DER: the issuer first, then the rest of the certificate
    /// file in order, leaving out any certificate that is a trust anchor.
    public let intermediateCertificatesDER: [[UInt8]]
    /// The latest `notValidBefore` of ``verifiedChain``.
    public let notValidBefore: Date
    /// The earliest `notValidAfter` of ``verifiedChain``: no leaf outlives it.
    public let notValidAfter: Date
    /// The issuer's subject key identifier (its extension, or the SHA-1 of its key), for the leaves' authority key
    /// identifier.
    let keyIdentifier: ArraySlice<UInt8>

    /// Loads an issuer from PEM text.
    ///
    /// - Parameters:
    ///   - certificateSource, privateKeySource: name the inputs in errors (usually their file paths).
    ///   - now: the time at which the chain must be valid.
    /// - Throws: ``CredentialsError`` naming the source at fault.
    public init(
        certificatePEM: String,
        privateKeyPEM: String,
        trustAnchors: TrustAnchors,
        now: Date,
        certificateSource: String = "issuer certificate",
        privateKeySource: String = "issuer key"
    ) async throws(CredentialsError) {
        let bundle = try CredentialsError.certificates(inPEM: certificatePEM, source: certificateSource)
        let issuer = bundle[0]
        let key: Certificate.PrivateKey
        do {
            key = try Certificate.PrivateKey(pemEncoded: privateKeyPEM)
        } catch {
            throw CredentialsError(source: privateKeySource, reason: "is not a PEM private key: \(error)")
        }
        guard P256.Signing.PublicKey(key.publicKey) != nil else {
            throw CredentialsError(
                source: privateKeySource,
                reason: "holds a key of type \(key.publicKey), but the issuer key must be ECDSA P-256")
        }
        guard key.publicKey == issuer.publicKey else {
            throw CredentialsError(
                source: privateKeySource,
                reason: "is not the key of the issuer certificate \(issuer.subject) in \(certificateSource)")
        }
        let constraints: BasicConstraints?
        do {
            constraints = try issuer.extensions.basicConstraints
        } catch {
            throw CredentialsError(
                source: certificateSource, reason: "the issuer certificate's basic constraints do not parse: \(error)")
        }
        guard case .isCertificateAuthority = constraints else {
            throw CredentialsError(
                source: certificateSource,
                reason: "the issuer certificate \(issuer.subject) is not a CA (basicConstraints CA:TRUE is missing)")
        }
        if let problem = Self.validityProblem(of: issuer, at: now) {
            throw CredentialsError(source: certificateSource, reason: "the issuer certificate \(problem)")
        }
        let chain = try await Self.verify(
            issuer, intermediates: bundle.dropFirst(), trustAnchors: trustAnchors, now: now, source: certificateSource)

        var intermediates: [[UInt8]] = []
        do {
            for certificate in bundle where certificate == issuer || !trustAnchors.certificates.contains(certificate) {
                intermediates.append(try Self.der(certificate))
            }
            keyIdentifier =
                try issuer.extensions.subjectKeyIdentifier?.keyIdentifier
                ?? SubjectKeyIdentifier(hash: issuer.publicKey).keyIdentifier
        } catch {
            throw CredentialsError(source: certificateSource, reason: "the issuer certificate is malformed: \(error)")
        }
        certificate = issuer
        privateKey = key
        verifiedChain = chain
        intermediateCertificatesDER = intermediates
        notValidBefore = chain.map(\.notValidBefore).max() ?? issuer.notValidBefore
        notValidAfter = chain.map(\.notValidAfter).min() ?? issuer.notValidAfter
    }

    /// Loads an issuer from the files of the issuer directory, given as a map from file name to contents (as a
    /// mounted Secret has them).
    ///
    /// - Parameters:
    ///   - layout: which files to read; nil detects it from the file names (``IssuerFileLayout/detect(in:)``).
    ///   - directory: prefixes the file names in errors.
    /// - Throws: ``CredentialsError`` naming the missing or invalid file.
    public init(
        directoryContents files: [String: [UInt8]],
        layout: IssuerFileLayout? = nil,
        directory: String = ".",
        trustAnchors: TrustAnchors,
        now: Date
    ) async throws(CredentialsError) {
        guard let layout = layout ?? IssuerFileLayout.detect(in: files.keys) else {
            throw CredentialsError(
                source: directory,
                reason: "contains neither crt.pem (linkerd.io/tls) nor tls.crt (kubernetes.io/tls)")
        }
        let certificatePath = Self.path(layout.certificateFile, in: directory)
        let keyPath = Self.path(layout.privateKeyFile, in: directory)
        guard let certificateBytes = files[layout.certificateFile] else {
            throw CredentialsError(source: certificatePath, reason: "does not exist")
        }
        guard let keyBytes = files[layout.privateKeyFile] else {
            throw CredentialsError(source: keyPath, reason: "does not exist")
        }
        try await self.init(
            certificatePEM: try CredentialsError.text(certificateBytes, source: certificatePath),
            privateKeyPEM: try CredentialsError.text(keyBytes, source: keyPath),
            trustAnchors: trustAnchors,
            now: now,
            certificateSource: certificatePath,
            privateKeySource: keyPath)
    }

    /// Reads the issuer directory, such as `/var/run/linkerd/identity/issuer`.
    ///
    /// - Parameter layout: which files to read; nil picks ``IssuerFileLayout/linkerd`` when `crt.pem` exists, else
    ///   ``IssuerFileLayout/kubernetes``.
    /// - Throws: ``CredentialsError`` naming the file that is missing, unreadable or invalid.
    public static func load(
        fromDirectory directory: String,
        layout: IssuerFileLayout? = nil,
        trustAnchors: TrustAnchors,
        now: Date
    ) async throws(CredentialsError) -> IssuerCredentials {
        let layout =
            layout
            ?? (FileManager.default.fileExists(atPath: path(IssuerFileLayout.linkerd.certificateFile, in: directory))
                ? .linkerd : .kubernetes)
        var files: [String: [UInt8]] = [:]
        for name in [layout.certificateFile, layout.privateKeyFile] {
            let filePath = path(name, in: directory)
            guard FileManager.default.fileExists(atPath: filePath) else {
                throw CredentialsError(source: filePath, reason: "does not exist")
            }
            files[name] = try CredentialsError.readBytes(filePath)
        }
        return try await IssuerCredentials(
            directoryContents: files, layout: layout, directory: directory, trustAnchors: trustAnchors, now: now)
    }

    /// Why the issuer cannot sign at `now`: a certificate of ``verifiedChain`` is not yet or no longer valid. Nil
    /// when it can.
    ///
    /// Equivalent to verifying the issuer against the trust anchors again, as upstream does on every call: the
    /// anchors and the chain are immutable and their signatures were verified at load, so only time can change the
    /// answer, and this checks time without repeating the signature checks.
    public func validityProblem(at now: Date) -> String? {
        for certificate in verifiedChain {
            if let problem = Self.validityProblem(of: certificate, at: now) {
                let role = certificate == self.certificate ? "the issuer certificate" : "its chain's certificate"
                return "\(role) \(problem)"
            }
        }
        return nil
    }

    // MARK: - Helpers

    private static func verify(
        _ issuer: Certificate,
        intermediates: ArraySlice<Certificate>,
        trustAnchors: TrustAnchors,
        now: Date,
        source: String
    ) async throws(CredentialsError) -> [Certificate] {
        var verifier = Verifier(rootCertificates: CertificateStore(trustAnchors.certificates)) {
            RFC5280Policy(fixedExpiryValidationTime: now)
        }
        switch await verifier.validate(leaf: issuer, intermediates: CertificateStore(intermediates)) {
        case .validCertificate(let chain):
            return Array(chain)
        case .couldNotValidate(let failures):
            let reasons =
                failures.isEmpty
                ? "it is not signed by any of the \(trustAnchors.certificates.count) trust anchors, nor through the "
                    + "file's other certificates"
                : failures.map { "\($0.policyFailureReason)" }.joined(separator: "; ")
            throw CredentialsError(
                source: source,
                reason: "the issuer certificate \(issuer.subject) does not verify against the trust anchors at "
                    + "\(now.ISO8601Format()): \(reasons)")
        }
    }

    /// "expired at …" or "is not valid before …", or nil when `certificate` is valid at `now`.
    static func validityProblem(of certificate: Certificate, at now: Date) -> String? {
        if now > certificate.notValidAfter {
            return "\(certificate.subject) expired at \(certificate.notValidAfter.ISO8601Format())"
        }
        if now < certificate.notValidBefore {
            return "\(certificate.subject) is not valid before \(certificate.notValidBefore.ISO8601Format())"
        }
        return nil
    }

    static func der(_ certificate: Certificate) throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        return serializer.serializedBytes
    }

    private static func path(_ name: String, in directory: String) -> String {
        directory.hasSuffix("/") ? directory + name : "\(directory)/\(name)"
    }
}
