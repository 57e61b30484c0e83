import Crypto
import Foundation
import KubeModel
import LinkerdIdentity
import LinkerdTestSupport
import SwiftASN1
import Testing
import X509

/// The instant every test runs at (2027-01-15); certificates are minted around it.
let testNow = Date(timeIntervalSince1970: 1_800_000_000)
let day: TimeInterval = 86_400

let controlPlaneNamespace = "linkerd"
let trustDomain = "cluster.local"

/// The identity of ServiceAccount `name` in namespace `namespace` of the test mesh.
func identity(_ name: String, _ namespace: String) -> String {
    "\(name).\(namespace).serviceaccount.identity.\(controlPlaneNamespace).\(trustDomain)"
}

/// A certificate and its key, minted for a test.
struct MintedCA {
    let certificate: Certificate
    let key: Certificate.PrivateKey
    let p256: P256.Signing.PrivateKey
    let certificatePEM: String
    var keyPEM: String { p256.pemRepresentation }

    init(certificate: Certificate, key: Certificate.PrivateKey, p256: P256.Signing.PrivateKey) throws {
        self.certificate = certificate
        self.key = key
        self.p256 = p256
        certificatePEM = try certificate.serializeAsPEM().pemString
    }

    /// A self-signed root CA valid from `notBefore` to `notAfter`.
    static func root(
        _ name: String = "root.linkerd.cluster.local",
        notBefore: Date = testNow - 30 * day,
        notAfter: Date = testNow + 365 * day
    ) throws -> MintedCA {
        let p256 = P256.Signing.PrivateKey()
        let key = Certificate.PrivateKey(p256)
        let subject = try DistinguishedName { CommonName(name) }
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: key.publicKey,
            notValidBefore: notBefore, notValidAfter: notAfter, issuer: subject, subject: subject,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: key.publicKey)
            },
            issuerPrivateKey: key)
        return try MintedCA(certificate: certificate, key: key, p256: p256)
    }

    /// A certificate signed by this one (an intermediate CA unless `isCA` is false).
    func sign(
        _ name: String = "identity.linkerd.cluster.local",
        notBefore: Date = testNow - 10 * day,
        notAfter: Date = testNow + 180 * day,
        isCA: Bool = true
    ) throws -> MintedCA {
        let p256 = P256.Signing.PrivateKey()
        let key = Certificate.PrivateKey(p256)
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: key.publicKey,
            notValidBefore: notBefore, notValidAfter: notAfter, issuer: self.certificate.subject,
            subject: try DistinguishedName { CommonName(name) },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                if isCA {
                    Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                    Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                } else {
                    Critical(BasicConstraints.notCertificateAuthority)
                    Critical(KeyUsage(digitalSignature: true))
                }
                SubjectKeyIdentifier(hash: key.publicKey)
                AuthorityKeyIdentifier(
                    keyIdentifier: try self.certificate.extensions.subjectKeyIdentifier?.keyIdentifier)
            },
            issuerPrivateKey: self.key)
        return try MintedCA(certificate: certificate, key: key, p256: p256)
    }
}

/// A root and an issuer it signed, loaded as the identity service loads them.
struct TestPKI {
    let root: MintedCA
    let issuerCA: MintedCA
    let anchors: TrustAnchors
    let issuer: IssuerCredentials

    init(
        issuerNotBefore: Date = testNow - 10 * day,
        issuerNotAfter: Date = testNow + 180 * day
    ) async throws {
        root = try MintedCA.root()
        issuerCA = try root.sign(notBefore: issuerNotBefore, notAfter: issuerNotAfter)
        anchors = try TrustAnchors(pemBundle: root.certificatePEM)
        issuer = try await IssuerCredentials(
            certificatePEM: issuerCA.certificatePEM, privateKeyPEM: issuerCA.keyPEM, trustAnchors: anchors,
            now: testNow)
    }
}

/// A DER CSR signed by `key`, with `commonName` (none when nil) and `names` as subject alternative names.
func makeCSR(
    commonName: String?,
    names: [GeneralName],
    key: Certificate.PrivateKey = Certificate.PrivateKey(P256.Signing.PrivateKey())
) throws -> [UInt8] {
    try der(makeRequest(commonName: commonName, names: names, key: key))
}

