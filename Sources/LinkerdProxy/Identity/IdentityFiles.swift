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

/// The proxy's private key and certificate signing request, in the identity directory
/// (`LINKERD2_PROXY_IDENTITY_DIR`, an in-memory emptyDir), with the file contract of upstream's `proxy-identity`
/// wrapper (reference proxy §4.1):
///
/// - `key.p8`: an ECDSA P-256 private key, PKCS#8 DER, mode 0600;
/// - `csr.der`: a DER certificate signing request signed by that key, with `CN=<local name>` and exactly one DNS
///   subject alternative name, the local name.
///
/// ``prepare(directory:localName:)`` uses the files when they are there and valid, so a restarted proxy container
/// (or a wrapper that already wrote them) keeps its key; it generates what is missing. Files that are there but
/// unusable (garbage, another key type, a request for another name or made with another key) are an error, not
/// replaced: they mean the directory is shared or misconfigured, and overwriting would hide it.
public struct IdentityFiles: Sendable {
    /// What ``prepare(directory:localName:)`` found.
    public enum Origin: Hashable, Sendable {
        /// Both files were there and valid.
        case loaded
        /// The key was there; the signing request was missing and was made from it.
        case generatedSigningRequest
        /// There was no key: a new key and signing request were written (replacing any signing request there).
        case generated
    }

    public static let privateKeyFileName = "key.p8"
    public static let signingRequestFileName = "csr.der"

    /// The identity directory.
    public let directory: String
    /// The identity the signing request asks for (`LINKERD2_PROXY_IDENTITY_LOCAL_NAME`).
    public let localName: String
    /// The ECDSA P-256 key of `key.p8`.
    public let privateKey: Certificate.PrivateKey
    /// The contents of `csr.der`, sent as `certificate_signing_request` in every Certify call.
    public let signingRequestDER: [UInt8]
    public let origin: Origin

    public var privateKeyPath: String { Self.path(Self.privateKeyFileName, in: directory) }
    public var signingRequestPath: String { Self.path(Self.signingRequestFileName, in: directory) }

    /// Loads or creates the key and signing request for `localName` in `directory`.
    ///
    /// - Throws: ``IdentityMaterialError`` when `localName` is not a DNS name; when `directory` does not exist or is
    ///   not a directory (it is never created); when a file is a directory, cannot be read or written; when
    ///   `key.p8` is not a PKCS#8 DER ECDSA P-256 key; when `csr.der` is not a DER signing request, its signature
    ///   does not verify, it was made with another key, or it asks for other names.
    public static func prepare(directory: String, localName: String) throws(IdentityMaterialError) -> IdentityFiles {
        if let problem = dnsNameProblem(localName) {
            throw IdentityMaterialError(
                source: "LINKERD2_PROXY_IDENTITY_LOCAL_NAME", reason: "\(localName.quoted) \(problem)")
        }
        switch fileKind(directory) {
        case .missing:
            throw IdentityMaterialError(
                source: directory,
                reason: "does not exist; the identity directory (LINKERD2_PROXY_IDENTITY_DIR) must exist, it is not "
                    + "created")
        case .file:
            throw IdentityMaterialError(
                source: directory, reason: "is not a directory (LINKERD2_PROXY_IDENTITY_DIR must name one)")
        case .directory:
            break
        }
        let keyPath = path(privateKeyFileName, in: directory)
        let requestPath = path(signingRequestFileName, in: directory)

        guard let keyBytes = try readIfPresent(keyPath) else {
            let key = P256.Signing.PrivateKey()
            let privateKey = Certificate.PrivateKey(key)
            let request = try signingRequest(for: localName, key: privateKey, path: requestPath)
            try writeFile(Array(key.derRepresentation), to: keyPath, mode: 0o600)
            try writeFile(request, to: requestPath, mode: 0o644)
            return IdentityFiles(
                directory: directory, localName: localName, privateKey: privateKey, signingRequestDER: request,
                origin: .generated)
        }
        let privateKey = try parsePrivateKey(keyBytes, path: keyPath)
        guard let requestBytes = try readIfPresent(requestPath) else {
            let request = try signingRequest(for: localName, key: privateKey, path: requestPath)
            try writeFile(request, to: requestPath, mode: 0o644)
            return IdentityFiles(
                directory: directory, localName: localName, privateKey: privateKey, signingRequestDER: request,
                origin: .generatedSigningRequest)
        }
        try checkSigningRequest(requestBytes, path: requestPath, localName: localName, key: privateKey)
        return IdentityFiles(
            directory: directory, localName: localName, privateKey: privateKey, signingRequestDER: requestBytes,
            origin: .loaded)
    }

