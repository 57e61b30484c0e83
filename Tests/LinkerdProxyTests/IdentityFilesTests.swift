import Crypto
import Foundation
import LinkerdCore
import LinkerdIdentity
import LinkerdProxy
import SwiftASN1
import Testing
import X509

@Suite("The proxy's key.p8 and csr.der")
struct IdentityFilesTests {
    let name = meshIdentity("web", "emojivoto")

    @Test("Generates a P-256 PKCS#8 key (mode 0600) and a CSR for the name that the identity service accepts")
    func generates() throws {
        let directory = try IdentityTemporaryDirectory()
        let files = try IdentityFiles.prepare(directory: directory.path, localName: name)
        #expect(files.origin == .generated)

        let keyPath = directory.file("key.p8")
        let attributes = try FileManager.default.attributesOfItem(atPath: keyPath)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        let key = try Certificate.PrivateKey(derBytes: try directory.read("key.p8"))
        #expect(P256.Signing.PublicKey(key.publicKey) != nil)
        #expect(key.publicKey == files.privateKey.publicKey)

        let csr = try directory.read("csr.der")
        #expect(csr == files.signingRequestDER)
        let request = try CertificateSigningRequest(derEncoded: csr)
        #expect(request.publicKey == key.publicKey)
        #expect(request.subject.description == "CN=\(name)")
        // The server's own checks (signature, one DNS name equal to the identity, CN, P-256).
        let checked = try CertificateSigningRequestCheck.check(
            try CertificateSigningRequestCheck.parse(derEncoded: csr), identity: name)
        #expect(checked.dnsName == name)
        // No temporary files are left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted() == ["csr.der", "key.p8"])
    }

