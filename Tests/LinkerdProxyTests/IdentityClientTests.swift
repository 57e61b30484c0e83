import Foundation
import GRPCCore
import LinkerdCore
import LinkerdIdentity
import LinkerdIdentityServer
import LinkerdProxyAPI
import LinkerdTestSupport
import NIOSSL
import SwiftASN1
import SwiftProtobuf
import Testing
import X509

@testable import LinkerdProxy

@Suite(
    "The proxy's identity client against the real identity server", .tags(.realIdentityServer), .timeLimit(.minutes(1)))
struct IdentityClientServerTests {
    @Test("Certifies: the leaf is for the local name and the proxy's key, and chains to the anchor through the issuer")
    func certifies() async throws {
        let pki = try IdentityTestPKI()
        try await withIdentityServer(pki) { server in
            server.registerToken("web-token", serviceAccount: "web", namespace: "emojivoto")
            let name = meshIdentity("web", "emojivoto")
            let proxy = try server.proxy(name, token: "web-token")
            let started = Date()
            let identity = try await proxy.client.certify()
            #expect(identity.localName == name)
            #expect(identity.leaf.publicKey == proxy.files.privateKey.publicKey)
            #expect(TLSPeerIdentity.name(of: identity.leaf) == name)
            #expect(identity.chainDER.count == 2)  // the leaf, then the issuer
            #expect(try Certificate(derEncoded: identity.chainDER[1]).subject == identity.leaf.issuer)
            // Issued for the chart's 24 hours (plus the skew allowance) from now.
            #expect(abs(identity.validUntil.timeIntervalSince(started) - (86_400 + 20)) < 30)

            let installed = try proxy.credentials.install(identity)
            #expect(proxy.credentials.expiry == identity.validUntil)
            #expect(installed.server.tlsConfiguration.minimumTLSVersion == .tlsv13)
            #expect(installed.server.tlsConfiguration.maximumTLSVersion == .tlsv13)
        }
    }

    @Test("The token file is read again for every call")
    func rereadsToken() async throws {
        let pki = try IdentityTestPKI()
        try await withIdentityServer(pki) { server in
            let name = meshIdentity("web", "emojivoto")
            server.registerToken("web-token-2", serviceAccount: "web", namespace: "emojivoto")
            server.registerToken("api-token", serviceAccount: "api", namespace: "emojivoto")
            let proxy = try server.proxy(name, token: "unknown-token")

            let refused = await clientError { try await proxy.client.certify() }
            guard case .callFailed(_, let code, let message) = refused else {
                Issue.record("expected a refused call, got \(String(describing: refused))")
                return
            }
            // The API test server's TokenReview answers an unknown token with status.error.
            #expect(code == .invalidArgument)
            #expect(message == "authentication token is invalid: token not found")

            try proxy.writeToken("web-token-2")
            _ = try await proxy.client.certify()

            // Another ServiceAccount's token: the server names both identities.
            try proxy.writeToken("api-token")
            let mismatch = await clientError { try await proxy.client.certify() }
            #expect(
                mismatch
                    == .callFailed(
                        address: "127.0.0.1:\(server.port)", code: .failedPrecondition,
                        message: "requested identity did not match provided token: requested=\(name); "
                            + "found=\(meshIdentity("api", "emojivoto"))"))

            try FileManager.default.removeItem(atPath: proxy.directory.file("token"))
            let missing = await clientError { try await proxy.client.certify() }
            guard case .tokenUnreadable(let path, let reason) = missing else {
                Issue.record("expected an unreadable token, got \(String(describing: missing))")
                return
            }
            #expect(path == proxy.directory.file("token"))
            #expect(reason.hasPrefix("cannot be read: "), "\(reason)")
            try proxy.writeToken("")
            #expect(
                await clientError { try await proxy.client.certify() }
                    == .tokenUnreadable(path: proxy.directory.file("token"), reason: "is empty"))
        }
    }

    @Test("A server that is not LINKERD2_PROXY_IDENTITY_SVC_NAME, or not signed by the anchors, is refused")
    func verifiesServer() async throws {
        let pki = try IdentityTestPKI()
        try await withIdentityServer(pki) { server in
            server.registerToken("web-token", serviceAccount: "web", namespace: "emojivoto")
            let name = meshIdentity("web", "emojivoto")
            let wrongName = "linkerd-identity.other.serviceaccount.identity.other.cluster.local"
            let misnamed = try server.proxy(name, token: "web-token", serverIdentity: wrongName)
            let rejected = await clientError { try await misnamed.client.certify() }
            #expect(
                rejected
                    == .serverCertificateRejected(
                        address: "127.0.0.1:\(server.port)",
                        reason: "the server certificate is not for the expected identity \(wrongName.quoted): it has "
                            + "the subject alternative names DNS \(identityServiceName.quoted)"))
            #expect(
                rejected?.description.hasPrefix("the identity service at 127.0.0.1:\(server.port) was not trusted: ")
                    == true)

            let stranger = try TestCertificateAuthority(commonName: "stranger")
            let untrusting = try server.proxy(
                name, token: "web-token", trustAnchors: try IdentityTrustAnchors(pemBundle: stranger.certificatePEM))
            let untrusted = await clientError { try await untrusting.client.certify() }
            guard case .serverCertificateRejected(_, let reason) = untrusted else {
                Issue.record("expected a rejected server certificate, got \(String(describing: untrusted))")
                return
            }
            #expect(reason.contains("does not verify against the trust anchors"), "\(reason)")
        }
    }

    @Test("Plaintext to the loopback address of a plaintext identity server")
    func plaintextOnLoopback() async throws {
        let pki = try IdentityTestPKI()
        try await withIdentityServer(pki, configure: { $0.plaintext = true }) { server in
            server.registerToken("web-token", serviceAccount: "web", namespace: "emojivoto")
            let name = meshIdentity("web", "emojivoto")
            let directory = try IdentityTemporaryDirectory()
            try directory.write(Array("web-token".utf8), to: "token")
            let files = try IdentityFiles.prepare(directory: directory.path, localName: name)
            let client = try IdentityClient(
                configuration: .init(
                    host: "127.0.0.1", port: server.port, serverIdentity: identityServiceName,
                    tokenPath: directory.file("token"), plaintext: true),
                files: files, trustAnchors: try pki.trustAnchors())
            #expect(TLSPeerIdentity.name(of: try await client.certify().leaf) == name)
        }
    }
}

