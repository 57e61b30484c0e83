import Crypto
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import KubeModel
import KubeTestServer
import LinkerdController
import LinkerdCore
import LinkerdIdentity
import LinkerdIdentityServer
import LinkerdProxyAPI
import LinkerdTestSupport
import Logging
import ServiceLifecycle
import SwiftASN1
import Testing
import X509

let day: TimeInterval = 86_400
let serverName = "linkerd-identity.linkerd.serviceaccount.identity.linkerd.cluster.local"

func identity(_ name: String, _ namespace: String) -> String {
    "\(name).\(namespace).serviceaccount.identity.linkerd.cluster.local"
}

/// A CA certificate and its key, minted around the real time (TLS clients check validity against it). Immutable, so
/// sharing it between tasks is safe although swift-crypto's key type is not marked `Sendable`.
struct MintedCA: @unchecked Sendable {
    let certificate: Certificate
    let key: Certificate.PrivateKey
    let p256: P256.Signing.PrivateKey
    var certificatePEM: String { (try? certificate.serializeAsPEM().pemString) ?? "" }
    var keyPEM: String { p256.pemRepresentation }

    static func root(_ name: String = "root.linkerd.cluster.local") throws -> MintedCA {
        let p256 = P256.Signing.PrivateKey()
        let key = Certificate.PrivateKey(p256)
        let subject = try DistinguishedName { CommonName(name) }
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: key.publicKey,
            notValidBefore: Date() - 30 * day, notValidAfter: Date() + 365 * day, issuer: subject, subject: subject,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: key.publicKey)
            },
            issuerPrivateKey: key)
        return MintedCA(certificate: certificate, key: key, p256: p256)
    }

    func sign(
        _ name: String = "identity.linkerd.cluster.local", notBefore: Date = Date() - 10 * day,
        notAfter: Date = Date() + 180 * day
    ) throws -> MintedCA {
        let p256 = P256.Signing.PrivateKey()
        let key = Certificate.PrivateKey(p256)
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: key.publicKey,
            notValidBefore: notBefore, notValidAfter: notAfter, issuer: self.certificate.subject,
            subject: try DistinguishedName { CommonName(name) }, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: key.publicKey)
                AuthorityKeyIdentifier(
                    keyIdentifier: try self.certificate.extensions.subjectKeyIdentifier?.keyIdentifier)
            },
            issuerPrivateKey: self.key)
        return MintedCA(certificate: certificate, key: key, p256: p256)
    }
}

/// A temporary directory holding `ca-bundle.crt` and an `issuer/` directory laid out as the kubelet writes a
/// Secret volume: `..<version>/` directories, a `..data` symlink, and file symlinks through it.
final class IdentityFiles: Sendable {
    let root: URL
    let anchor: MintedCA
    var anchorsPath: String { root.appendingPathComponent("ca-bundle.crt").path }
    var issuerDirectory: String { root.appendingPathComponent("issuer").path }
    private let versions = Locked(0)

    init(anchor: MintedCA) throws {
        self.anchor = anchor
        root = FileManager.default.temporaryDirectory.appendingPathComponent("identity-\(UUID().uuidString)")
        try FileManager.default.createDirectory(
            at: root.appendingPathComponent("issuer"), withIntermediateDirectories: true)
        try anchor.certificatePEM.write(toFile: anchorsPath, atomically: true, encoding: .utf8)
    }

