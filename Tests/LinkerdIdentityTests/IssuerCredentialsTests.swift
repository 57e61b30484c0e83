import Crypto
import Foundation
import LinkerdIdentity
import Testing
import X509

@Suite struct IssuerCredentialsTests {
    @Test func loadsAnIssuerSignedByTheAnchors() async throws {
        let pki = try await TestPKI()
        #expect(pki.issuer.certificate == pki.issuerCA.certificate)
        #expect(pki.issuer.verifiedChain == [pki.issuerCA.certificate, pki.root.certificate])
        #expect(pki.issuer.intermediateCertificatesDER == [try der(pki.issuerCA.certificate)])
        #expect(pki.issuer.notValidAfter == pki.issuerCA.certificate.notValidAfter)
        #expect(pki.issuer.validityProblem(at: testNow) == nil)
    }

    @Test func trustAnchorsMayBeABundle() async throws {
        let other = try MintedCA.root("other root")
        let root = try MintedCA.root()
        let issuerCA = try root.sign()
        let anchors = try TrustAnchors(pemBundle: other.certificatePEM + root.certificatePEM)
        #expect(anchors.certificates == [other.certificate, root.certificate])
        let issuer = try await IssuerCredentials(
            certificatePEM: issuerCA.certificatePEM, privateKeyPEM: issuerCA.keyPEM, trustAnchors: anchors,
            now: testNow)
        #expect(issuer.verifiedChain.last == root.certificate)
    }

    /// A bundle of issuer, intermediate and root: the chain goes through the intermediate, and Certify's
    /// intermediates leave the root (a trust anchor) out.
    @Test func aLongerChainVerifiesThroughTheFilesOtherCertificates() async throws {
        let root = try MintedCA.root()
        let middle = try root.sign("middle")
        let issuerCA = try middle.sign()
        let anchors = try TrustAnchors(pemBundle: root.certificatePEM)
        let issuer = try await IssuerCredentials(
            certificatePEM: issuerCA.certificatePEM + middle.certificatePEM + root.certificatePEM,
            privateKeyPEM: issuerCA.keyPEM, trustAnchors: anchors, now: testNow)
        #expect(issuer.verifiedChain == [issuerCA.certificate, middle.certificate, root.certificate])
        #expect(issuer.intermediateCertificatesDER == [try der(issuerCA.certificate), try der(middle.certificate)])
    }

    /// `linkerd install` without certificates uses one self-signed root as both anchor and issuer.
    @Test func theAnchorItselfMayBeTheIssuer() async throws {
        let root = try MintedCA.root()
        let anchors = try TrustAnchors(pemBundle: root.certificatePEM)
        let issuer = try await IssuerCredentials(
            certificatePEM: root.certificatePEM, privateKeyPEM: root.keyPEM, trustAnchors: anchors, now: testNow)
        #expect(issuer.verifiedChain == [root.certificate])
        #expect(issuer.intermediateCertificatesDER == [try der(root.certificate)])
    }

