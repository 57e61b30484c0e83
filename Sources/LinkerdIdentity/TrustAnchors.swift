import Foundation
import SwiftASN1
import X509

/// The mesh's trust anchors: the root certificates every issuer chain, and so every proxy certificate, must verify
/// against. Upstream mounts them from the ConfigMap `linkerd-identity-trust-roots` (key `ca-bundle.crt`) and reads
/// them once at startup (reference §4.5).
public struct TrustAnchors: Hashable, Sendable {
    /// At least one certificate, in bundle order.
    public let certificates: [Certificate]

    /// - Throws: ``CredentialsError`` when `certificates` is empty.
    public init(certificates: [Certificate], source: String = "trust anchors") throws(CredentialsError) {
        guard !certificates.isEmpty else {
            throw CredentialsError(source: source, reason: "contains no certificate")
        }
        self.certificates = certificates
    }

    /// Parses a PEM bundle of one or more `CERTIFICATE` blocks.
    ///
    /// - Parameter source: names the bundle in errors, usually its file path.
    /// - Throws: ``CredentialsError`` naming `source` when the text is not PEM, holds a block that is not a
    ///   certificate or does not parse, or holds no certificate at all.
    public init(pemBundle: String, source: String = "trust anchors") throws(CredentialsError) {
        try self.init(certificates: try CredentialsError.certificates(inPEM: pemBundle, source: source), source: source)
    }

    /// Reads and parses a PEM bundle file, such as `/var/run/linkerd/identity/trust-roots/ca-bundle.crt`.
    ///
    /// - Throws: ``CredentialsError`` naming `path` when it cannot be read or parsed.
    public static func load(fromFile path: String) throws(CredentialsError) -> TrustAnchors {
        try TrustAnchors(pemBundle: try CredentialsError.readText(path), source: path)
    }
}

/// Trust anchors or issuer credentials that could not be loaded, naming the file (or other source) at fault so an
/// operator knows what to fix: `"/var/run/linkerd/identity/issuer/crt.pem: contains no certificate"`.
public struct CredentialsError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The file path, or a description of the input when it did not come from a file.
    public var source: String
    /// What is wrong with it.
    public var reason: String

    public init(source: String, reason: String) {
        self.source = source
        self.reason = reason
    }

    public var description: String {
        "\(source): \(reason)"
    }

    /// The certificates of a PEM bundle, in order.
    static func certificates(inPEM text: String, source: String) throws(CredentialsError) -> [Certificate] {
        let documents: [PEMDocument]
        do {
            documents = try PEMDocument.parseMultiple(pemString: text)
        } catch {
            throw CredentialsError(source: source, reason: "is not valid PEM: \(error)")
        }
        var certificates: [Certificate] = []
        for (index, document) in documents.enumerated() {
            guard document.discriminator == Certificate.defaultPEMDiscriminator else {
                throw CredentialsError(
                    source: source,
                    reason: "PEM block \(index + 1) is a \(document.discriminator), but only CERTIFICATE blocks are "
                        + "allowed")
            }
            do {
                certificates.append(try Certificate(derEncoded: document.derBytes))
            } catch {
                throw CredentialsError(
                    source: source, reason: "PEM block \(index + 1) is not a valid X.509 certificate: \(error)")
            }
        }
        guard !certificates.isEmpty else {
            throw CredentialsError(source: source, reason: "contains no certificate")
        }
        return certificates
    }

    /// A file's contents as UTF-8 text.
    static func readText(_ path: String) throws(CredentialsError) -> String {
        try text(try readBytes(path), source: path)
    }

    /// A file's contents.
    static func readBytes(_ path: String) throws(CredentialsError) -> [UInt8] {
        do {
            return Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            throw CredentialsError(source: path, reason: "could not be read: \(error.localizedDescription)")
        }
    }

    static func text(_ bytes: [UInt8], source: String) throws(CredentialsError) -> String {
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw CredentialsError(source: source, reason: "is not UTF-8 text")
        }
        return text
    }
}