    // MARK: - Key and signing request

    /// `key.p8`: PKCS#8 DER, ECDSA P-256.
    static func parsePrivateKey(_ bytes: [UInt8], path: String) throws(IdentityMaterialError) -> Certificate.PrivateKey
    {
        guard !bytes.isEmpty else {
            throw IdentityMaterialError(source: path, reason: "is empty, but must hold a PKCS#8 DER private key")
        }
        let key: Certificate.PrivateKey
        do {
            key = try Certificate.PrivateKey(derBytes: bytes)
        } catch {
            throw IdentityMaterialError(source: path, reason: "is not a PKCS#8 DER private key: \(error)")
        }
        guard P256.Signing.PublicKey(key.publicKey) != nil else {
            throw IdentityMaterialError(
                source: path, reason: "holds a key of type \(key.publicKey), but the proxy's key must be ECDSA P-256")
        }
        return key
    }

    /// Checks that `bytes` is a signing request `key` made for `localName` alone.
    static func checkSigningRequest(
        _ bytes: [UInt8], path: String, localName: String, key: Certificate.PrivateKey
    ) throws(IdentityMaterialError) {
        func failure(_ reason: String) -> IdentityMaterialError {
            IdentityMaterialError(source: path, reason: reason)
        }
        guard !bytes.isEmpty else {
            throw failure("is empty, but must hold a DER certificate signing request")
        }
        let request: CertificateSigningRequest
        let alternativeNames: SubjectAlternativeNames?
        do {
            request = try CertificateSigningRequest(derEncoded: bytes)
            alternativeNames = try request.attributes.extensionRequest?.extensions.subjectAlternativeNames
        } catch {
            throw failure("is not a DER certificate signing request: \(error)")
        }
        guard request.publicKey.isValidSignature(request.signature, for: request) else {
            throw failure("has a signature that does not verify with its own public key")
        }
        guard request.publicKey == key.publicKey else {
            throw failure("was made with another key than the one in \(privateKeyFileName)")
        }
        var dnsNames: [String] = []
        for name in alternativeNames ?? SubjectAlternativeNames() {
            guard case .dnsName(let dnsName) = name else {
                throw failure(
                    "has the subject alternative name \(name), but only one DNS name, the local name "
                        + "\(localName.quoted), is allowed")
            }
            dnsNames.append(dnsName)
        }
        if dnsNames.count == 1, let only = dnsNames.first, only != localName {
            throw failure("is for \(only.quoted), not for the local name \(localName.quoted)")
        }
        guard dnsNames == [localName] else {
            let found =
                dnsNames.isEmpty ? "no DNS name" : "the DNS names \(dnsNames.map(\.quoted).joined(separator: ", "))"
            throw failure("has \(found), but must have exactly one: the local name \(localName.quoted)")
        }
        for relativeName in request.subject {
            for attribute in relativeName where attribute.type == .RDNAttributeType.commonName {
                let commonName = String(attribute.value) ?? "\(attribute.value)"
                guard commonName == localName else {
                    throw failure("has the common name \(commonName.quoted), not the local name \(localName.quoted)")
                }
            }
        }
    }