    @Test("openssl reads both files as the Go wrapper's (PKCS#8 DER key, DER CSR with a valid signature)")
    func opensslReadsFiles() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl") else { return }
        let directory = try IdentityTemporaryDirectory()
        _ = try IdentityFiles.prepare(directory: directory.path, localName: name)
        let key = try runTool(["pkey", "-inform", "DER", "-in", directory.file("key.p8"), "-noout", "-text"])
        #expect(key.status == 0, "\(key.output)")
        #expect(key.output.contains("prime256v1") || key.output.contains("P-256"), "\(key.output)")
        let csr = try runTool(["req", "-inform", "DER", "-in", directory.file("csr.der"), "-noout", "-verify", "-text"])
        #expect(csr.status == 0, "\(csr.output)")
        #expect(csr.output.contains("DNS:\(name)"), "\(csr.output)")
    }

    @Test("Reuses valid files, and makes a CSR from a key alone")
    func reuses() throws {
        let directory = try IdentityTemporaryDirectory()
        let first = try IdentityFiles.prepare(directory: directory.path, localName: name)
        let second = try IdentityFiles.prepare(directory: directory.path, localName: name)
        #expect(second.origin == .loaded)
        #expect(second.privateKey.publicKey == first.privateKey.publicKey)
        #expect(second.signingRequestDER == first.signingRequestDER)

        try FileManager.default.removeItem(atPath: directory.file("csr.der"))
        let third = try IdentityFiles.prepare(directory: directory.path, localName: name)
        #expect(third.origin == .generatedSigningRequest)
        #expect(third.privateKey.publicKey == first.privateKey.publicKey)
        #expect(
            try CertificateSigningRequest(derEncoded: try directory.read("csr.der")).publicKey
                == first.privateKey.publicKey)
    }

    @Test("A CSR left without its key is replaced with the new key's")
    func orphanRequestReplaced() throws {
        let directory = try IdentityTemporaryDirectory()
        let first = try IdentityFiles.prepare(directory: directory.path, localName: name)
        try FileManager.default.removeItem(atPath: directory.file("key.p8"))
        let second = try IdentityFiles.prepare(directory: directory.path, localName: name)
        #expect(second.origin == .generated)
        #expect(second.privateKey.publicKey != first.privateKey.publicKey)
        #expect(
            try CertificateSigningRequest(derEncoded: try directory.read("csr.der")).publicKey
                == second.privateKey.publicKey)
    }

    @Test("The identity directory must exist and is never created")
    func missingDirectory() throws {
        let parent = try IdentityTemporaryDirectory()
        let missing = parent.file("absent")
        expectIdentityMaterialError(
            try IdentityFiles.prepare(directory: missing, localName: name),
            "\(missing): does not exist; the identity directory (LINKERD2_PROXY_IDENTITY_DIR) must exist, it is not "
                + "created")
        #expect(!FileManager.default.fileExists(atPath: missing))

        try parent.write([1], to: "plain")
        expectIdentityMaterialError(
            try IdentityFiles.prepare(directory: parent.file("plain"), localName: name),
            "\(parent.file("plain")): is not a directory (LINKERD2_PROXY_IDENTITY_DIR must name one)")
    }

    @Test(
        "The local name must be a DNS name",
        arguments: [
            ("", "is empty, but must be a DNS name"),
            ("Web.emojivoto", "has the label \"Web\", but labels have only lowercase letters, digits and \"-\""),
            ("web..emojivoto", "has an empty label, but must be a DNS name"),
            ("-web.emojivoto", "has the label \"-web\", which starts or ends with \"-\""),
        ])
    func invalidLocalName(localName: String, reason: String) throws {
        let directory = try IdentityTemporaryDirectory()
        expectIdentityMaterialError(
            try IdentityFiles.prepare(directory: directory.path, localName: localName),
            "LINKERD2_PROXY_IDENTITY_LOCAL_NAME: \(localName.quoted) \(reason)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty)
    }

    @Test("Garbage, empty or foreign keys in key.p8 are refused, naming the file and the problem")
    func badKeys() throws {
        let directory = try IdentityTemporaryDirectory()
        let keyPath = directory.file("key.p8")

        try directory.write(Array("not a key".utf8), to: "key.p8")
        expectIdentityMaterialError(
            try IdentityFiles.prepare(directory: directory.path, localName: name),
            prefix: "\(keyPath): is not a PKCS#8 DER private key: ")

        try directory.write([], to: "key.p8")
        expectIdentityMaterialError(
            try IdentityFiles.prepare(directory: directory.path, localName: name),
            "\(keyPath): is empty, but must hold a PKCS#8 DER private key")

        // A PEM key is text, not DER.
        try directory.write(Array(P256.Signing.PrivateKey().pemRepresentation.utf8), to: "key.p8")
        expectIdentityMaterialError(
            try IdentityFiles.prepare(directory: directory.path, localName: name),
            prefix: "\(keyPath): is not a PKCS#8 DER private key: ")

        try directory.write(Array(P384.Signing.PrivateKey().derRepresentation), to: "key.p8")
        expectIdentityMaterialError(
            try IdentityFiles.prepare(directory: directory.path, localName: name),
            prefix: "\(keyPath): holds a key of type ", suffix: ", but the proxy's key must be ECDSA P-256")
        // Nothing was overwritten.
        #expect(
            try directory.read("key.p8") != [] && !FileManager.default.fileExists(atPath: directory.file("csr.der")))

        try FileManager.default.removeItem(atPath: keyPath)
        try FileManager.default.createDirectory(atPath: keyPath, withIntermediateDirectories: false)
        expectIdentityMaterialError(
            try IdentityFiles.prepare(directory: directory.path, localName: name),
            "\(keyPath): is a directory, but must be a file")
    }

    @Test("Garbage CSRs, CSRs for another name or key are refused, naming the file and the problem")
    func badRequests() throws {
        let directory = try IdentityTemporaryDirectory()
        let files = try IdentityFiles.prepare(directory: directory.path, localName: name)
        let csrPath = directory.file("csr.der")
        let good = try directory.read("csr.der")

        try directory.write(Array("garbage".utf8), to: "csr.der")
        expectIdentityMaterialError(
            try IdentityFiles.prepare(directory: directory.path, localName: name),
            prefix: "\(csrPath): is not a DER certificate signing request: ")

        try directory.write([], to: "csr.der")
        expectIdentityMaterialError(
            try IdentityFiles.prepare(directory: directory.path, localName: name),
            "\(csrPath): is empty, but must hold a DER certificate signing request")

        // The valid CSR asked for with another local name.
        try directory.write(good, to: "csr.der")
        let other = meshIdentity("api", "emojivoto")
        expectIdentityMaterialError(
            try IdentityFiles.prepare(directory: directory.path, localName: other),
            "\(csrPath): is for \(name.quoted), not for the local name \(other.quoted)")

        // A CSR for the right name, made with another key.
        try directory.write(
            try makeRequest(names: [.dnsName(name)], commonName: name, key: .init(P256.Signing.PrivateKey())),
            to: "csr.der")
        expectIdentityMaterialError(
            try IdentityFiles.prepare(directory: directory.path, localName: name),
            "\(csrPath): was made with another key than the one in key.p8")

        // Right key, but two names, or a CN for another name.
        try directory.write(
            try makeRequest(names: [.dnsName(name), .dnsName("x.emojivoto")], commonName: name, key: files.privateKey),
            to: "csr.der")
        expectIdentityMaterialError(
            try IdentityFiles.prepare(directory: directory.path, localName: name),
            "\(csrPath): has the DNS names \(name.quoted), \"x.emojivoto\", but must have exactly one: the local name "
                + name.quoted)
        try directory.write(
            try makeRequest(names: [.dnsName(name)], commonName: "someone-else", key: files.privateKey),
            to: "csr.der")
        expectIdentityMaterialError(
            try IdentityFiles.prepare(directory: directory.path, localName: name),
            "\(csrPath): has the common name \"someone-else\", not the local name \(name.quoted)")

        try directory.write(good, to: "csr.der")
        #expect(try IdentityFiles.prepare(directory: directory.path, localName: name).origin == .loaded)
    }

    private func makeRequest(
        names: [GeneralName], commonName: String, key: Certificate.PrivateKey
    ) throws -> [UInt8] {
        var attributes = CertificateSigningRequest.Attributes()
        let extensions = try Certificate.Extensions { SubjectAlternativeNames(names) }
        attributes.insert(try CertificateSigningRequest.Attribute(ExtensionRequest(extensions: extensions)))
        let request = try CertificateSigningRequest(
            version: .v1, subject: try DistinguishedName { CommonName(commonName) }, privateKey: key,
            attributes: attributes)
        var serializer = DER.Serializer()
        try serializer.serialize(request)
        return serializer.serializedBytes
    }

    private func runTool(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}

/// Expects `body` to throw an `IdentityMaterialError` whose description is `expected`, or starts with `prefix` and
/// ends with `suffix`.
func expectIdentityMaterialError(
    _ body: @autoclosure () throws -> some Any, _ expected: String? = nil, prefix: String = "", suffix: String = "",
    sourceLocation: SourceLocation = #_sourceLocation
) {
    do {
        _ = try body()
        Issue.record("expected an IdentityMaterialError", sourceLocation: sourceLocation)
    } catch let error as IdentityMaterialError {
        let description = error.description
        if let expected {
            #expect(description == expected, sourceLocation: sourceLocation)
        } else {
            #expect(
                description.hasPrefix(prefix) && description.hasSuffix(suffix), "\(description)",
                sourceLocation: sourceLocation)
        }
    } catch {
        Issue.record("expected an IdentityMaterialError, got \(error)", sourceLocation: sourceLocation)
    }
}
