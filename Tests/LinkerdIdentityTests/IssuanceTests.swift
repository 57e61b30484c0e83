import Crypto
import Foundation
import LinkerdIdentity
import SwiftASN1
import Testing
@_spi(FixedExpiryValidationTime) import X509

@Suite struct IssuanceTests {
    let name = identity("web", "emojivoto")

    private func validated(_ name: String, key: P256.Signing.PrivateKey = .init()) throws -> ValidatedSigningRequest {
        let csr = try makeCSR(commonName: name, names: [.dnsName(name)], key: Certificate.PrivateKey(key))
        return try CertificateSigningRequestCheck.check(
            CertificateSigningRequestCheck.parse(derEncoded: csr), identity: name)
    }

    @Test func issuesALeafThatVerifiesAgainstTheAnchor() async throws {
        let pki = try await TestPKI()
        let key = P256.Signing.PrivateKey()
        let issued = try pki.issuer.issue(for: try validated(name, key: key), now: testNow)
        let leaf = issued.certificate
        #expect(try Certificate(derEncoded: issued.certificateDER) == leaf)
        #expect(issued.intermediateCertificatesDER == [try der(pki.issuerCA.certificate)])

        var verifier = Verifier(rootCertificates: CertificateStore([pki.root.certificate])) {
            RFC5280Policy(fixedExpiryValidationTime: testNow)
        }
        let intermediates = try issued.intermediateCertificatesDER.map { try Certificate(derEncoded: $0) }
        let result = await verifier.validate(leaf: leaf, intermediates: CertificateStore(intermediates))
        guard case .validCertificate(let chain) = result else {
            Issue.record("the leaf does not verify: \(result)")
            return
        }
        #expect(Array(chain) == [leaf, pki.issuerCA.certificate, pki.root.certificate])

        #expect(leaf.publicKey == Certificate.PublicKey(key.publicKey))
        #expect(leaf.subject == (try DistinguishedName { CommonName(name) }))
        #expect(leaf.issuer == pki.issuerCA.certificate.subject)
        #expect(leaf.signatureAlgorithm == .ecdsaWithSHA256)
        #expect(Array(try #require(try leaf.extensions.subjectAlternativeNames)) == [.dnsName(name)])
        let usages = Array(try #require(try leaf.extensions.extendedKeyUsage))
        #expect(usages == [.serverAuth, .clientAuth])
        #expect(try leaf.extensions.keyUsage == KeyUsage(digitalSignature: true, keyEncipherment: true))
        #expect(try leaf.extensions.basicConstraints == .notCertificateAuthority)
        #expect(
            try leaf.extensions.authorityKeyIdentifier?.keyIdentifier
                == pki.issuerCA.certificate.extensions.subjectKeyIdentifier?.keyIdentifier)
        #expect(try leaf.extensions.subjectKeyIdentifier == SubjectKeyIdentifier(hash: leaf.publicKey))

        // 24 hours, plus and minus the 20 seconds of skew allowance.
        #expect(leaf.notValidBefore == testNow - 20)
        #expect(leaf.notValidAfter == testNow + day + 20)
        #expect(issued.validUntil == leaf.notValidAfter)
    }

    @Test func settingsChangeTheLifetime() async throws {
        let pki = try await TestPKI()
        let settings = IssuanceSettings(lifetime: .seconds(3600), clockSkewAllowance: .seconds(10))
        let issued = try pki.issuer.issue(for: try validated(name), now: testNow, settings: settings)
        #expect(issued.certificate.notValidBefore == testNow - 10)
        #expect(issued.validUntil == testNow + 3610)
    }

    @Test func aLeafNeverOutlivesItsIssuer() async throws {
        let pki = try await TestPKI(issuerNotAfter: testNow + 3600)
        let issued = try pki.issuer.issue(for: try validated(name), now: testNow)
        #expect(issued.validUntil == testNow + 3600)
    }

    @Test func aLeafNeverOutlivesTheTrustAnchor() async throws {
        let root = try MintedCA.root(notAfter: testNow + 7200)
        let issuerCA = try root.sign(notAfter: testNow + 180 * day)
        let issuer = try await IssuerCredentials(
            certificatePEM: issuerCA.certificatePEM, privateKeyPEM: issuerCA.keyPEM,
            trustAnchors: try TrustAnchors(pemBundle: root.certificatePEM), now: testNow)
        #expect(issuer.notValidAfter == testNow + 7200)
        #expect(try issuer.issue(for: try validated(name), now: testNow).validUntil == testNow + 7200)
    }

    @Test func serialsAreRandomPositiveAndNonZero() async throws {
        let pki = try await TestPKI()
        let request = try validated(name)
        var serials: Set<Certificate.SerialNumber> = []
        for _ in 0..<20 {
            let serial = try pki.issuer.issue(for: request, now: testNow).certificate.serialNumber
            // `bytes` is the unsigned magnitude: at most 128 bits, never zero, encoded as a positive INTEGER.
            #expect(serial.bytes.count <= 16)
            #expect(serial.bytes.contains { $0 != 0 })
            let encoded = try der(serial.bytes)
            #expect(encoded[0] == 0x02 && encoded[2] & 0x80 == 0)
            serials.insert(serial)
        }
        #expect(serials.count == 20)
    }

    /// A request without a subject gets a leaf with an empty subject and critical subject alternative names.
    @Test func anEmptySubjectMakesTheNamesCritical() async throws {
        let pki = try await TestPKI()
        let csr = try makeCSR(commonName: nil, names: [.dnsName(name)])
        let request = try CertificateSigningRequestCheck.check(
            CertificateSigningRequestCheck.parse(derEncoded: csr), identity: name)
        let leaf = try pki.issuer.issue(for: request, now: testNow).certificate
        #expect(leaf.subject.isEmpty)
        let extensionValue = try #require(leaf.extensions[oid: .X509ExtensionID.subjectAlternativeName])
        #expect(extensionValue.critical)
    }

    /// The chain as a proxy would receive it, checked by another implementation.
    @Test func opensslVerifiesTheChain() async throws {
        let pki = try await TestPKI()
        let issued = try pki.issuer.issue(for: try validated(name), now: testNow)
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let anchor = try directory.write("anchor.pem", pki.root.certificatePEM)
        let intermediates = try issued.intermediateCertificatesDER.map {
            try Certificate(derEncoded: $0).serializeAsPEM().pemString
        }
        let untrusted = try directory.write("issuer.pem", intermediates.joined())
        let leaf = try directory.write("leaf.pem", try issued.certificate.serializeAsPEM().pemString)
        let at = String(Int(testNow.timeIntervalSince1970))
        let verify = try run(
            "openssl",
            [
                "verify", "-attime", at, "-purpose", "sslclient", "-CAfile", anchor, "-untrusted", untrusted, leaf,
            ])
        #expect(verify.status == 0, "\(verify.output)")
        #expect(verify.output.contains("\(leaf): OK"))
        let server = try run(
            "openssl",
            ["verify", "-attime", at, "-purpose", "sslserver", "-CAfile", anchor, "-untrusted", untrusted, leaf])
        #expect(server.status == 0, "\(server.output)")

        // And the negative: after the leaf's expiry, openssl refuses it.
        let later = String(Int(testNow.timeIntervalSince1970 + 2 * day))
        let expired = try run(
            "openssl", ["verify", "-attime", later, "-CAfile", anchor, "-untrusted", untrusted, leaf])
        #expect(expired.status != 0)
        #expect(expired.output.contains("certificate has expired"))
    }
}
