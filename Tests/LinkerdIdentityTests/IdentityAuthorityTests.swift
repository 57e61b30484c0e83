import Crypto
import Foundation
import KubeClient
import KubeModel
import KubeTestServer
import LinkerdIdentity
import LinkerdTestSupport
import SwiftASN1
import Testing
@_spi(FixedExpiryValidationTime) import X509

/// Certify against the loopback API server's TokenReview, over a real socket.
@Suite struct IdentityAuthorityTests {
    let web = identity("web", "emojivoto")
    let webToken = "token-web"

    private func withAuthority(
        issuer: IssuerCredentials?,
        _ body: (IdentityAuthority, KubeTestServer) async throws -> Void
    ) async throws {
        try await withServerAndClient { server, client in
            server.registerServiceAccountToken(
                webToken, user: UserInfo(username: "system:serviceaccount:emojivoto:web"),
                audiences: [TokenReviewer.audience])
            let authority = try IdentityAuthority(
                controlPlaneNamespace: controlPlaneNamespace, trustDomain: trustDomain,
                tokenReviewer: TokenReviewer(api: client), issuer: issuer)
            try await body(authority, server)
        }
    }

    private var tokenReviewPosts: (KubeTestServer) -> Int {
        { server in
            server.requestLog.filter { $0.method == "POST" && $0.path.hasSuffix("/tokenreviews") }.count
        }
    }

    @Test func certifiesAProxy() async throws {
        let pki = try await TestPKI()
        try await withAuthority(issuer: pki.issuer) { authority, server in
            let result = try await authority.certify(
                identity: web, token: Array(webToken.utf8), certificateSigningRequest: try proxyCSR(for: web),
                now: testNow)
            #expect(result.requester.namespace == "emojivoto")
            #expect(result.requester.serviceAccount == "web")
            #expect(result.leaf.validUntil == testNow + day + 20)
            #expect(
                Array(try #require(try result.leaf.certificate.extensions.subjectAlternativeNames)) == [.dnsName(web)])
            var verifier = Verifier(rootCertificates: CertificateStore(pki.anchors.certificates)) {
                RFC5280Policy(fixedExpiryValidationTime: testNow)
            }
            let intermediates = try result.leaf.intermediateCertificatesDER.map { try Certificate(derEncoded: $0) }
            let verdict = await verifier.validate(
                leaf: try Certificate(derEncoded: result.leaf.certificateDER),
                intermediates: CertificateStore(intermediates))
            guard case .validCertificate = verdict else {
                Issue.record("the leaf does not verify: \(verdict)")
                return
            }
            let review = try #require(server.requestLog.last)
            #expect(review.path == "/apis/authentication.k8s.io/v1/tokenreviews")
            #expect(tokenReviewPosts(server) == 1)
        }
    }

    @Test func aLegacyTokenIsReviewedAgainWithoutAudience() async throws {
        let pki = try await TestPKI()
        try await withAuthority(issuer: pki.issuer) { authority, server in
            server.registerServiceAccountToken(
                "legacy", user: UserInfo(username: "system:serviceaccount:emojivoto:web"), audiences: nil)
            let result = try await authority.certify(
                identity: web, token: Array("legacy".utf8), certificateSigningRequest: try proxyCSR(for: web),
                now: testNow)
            #expect(result.requester.serviceAccount == "web")
            #expect(tokenReviewPosts(server) == 2)
        }
    }

    @Test func aTokenForAnotherServiceAccountIsAFailedPrecondition() async throws {
        let pki = try await TestPKI()
        try await withAuthority(issuer: pki.issuer) { authority, server in
            let admin = identity("admin", "emojivoto")
            let error = await identityError { () async throws(IdentityError) in
                try await authority.certify(
                    identity: admin, token: Array(webToken.utf8),
                    certificateSigningRequest: (try? proxyCSR(for: admin)) ?? [], now: testNow)
            }
            #expect(error?.code == .failedPrecondition)
            #expect(
                error?.message == "requested identity did not match provided token: requested=\(admin); found=\(web)")
        }
    }