    /// Writes a new version of the issuer Secret and swaps `..data` to it, as the kubelet does.
    func writeIssuer(_ files: [String: String]) throws {
        let version = versions.withLock { value -> Int in
            value += 1
            return value
        }
        let manager = FileManager.default
        let versionName = "..2026_01_01_00_00_\(String(format: "%02d", version)).\(version)"
        let versionDirectory = URL(fileURLWithPath: issuerDirectory).appendingPathComponent(versionName)
        try manager.createDirectory(at: versionDirectory, withIntermediateDirectories: true)
        for (name, contents) in files {
            try contents.write(to: versionDirectory.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        let temporary = URL(fileURLWithPath: issuerDirectory).appendingPathComponent("..data_tmp").path
        try? manager.removeItem(atPath: temporary)
        try manager.createSymbolicLink(atPath: temporary, withDestinationPath: versionName)
        guard rename(temporary, issuerDirectory + "/..data") == 0 else {
            throw CocoaError(.fileWriteUnknown)
        }
        for name in files.keys {
            let link = issuerDirectory + "/" + name
            if (try? manager.destinationOfSymbolicLink(atPath: link)) == nil {
                try manager.createSymbolicLink(atPath: link, withDestinationPath: "..data/" + name)
            }
        }
    }

    func writeIssuer(_ issuer: MintedCA) throws {
        try writeIssuer(["crt.pem": issuer.certificatePEM, "key.pem": issuer.keyPEM])
    }

    deinit {
        try? FileManager.default.removeItem(at: root)
    }
}

/// A running `IdentityController` against a `KubeTestServer`, and a TLS client trusting the anchor.
struct IdentityFixture {
    let api: KubeTestServer
    let controller: IdentityController
    let files: IdentityFiles
    let port: Int
    let adminPort: Int

    /// Calls Certify over TLS, verifying the server as `serverName` against the anchor.
    func certify(_ request: Io_Linkerd_Proxy_Identity_CertifyRequest) async throws
        -> Io_Linkerd_Proxy_Identity_CertifyResponse
    {
        try await withIdentityClient { try await $0.certify(request) }
    }

    func withIdentityClient<Result: Sendable>(
        _ body: (Io_Linkerd_Proxy_Identity_Identity.Client<HTTP2ClientTransport.Posix>) async throws -> Result
    ) async throws -> Result {
        let anchorPEM = files.anchor.certificatePEM
        let security: HTTP2ClientTransport.Posix.TransportSecurity =
            controller.settings.plaintext
            ? .plaintext
            : .tls { tls in
                tls.trustRoots = .certificates([.bytes(Array(anchorPEM.utf8), format: .pem)])
                tls.serverCertificateVerification = .fullVerification
            }
        let transport = try HTTP2ClientTransport.Posix(
            target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: security,
            config: .defaults { $0.http2.authority = serverName })
        return try await withGRPCClient(transport: transport) { client in
            try await body(Io_Linkerd_Proxy_Identity_Identity.Client(wrapping: client))
        }
    }

    /// Registers `token` as ServiceAccount `name` in `namespace` with the `identity.l5d.io` audience.
    func registerToken(_ token: String, serviceAccount name: String, namespace: String) {
        api.registerServiceAccountToken(
            token, user: UserInfo(username: "system:serviceaccount:\(namespace):\(name)"),
            audiences: ["identity.l5d.io"])
    }

    /// The reasons of the Events recorded so far.
    func eventReasons() -> [String] {
        api.objects(.events, namespace: "linkerd").compactMap { $0["reason"]?.stringValue }
    }
}

/// Starts the API test server and `linkerd-identity`, runs `body`, and shuts everything down gracefully.
///
/// `body` is called at once, without waiting for the servers to bind. `prepare` runs on the API server before the
/// controller starts.
///
/// - Returns: the error the service group ended with (for example the startup check's), nil when it ended cleanly.
@discardableResult
func withIdentityController(
    files: IdentityFiles, clock: any WallClock = SystemWallClock(),
    prepare: (KubeTestServer) -> Void = { _ in },
    configure: (inout IdentityController.Settings) -> Void = { _ in },
    _ body: (KubeTestServer, IdentityController) async throws -> Void
) async throws -> (any Error)? {
    var failure: (any Error)?
    try await withServerAndClient { api, client in
        // Events go to the control-plane namespace, which must exist.
        _ = try api.put(Namespace(metadata: ObjectMeta(name: "linkerd")))
        prepare(api)
        var settings = IdentityController.Settings.loopback(
            issuerDirectory: files.issuerDirectory, trustAnchorsPath: files.anchorsPath)
        settings.issuerPollInterval = .milliseconds(50)
        settings.permissionCheck = .init(attempts: 3, initialDelay: .milliseconds(20))
        configure(&settings)
        let controller = try IdentityController(
            settings: settings, api: client, clock: clock, logger: Logger(label: "test.identity"))
        let group = ServiceGroup(
            services: controller.services, logger: Logger(label: "test.identity"))
        failure = try await withThrowingTaskGroup(of: Void.self) { tasks -> (any Error)? in
            tasks.addTask { try await group.run() }
            do {
                try await body(api, controller)
            } catch {
                await group.triggerGracefulShutdown()
                try? await tasks.waitForAll()
                throw error
            }
            await group.triggerGracefulShutdown()
            do {
                try await tasks.waitForAll()
                return nil
            } catch {
                return error
            }
        }
    }
    return failure
}

/// Starts the API test server and `linkerd-identity` as the executable assembles it, with the issuer in
/// `files`, waits until both servers are bound, runs `body`, and shuts everything down gracefully.
func withIdentityService(
    files: IdentityFiles, clock: any WallClock = SystemWallClock(),
    configure: (inout IdentityController.Settings) -> Void = { _ in },
    _ body: (IdentityFixture) async throws -> Void
) async throws {
    let failure = try await withIdentityController(files: files, clock: clock, configure: configure) {
        api, controller in
        let fixture = IdentityFixture(
            api: api, controller: controller, files: files, port: try await controller.server.waitUntilBound(),
            adminPort: try await controller.admin.waitUntilBound())
        try await body(fixture)
    }
    if let failure { throw failure }
}

/// GETs `path` from the admin server on 127.0.0.1 with curl: the status code and the body.
func adminGet(port: Int, _ path: String) throws -> (status: Int, body: String) {
    let result = try runProcess(
        "/usr/bin/env",
        ["curl", "-sS", "--max-time", "5", "-w", "\n%{http_code}", "http://127.0.0.1:\(port)\(path)"])
    guard result.status == 0, let newline = result.output.lastIndex(of: "\n"),
        let status = Int(result.output[result.output.index(after: newline)...])
    else {
        throw CocoaError(.fileReadUnknown, userInfo: [NSLocalizedDescriptionKey: "curl failed: \(result.output)"])
    }
    return (status, String(result.output[..<newline]))
}

/// A DER CSR signed by `key` with `commonName` and the subject alternative names `names`.
func makeCSR(
    commonName: String?, names: [GeneralName],
    key: Certificate.PrivateKey = Certificate.PrivateKey(P256.Signing.PrivateKey())
) throws -> [UInt8] {
    let subject = try commonName.map { name in try DistinguishedName { CommonName(name) } } ?? DistinguishedName()
    var attributes = CertificateSigningRequest.Attributes()
    if !names.isEmpty {
        let extensions = try Certificate.Extensions { SubjectAlternativeNames(names) }
        attributes.insert(try CertificateSigningRequest.Attribute(ExtensionRequest(extensions: extensions)))
    }
    let request = try CertificateSigningRequest(
        version: .v1, subject: subject, privateKey: key, attributes: attributes)
    var serializer = DER.Serializer()
    try serializer.serialize(request)
    return serializer.serializedBytes
}

func certifyRequest(identity: String, token: String, csr: [UInt8]) -> Io_Linkerd_Proxy_Identity_CertifyRequest {
    var request = Io_Linkerd_Proxy_Identity_CertifyRequest()
    request.identity = identity
    request.token = Data(token.utf8)
    request.certificateSigningRequest = Data(csr)
    return request
}

/// The `RPCError` `body` throws, nil (and a recorded issue) when it succeeds or throws something else.
func rpcError(_ body: () async throws -> some Any) async -> RPCError? {
    do {
        _ = try await body()
        Issue.record("expected an RPCError")
    } catch let error as RPCError {
        return error
    } catch {
        Issue.record("expected an RPCError, got \(error)")
    }
    return nil
}

/// Runs a program, returning its exit status and combined output.
func runProcess(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

let packageRoot = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