    /// A DER signing request for `name` (the common name and the one DNS name), signed by `key`.
    static func signingRequest(
        for name: String, key: Certificate.PrivateKey, path: String
    ) throws(IdentityMaterialError) -> [UInt8] {
        do {
            let extensions = try Certificate.Extensions { SubjectAlternativeNames([.dnsName(name)]) }
            var attributes = CertificateSigningRequest.Attributes()
            attributes.insert(try CertificateSigningRequest.Attribute(ExtensionRequest(extensions: extensions)))
            let request = try CertificateSigningRequest(
                version: .v1, subject: try DistinguishedName { CommonName(name) }, privateKey: key,
                attributes: attributes)
            var serializer = DER.Serializer()
            try serializer.serialize(request)
            return serializer.serializedBytes
        } catch {
            throw IdentityMaterialError(source: path, reason: "the signing request could not be built: \(error)")
        }
    }

    /// Why `name` is not a DNS name (lowercase DNS-1123 labels separated by dots, at most 253 characters), as a
    /// predicate; nil when it is one.
    static func dnsNameProblem(_ name: String) -> String? {
        guard !name.isEmpty else { return "is empty, but must be a DNS name" }
        guard name.utf8.count <= 253 else { return "is \(name.utf8.count) characters long; a DNS name has at most 253" }
        for label in name.split(separator: ".", omittingEmptySubsequences: false) {
            guard !label.isEmpty else { return "has an empty label, but must be a DNS name" }
            guard label.utf8.count <= 63 else {
                return "has the label \(String(label).quoted) of \(label.utf8.count) characters; a label has at most 63"
            }
            guard
                label.utf8.allSatisfy({
                    (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0)
                        || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || $0 == UInt8(ascii: "-")
                })
            else {
                return "has the label \(String(label).quoted), but labels have only lowercase letters, digits and \"-\""
            }
            guard label.first != "-", label.last != "-" else {
                return "has the label \(String(label).quoted), which starts or ends with \"-\""
            }
        }
        return nil
    }

    // MARK: - Files

    private enum FileKind {
        case missing, file, directory
    }

    private static func fileKind(_ path: String) -> FileKind {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return .missing }
        return isDirectory.boolValue ? .directory : .file
    }

    /// The contents of `path`, nil when there is no such file.
    private static func readIfPresent(_ path: String) throws(IdentityMaterialError) -> [UInt8]? {
        switch fileKind(path) {
        case .missing:
            return nil
        case .directory:
            throw IdentityMaterialError(source: path, reason: "is a directory, but must be a file")
        case .file:
            do {
                return Array(try Data(contentsOf: URL(fileURLWithPath: path)))
            } catch {
                throw IdentityMaterialError(source: path, reason: "cannot be read: \(error.localizedDescription)")
            }
        }
    }

    /// Writes `bytes` to a new file next to `path` created with `mode`, then renames it over `path`, so `path` never
    /// holds a partial file nor, for the key, one that others could read.
    private static func writeFile(_ bytes: [UInt8], to path: String, mode: mode_t) throws(IdentityMaterialError) {
        let temporary = "\(path).tmp-\(getpid())"
        _ = unlink(temporary)
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard descriptor >= 0 else {
            throw IdentityMaterialError(source: path, reason: "cannot be created: \(errnoDescription())")
        }
        var failure: String?
        var written = 0
        while written < bytes.count, failure == nil {
            let result = bytes.withUnsafeBytes { buffer in
                write(descriptor, buffer.baseAddress.map { $0 + written }, bytes.count - written)
            }
            if result > 0 {
                written += result
            } else if result < 0, errno == EINTR {
                continue
            } else {
                failure = errnoDescription()
            }
        }
        // The mode given to open() is reduced by the umask; set it exactly.
        if failure == nil, fchmod(descriptor, mode) != 0 {
            failure = errnoDescription()
        }
        if close(descriptor) != 0, failure == nil {
            failure = errnoDescription()
        }
        if failure == nil, rename(temporary, path) != 0 {
            failure = errnoDescription()
        }
        if let failure {
            _ = unlink(temporary)
            throw IdentityMaterialError(source: path, reason: "cannot be written: \(failure)")
        }
    }

    private static func errnoDescription() -> String {
        String(cString: strerror(errno))
    }

    private static func path(_ name: String, in directory: String) -> String {
        directory.hasSuffix("/") ? directory + name : "\(directory)/\(name)"
    }
}