func makeRequest(
    commonName: String?, names: [GeneralName], key: Certificate.PrivateKey
) throws -> CertificateSigningRequest {
    let subject = try commonName.map { name in try DistinguishedName { CommonName(name) } } ?? DistinguishedName()
    var attributes = CertificateSigningRequest.Attributes()
    if !names.isEmpty {
        let extensions = try Certificate.Extensions { SubjectAlternativeNames(names) }
        attributes.insert(try CertificateSigningRequest.Attribute(ExtensionRequest(extensions: extensions)))
    }
    return try CertificateSigningRequest(version: .v1, subject: subject, privateKey: key, attributes: attributes)
}

/// The CSR a Linkerd proxy sends for `name`: CN and one DNS name, a P-256 key.
func proxyCSR(for name: String) throws -> [UInt8] {
    try makeCSR(commonName: name, names: [.dnsName(name)])
}

func der(_ value: some DERSerializable) throws -> [UInt8] {
    var serializer = DER.Serializer()
    try serializer.serialize(value)
    return serializer.serializedBytes
}

/// The error `body` throws, failing the test when it throws none.
func identityError<T>(_ body: () async throws(IdentityError) -> T) async -> IdentityError? {
    do {
        _ = try await body()
        Issue.record("expected an IdentityError")
        return nil
    } catch {
        return error
    }
}

func credentialsError<T>(_ body: () async throws(CredentialsError) -> T) async -> CredentialsError? {
    do {
        _ = try await body()
        Issue.record("expected a CredentialsError")
        return nil
    } catch {
        return error
    }
}

/// Runs `executable` with `arguments`, returning its exit status and combined output.
func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = [executable] + arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let output = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: output, as: UTF8.self))
}

/// A fresh directory under the system's temporary directory, removed by `remove()`.
struct TemporaryDirectory {
    let path: String

    init() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent(
            "linkerd-identity-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        path = url.path
    }

    @discardableResult
    func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        let file = "\(path)/\(name)"
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        return file
    }

    @discardableResult
    func write(_ name: String, _ text: String) throws -> String {
        try write(name, Array(text.utf8))
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// A `KubeAPI` that answers TokenReviews with `answer` and records them; every other call fails.
struct ScriptedTokenReviews: KubeAPI {
    let answer: @Sendable (TokenReview) throws -> TokenReview
    /// The reviews received, in order.
    let reviews = Locked<[TokenReview]>([])

    func create<T: Codable & Sendable>(
        _ resource: ResourceType, namespace: String?, object: T, subresource: String?
    ) async throws -> T {
        guard let review = object as? TokenReview else { throw unsupported }
        reviews.withLock { $0.append(review) }
        guard let answered = try answer(review) as? T else { throw unsupported }
        return answered
    }

    func get<T: Decodable & Sendable>(
        _ resource: ResourceType, namespace: String?, name: String, subresource: String?, as type: T.Type
    ) async throws -> T { throw unsupported }

    func list<T: Codable & Sendable>(
        _ resource: ResourceType, namespace: String?, options: ListOptions, as type: T.Type
    ) async throws -> ObjectList<T> { throw unsupported }

    func update<T: Codable & Sendable>(
        _ resource: ResourceType, namespace: String?, name: String, object: T, subresource: String?
    ) async throws -> T { throw unsupported }

    func patch<T: Decodable & Sendable>(
        _ resource: ResourceType, namespace: String?, name: String, patch: Patch, subresource: String?, as type: T.Type
    ) async throws -> T { throw unsupported }

    func delete(_ resource: ResourceType, namespace: String?, name: String) async throws { throw unsupported }

    func watch<T: Decodable & Sendable>(
        _ resource: ResourceType, namespace: String?, options: WatchOptions, as type: T.Type
    ) async throws -> AsyncThrowingStream<WatchEvent<T>, any Error> { throw unsupported }

    private var unsupported: KubeError {
        KubeError(code: .configuration, message: "ScriptedTokenReviews answers TokenReviews only")
    }
}