    @Test func anUnknownTokenIsAnInvalidArgument() async throws {
        let pki = try await TestPKI()
        try await withAuthority(issuer: pki.issuer) { authority, server in
            let error = await identityError { () async throws(IdentityError) in
                try await authority.certify(
                    identity: web, token: Array("forged".utf8),
                    certificateSigningRequest: (try? proxyCSR(for: web)) ?? [],
                    now: testNow)
            }
            #expect(
                error
                    == IdentityError(
                        code: .invalidArgument, message: "authentication token is invalid: token not found"))
        }
    }

    @Test func anAPIServerErrorIsUnavailable() async throws {
        let pki = try await TestPKI()
        try await withAuthority(issuer: pki.issuer) { authority, server in
            server.injectFault(
                .status(code: 500, reason: "InternalError", message: "etcd is down"), pathPrefix: "/apis/authentication"
            )
            let error = await identityError { () async throws(IdentityError) in
                try await authority.certify(
                    identity: web, token: Array(webToken.utf8),
                    certificateSigningRequest: (try? proxyCSR(for: web)) ?? [],
                    now: testNow)
            }
            #expect(error?.code == .unavailable)
            #expect(error?.message.hasPrefix("the TokenReview could not be made: ") == true)
            #expect(error?.message.contains("etcd is down") == true)
            // The client retries, and the next call succeeds.
            let retried = try await authority.certify(
                identity: web, token: Array(webToken.utf8), certificateSigningRequest: try proxyCSR(for: web),
                now: testNow)
            #expect(retried.requester.serviceAccount == "web")
        }
    }

    @Test func withoutAnIssuerCallsAreUnavailable() async throws {
        let pki = try await TestPKI()
        try await withAuthority(issuer: nil) { authority, server in
            let error = await identityError { () async throws(IdentityError) in
                try await authority.certify(
                    identity: web, token: Array(webToken.utf8),
                    certificateSigningRequest: (try? proxyCSR(for: web)) ?? [],
                    now: testNow)
            }
            #expect(error == IdentityError(code: .unavailable, message: "cert issuer not ready yet"))
            authority.update(issuer: pki.issuer)
            let result = try await authority.certify(
                identity: web, token: Array(webToken.utf8), certificateSigningRequest: try proxyCSR(for: web),
                now: testNow)
            #expect(result.leaf.certificate.issuer == pki.issuerCA.certificate.subject)
        }
    }

    @Test func emptyFieldsAreInvalidArguments() async throws {
        let pki = try await TestPKI()
        let csr = try proxyCSR(for: web)
        try await withAuthority(issuer: pki.issuer) { authority, server in
            let cases: [(String, [UInt8], [UInt8], String)] = [
                ("", Array(webToken.utf8), csr, "missing identity"),
                (web, [], csr, "missing token"),
                (web, Array(webToken.utf8), [], "missing certificate signing request"),
            ]
            for (identity, token, csr, message) in cases {
                let error = await identityError { () async throws(IdentityError) in
                    try await authority.certify(
                        identity: identity, token: token, certificateSigningRequest: csr, now: testNow)
                }
                #expect(error == IdentityError(code: .invalidArgument, message: message))
            }
            let notUTF8 = await identityError { () async throws(IdentityError) in
                try await authority.certify(
                    identity: web, token: [0xff, 0xfe], certificateSigningRequest: csr, now: testNow)
            }
            #expect(notUTF8 == IdentityError(code: .invalidArgument, message: "token is not UTF-8 text"))
            #expect(tokenReviewPosts(server) == 0)
        }
    }

    /// Bad CSRs are refused before the API server is asked anything.
    @Test func badRequestsNeverReachTheAPIServer() async throws {
        let pki = try await TestPKI()
        let twoNames = try makeCSR(commonName: web, names: [.dnsName(web), .dnsName(identity("admin", "emojivoto"))])
        let rsaLike = try makeCSR(
            commonName: web, names: [.dnsName(web)], key: Certificate.PrivateKey(P384.Signing.PrivateKey()))
        try await withAuthority(issuer: pki.issuer) { authority, server in
            let cases: [([UInt8], IdentityError.Code)] = [
                (Array("garbage".utf8), .invalidArgument), (twoNames, .failedPrecondition),
                (rsaLike, .failedPrecondition),
            ]
            for (csr, code) in cases {
                let error = await identityError { () async throws(IdentityError) in
                    try await authority.certify(
                        identity: web, token: Array(webToken.utf8), certificateSigningRequest: csr, now: testNow)
                }
                #expect(error?.code == code)
            }
            #expect(tokenReviewPosts(server) == 0)
        }
    }

    @Test func anExpiredIssuerIsUnknown() async throws {
        let pki = try await TestPKI(issuerNotAfter: testNow + day)
        try await withAuthority(issuer: pki.issuer) { authority, server in
            let error = await identityError { () async throws(IdentityError) in
                try await authority.certify(
                    identity: web, token: Array(webToken.utf8),
                    certificateSigningRequest: (try? proxyCSR(for: web)) ?? [],
                    now: testNow + 2 * day)
            }
            #expect(
                error
                    == IdentityError(
                        code: .unknown,
                        message: "issuer certificate is not valid: the issuer certificate "
                            + "CN=identity.linkerd.cluster.local expired at 2027-01-16T08:00:00Z"))
            // A garbage CSR is still reported first, as upstream parses before checking the issuer.
            let garbage = await identityError { () async throws(IdentityError) in
                try await authority.certify(
                    identity: web, token: Array(webToken.utf8), certificateSigningRequest: [1, 2, 3],
                    now: testNow + 2 * day)
            }
            #expect(garbage?.code == .invalidArgument)
        }
    }

    /// Hot reload: calls running while the issuer is replaced all succeed, each with a chain that verifies.
    @Test func theIssuerCanBeReplacedWhileCallsRun() async throws {
        let root = try MintedCA.root()
        let anchors = try TrustAnchors(pemBundle: root.certificatePEM)
        var issuers: [IssuerCredentials] = []
        for index in 0..<4 {
            let issuerCA = try root.sign("issuer-\(index)")
            issuers.append(
                try await IssuerCredentials(
                    certificatePEM: issuerCA.certificatePEM, privateKeyPEM: issuerCA.keyPEM, trustAnchors: anchors,
                    now: testNow))
        }
        let csr = try proxyCSR(for: web)
        try await withAuthority(issuer: issuers[0]) { authority, server in
            let results = try await withThrowingTaskGroup(of: CertifyResult.self) { group in
                for index in 0..<24 {
                    group.addTask {
                        try await authority.certify(
                            identity: web, token: Array(webToken.utf8), certificateSigningRequest: csr, now: testNow)
                    }
                    if index % 6 == 5 {
                        authority.update(issuer: issuers[index / 6])
                    }
                }
                var results: [CertifyResult] = []
                for try await result in group { results.append(result) }
                return results
            }
            #expect(results.count == 24)
            for result in results {
                let issuer = try Certificate(derEncoded: try #require(result.leaf.intermediateCertificatesDER.first))
                #expect(result.leaf.certificate.issuer == issuer.subject)
                #expect(
                    issuer.publicKey.isValidSignature(result.leaf.certificate.signature, for: result.leaf.certificate))
            }
            authority.update(issuer: issuers[3])
            let last = try await authority.certify(
                identity: web, token: Array(webToken.utf8), certificateSigningRequest: csr, now: testNow)
            #expect(last.leaf.certificate.issuer == issuers[3].certificate.subject)
        }
    }

    @Test func theMeshNamesAreValidated() {
        #expect(throws: (any Error).self) {
            try IdentityAuthority(
                controlPlaneNamespace: "Linkerd", trustDomain: trustDomain,
                tokenReviewer: TokenReviewer(api: ScriptedTokenReviews { $0 }))
        }
    }
}