    @Test func anIssuerNotSignedByTheAnchorsIsRefused() async throws {
        let root = try MintedCA.root()
        let stranger = try MintedCA.root("stranger").sign()
        let anchors = try TrustAnchors(pemBundle: root.certificatePEM)
        let error = await credentialsError { () async throws(CredentialsError) in
            try await IssuerCredentials(
                certificatePEM: stranger.certificatePEM, privateKeyPEM: stranger.keyPEM, trustAnchors: anchors,
                now: testNow, certificateSource: "issuer/crt.pem")
        }
        #expect(error?.source == "issuer/crt.pem")
        #expect(
            error?.reason
                == "the issuer certificate CN=identity.linkerd.cluster.local does not verify against the trust anchors "
                + "at 2027-01-15T08:00:00Z: it is not signed by any of the 1 trust anchors, nor through the file's "
                + "other certificates")
    }

    @Test func anExpiredIssuerIsRefused() async throws {
        let root = try MintedCA.root()
        let issuerCA = try root.sign(notBefore: testNow - 100 * day, notAfter: testNow - day)
        let anchors = try TrustAnchors(pemBundle: root.certificatePEM)
        let error = await credentialsError { () async throws(CredentialsError) in
            try await IssuerCredentials(
                certificatePEM: issuerCA.certificatePEM, privateKeyPEM: issuerCA.keyPEM, trustAnchors: anchors,
                now: testNow)
        }
        #expect(
            error?.reason
                == "the issuer certificate CN=identity.linkerd.cluster.local expired at 2027-01-14T08:00:00Z")
    }

    @Test func anIssuerUnderAnExpiredAnchorIsRefused() async throws {
        let root = try MintedCA.root(notBefore: testNow - 100 * day, notAfter: testNow - day)
        let issuerCA = try root.sign(notBefore: testNow - 50 * day)
        let anchors = try TrustAnchors(pemBundle: root.certificatePEM)
        let error = await credentialsError { () async throws(CredentialsError) in
            try await IssuerCredentials(
                certificatePEM: issuerCA.certificatePEM, privateKeyPEM: issuerCA.keyPEM, trustAnchors: anchors,
                now: testNow)
        }
        #expect(error?.reason.contains("does not verify against the trust anchors") == true)
    }

    @Test func anIssuerThatIsNotACAIsRefused() async throws {
        let root = try MintedCA.root()
        let leaf = try root.sign(isCA: false)
        let anchors = try TrustAnchors(pemBundle: root.certificatePEM)
        let error = await credentialsError { () async throws(CredentialsError) in
            try await IssuerCredentials(
                certificatePEM: leaf.certificatePEM, privateKeyPEM: leaf.keyPEM, trustAnchors: anchors,
                now: testNow)
        }
        #expect(
            error?.reason
                == "the issuer certificate CN=identity.linkerd.cluster.local is not a CA (basicConstraints CA:TRUE is "
                + "missing)")
    }

    @Test func aKeyThatIsNotTheCertificatesIsRefused() async throws {
        let pki = try await TestPKI()
        let error = await credentialsError { () async throws(CredentialsError) in
            try await IssuerCredentials(
                certificatePEM: pki.issuerCA.certificatePEM, privateKeyPEM: P256.Signing.PrivateKey().pemRepresentation,
                trustAnchors: pki.anchors, now: testNow, privateKeySource: "issuer/key.pem")
        }
        #expect(error?.source == "issuer/key.pem")
        #expect(
            error?.reason
                == "is not the key of the issuer certificate CN=identity.linkerd.cluster.local in issuer certificate")
    }

    @Test func aP384IssuerKeyIsRefused() async throws {
        let pki = try await TestPKI()
        let error = await credentialsError { () async throws(CredentialsError) in
            try await IssuerCredentials(
                certificatePEM: pki.issuerCA.certificatePEM, privateKeyPEM: P384.Signing.PrivateKey().pemRepresentation,
                trustAnchors: pki.anchors, now: testNow)
        }
        #expect(error?.reason == "holds a key of type P384.PublicKey, but the issuer key must be ECDSA P-256")
    }

    @Test func malformedFilesAreNamed() async throws {
        let pki = try await TestPKI()
        let garbage = await credentialsError { () async throws(CredentialsError) in
            try await IssuerCredentials(
                directoryContents: ["crt.pem": Array("garbage".utf8), "key.pem": Array(pki.issuerCA.keyPEM.utf8)],
                directory: "/issuer", trustAnchors: pki.anchors, now: testNow)
        }
        #expect(garbage?.source == "/issuer/crt.pem")
        #expect(garbage?.reason == "contains no certificate")

        let keyAsCertificate = await credentialsError { () async throws(CredentialsError) in
            try await IssuerCredentials(
                directoryContents: [
                    "tls.crt": Array(pki.issuerCA.keyPEM.utf8), "tls.key": Array(pki.issuerCA.keyPEM.utf8),
                ],
                directory: "/issuer", trustAnchors: pki.anchors, now: testNow)
        }
        #expect(keyAsCertificate?.source == "/issuer/tls.crt")
        #expect(
            keyAsCertificate?.reason == "PEM block 1 is a PRIVATE KEY, but only CERTIFICATE blocks are allowed")

        let badKey = await credentialsError { () async throws(CredentialsError) in
            try await IssuerCredentials(
                directoryContents: ["crt.pem": Array(pki.issuerCA.certificatePEM.utf8), "key.pem": [0xff, 0xfe]],
                directory: "/issuer", trustAnchors: pki.anchors, now: testNow)
        }
        #expect(badKey?.source == "/issuer/key.pem")
        #expect(badKey?.reason == "is not UTF-8 text")

        let missing = await credentialsError { () async throws(CredentialsError) in
            try await IssuerCredentials(
                directoryContents: ["crt.pem": Array(pki.issuerCA.certificatePEM.utf8)], directory: "/issuer",
                trustAnchors: pki.anchors, now: testNow)
        }
        #expect(missing?.description == "/issuer/key.pem: does not exist")

        let empty = await credentialsError { () async throws(CredentialsError) in
            try await IssuerCredentials(
                directoryContents: ["ca.crt": []], directory: "/issuer", trustAnchors: pki.anchors, now: testNow)
        }
        #expect(
            empty?.description
                == "/issuer: contains neither crt.pem (linkerd.io/tls) nor tls.crt (kubernetes.io/tls)")
    }

    @Test func trustAnchorErrorsNameTheSource() {
        #expect(throws: CredentialsError(source: "ca-bundle.crt", reason: "contains no certificate")) {
            try TrustAnchors(pemBundle: "", source: "ca-bundle.crt")
        }
        #expect(throws: CredentialsError.self) {
            try TrustAnchors.load(fromFile: "/nonexistent/ca-bundle.crt")
        }
    }

    /// Both Secret layouts, read from a directory as mounted.
    @Test(arguments: IssuerFileLayout.allCases)
    func loadsEitherLayoutFromADirectory(layout: IssuerFileLayout) async throws {
        let pki = try await TestPKI()
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try directory.write(layout.certificateFile, pki.issuerCA.certificatePEM)
        try directory.write(layout.privateKeyFile, pki.issuerCA.keyPEM)
        if layout == .kubernetes {
            try directory.write("ca.crt", pki.root.certificatePEM)
        }
        let issuer = try await IssuerCredentials.load(
            fromDirectory: directory.path, trustAnchors: pki.anchors, now: testNow)
        #expect(issuer.certificate == pki.issuerCA.certificate)

        let anchorsFile = try directory.write("ca-bundle.crt", pki.root.certificatePEM)
        #expect(try TrustAnchors.load(fromFile: anchorsFile) == pki.anchors)
    }

    @Test func aMissingKeyFileIsNamed() async throws {
        let pki = try await TestPKI()
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try directory.write("crt.pem", pki.issuerCA.certificatePEM)
        let error = await credentialsError { () async throws(CredentialsError) in
            try await IssuerCredentials.load(fromDirectory: directory.path, trustAnchors: pki.anchors, now: testNow)
        }
        #expect(error?.description == "\(directory.path)/key.pem: does not exist")
    }

    @Test func validityIsRecheckedAtEachInstant() async throws {
        let pki = try await TestPKI(issuerNotAfter: testNow + 10 * day)
        #expect(pki.issuer.validityProblem(at: testNow + 9 * day) == nil)
        #expect(
            pki.issuer.validityProblem(at: testNow + 11 * day)
                == "the issuer certificate CN=identity.linkerd.cluster.local expired at 2027-01-25T08:00:00Z")
        #expect(
            pki.issuer.validityProblem(at: testNow + 400 * day)?.hasPrefix("the issuer certificate CN=") == true)
    }
}