@Suite("The proxy's identity client: configuration and response checks")
struct IdentityClientResponseTests {
    let name = meshIdentity("web", "emojivoto")

    @Test("Plaintext is refused to anything but a loopback address; names and ports are checked")
    func configuration() throws {
        let directory = try IdentityTemporaryDirectory()
        let files = try IdentityFiles.prepare(directory: directory.path, localName: name)
        let anchors = try IdentityTestPKI().trustAnchors()
        func make(
            _ host: String, port: Int = 8080, plaintext: Bool = true, serverIdentity: String = identityServiceName
        )
            -> IdentityClientError?
        {
            do {
                _ = try IdentityClient(
                    configuration: .init(
                        host: host, port: port, serverIdentity: serverIdentity, tokenPath: "/t", plaintext: plaintext),
                    files: files, trustAnchors: anchors)
                return nil
            } catch {
                return error
            }
        }
        #expect(make("127.0.0.1") == nil)
        #expect(make("127.1.2.3") == nil)
        #expect(make("::1") == nil)
        #expect(make("localhost") == nil)
        #expect(
            make("10.0.0.1")
                == .invalidConfiguration(
                    "plaintext is allowed only to a loopback address (127.0.0.0/8, ::1, localhost), not to \"10.0.0.1\""
                ))
        #expect(make("linkerd-identity-headless.linkerd.svc.cluster.local") != nil)
        #expect(make("linkerd-identity-headless.linkerd.svc.cluster.local", plaintext: false) == nil)
        #expect(
            make("127.0.0.1", port: 0)
                == .invalidConfiguration("the identity service port 0 is not from 1 to 65535"))
        #expect(
            make("127.0.0.1", plaintext: false, serverIdentity: "10.0.0.1:x")
                == .invalidConfiguration(
                    "the identity service name (LINKERD2_PROXY_IDENTITY_SVC_NAME) \"10.0.0.1:x\" has the label "
                        + "\"1:x\", but labels have only lowercase letters, digits and \"-\""))
    }

    @Test("Responses are checked: leaf present and DER, valid_until present and future, our key, our name, the chain")
    func validatesResponses() async throws {
        let pki = try IdentityTestPKI()
        let anchors = try pki.trustAnchors()
        let directory = try IdentityTemporaryDirectory()
        let files = try IdentityFiles.prepare(directory: directory.path, localName: name)
        let now = Date()
        let clock = ManualClock(start: now)
        let client = try IdentityClient(
            configuration: .init(host: "127.0.0.1", port: 8080, serverIdentity: identityServiceName, tokenPath: "/t"),
            files: files, trustAnchors: anchors, clock: clock)
        let issuer = try await IssuerCredentials(
            certificatePEM: pki.issuerCertificatePEM, privateKeyPEM: pki.issuerKeyPEM,
            trustAnchors: try TrustAnchors(pemBundle: pki.anchor.certificatePEM), now: now)
        func issue(_ identity: String, csr: [UInt8]) throws -> Io_Linkerd_Proxy_Identity_CertifyResponse {
            let request = try CertificateSigningRequestCheck.check(
                try CertificateSigningRequestCheck.parse(derEncoded: csr), identity: identity)
            let leaf = try issuer.issue(for: request, now: now)
            var response = Io_Linkerd_Proxy_Identity_CertifyResponse()
            response.leafCertificate = Data(leaf.certificateDER)
            response.intermediateCertificates = leaf.intermediateCertificatesDER.map { Data($0) }
            response.validUntil = Google_Protobuf_Timestamp(date: leaf.validUntil)
            return response
        }
        let good = try issue(name, csr: files.signingRequestDER)
        let certified = try await client.validate(good, now: now)
        #expect(certified.validUntil == good.validUntil.date)

        var response = good
        response.leafCertificate = Data()
        #expect(await validationFailure(client, response, now) == "it has no leaf certificate")
        response.leafCertificate = Data([0x30, 0x03, 0x02, 0x01, 0x01])
        #expect(
            await validationFailure(client, response, now)?.hasPrefix(
                "the leaf certificate is not a DER X.509 certificate: ") == true)
        response = good
        response.intermediateCertificates = [Data("junk".utf8)]
        #expect(
            await validationFailure(client, response, now)?.hasPrefix(
                "intermediate certificate 1 is not a DER X.509 certificate: ") == true)
        response = good
        response.clearValidUntil()
        #expect(await validationFailure(client, response, now) == "it has no valid_until")
        let later = good.validUntil.date + 1
        #expect(
            await validationFailure(client, good, later)
                == "valid_until \(good.validUntil.date.ISO8601Format()) is not in the future (now is "
                + "\(later.ISO8601Format()))")

        // Without the intermediate the leaf does not reach the anchor.
        response = good
        response.intermediateCertificates = []
        #expect(
            await validationFailure(client, response, now)?.contains(
                "the issued certificate CN=\(name) does not verify against the trust anchors") == true)

        // Another proxy's certificate: another key, and (signed for its name) another name.
        let otherName = meshIdentity("api", "emojivoto")
        let other = try IdentityFiles.prepare(directory: try directory.directory("other"), localName: otherName)
        #expect(
            await validationFailure(client, try issue(otherName, csr: other.signingRequestDER), now)
                == "the leaf certificate is for another key than the proxy's (\(files.privateKeyPath))")

        // Our key, but issued for another name (a CSR made with our key for that name).
        let renamed = try IdentityFiles.prepare(
            directory: try copyKey(from: files, into: directory.directory("renamed")), localName: otherName)
        #expect(
            await validationFailure(client, try issue(otherName, csr: renamed.signingRequestDER), now)
                == "the issued certificate is not for the expected identity \(name.quoted): it has the subject "
                + "alternative names DNS \(otherName.quoted)")
    }

    /// A directory holding `files`' key alone, so a CSR for another name is made with it.
    private func copyKey(from files: IdentityFiles, into directory: String) throws -> String {
        try FileManager.default.copyItem(atPath: files.privateKeyPath, toPath: "\(directory)/key.p8")
        return directory
    }

    private func validationFailure(
        _ client: IdentityClient, _ response: Io_Linkerd_Proxy_Identity_CertifyResponse, _ now: Date
    ) async -> String? {
        do {
            _ = try await client.validate(response, now: now)
            return nil
        } catch {
            guard case .invalidResponse(let reason) = error else { return "unexpected \(error)" }
            #expect(error.description == "the identity service's response was rejected: \(reason)")
            return reason
        }
    }
}

/// The `IdentityClientError` `body` throws, nil when it succeeds.
func clientError(
    _ body: () async throws -> some Any, sourceLocation: SourceLocation = #_sourceLocation
) async -> IdentityClientError? {
    do {
        _ = try await body()
        return nil
    } catch let error as IdentityClientError {
        return error
    } catch {
        Issue.record("expected an IdentityClientError, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}
