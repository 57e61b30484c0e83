import Crypto
import LinkerdTestSupport
import SwiftASN1
import Testing
import X509

@Suite("TestCertificateAuthority")
struct TestCertificateAuthorityTests {
    @Test func authorityIsASelfSignedCA() throws {
        let authority = try TestCertificateAuthority(commonName: "unit CA")
        let parsed = try Certificate(pemEncoded: authority.certificatePEM)
        #expect(parsed == authority.certificate)
        #expect(parsed.subject == parsed.issuer)
        #expect(try parsed.extensions.basicConstraints == .isCertificateAuthority(maxPathLength: nil))
        #expect(try parsed.extensions.keyUsage == KeyUsage(keyCertSign: true, cRLSign: true))
        #expect(try parsed.extensions.subjectKeyIdentifier != nil)
        #expect(parsed.publicKey == Certificate.PublicKey(authority.privateKey.publicKey))
        var serializer = DER.Serializer()
        try serializer.serialize(parsed)
        #expect(try TestCertificateAuthority.subjectCommonName(derEncoded: serializer.serializedBytes) == "unit CA")
    }

    @Test func leafCarriesNamesUsagesAndKeyIdentifiers() throws {
        let authority = try TestCertificateAuthority()
        let leaf = try authority.issue(
            commonName: "web", dnsNames: ["web.default.svc"], ipAddresses: ["127.0.0.1", "::1"], clientAuth: false)
        let parsed = try Certificate(pemEncoded: leaf.certificatePEM)
        #expect(parsed.issuer == authority.certificate.subject)
        #expect(try parsed.extensions.basicConstraints == .notCertificateAuthority)
        let names = try #require(try parsed.extensions.subjectAlternativeNames)
        #expect(names.contains(.dnsName("web.default.svc")))
        #expect(names.count == 3)
        #expect(try parsed.extensions.extendedKeyUsage == ExtendedKeyUsage([.serverAuth]))
        #expect(
            try parsed.extensions.authorityKeyIdentifier?.keyIdentifier
                == authority.certificate.extensions.subjectKeyIdentifier?.keyIdentifier)
        #expect(leaf.privateKeyPEM.hasPrefix("-----BEGIN PRIVATE KEY-----"))
        #expect(parsed.publicKey == Certificate.PublicKey(leaf.privateKey.publicKey))
        #expect(authority.certificate.publicKey.isValidSignature(parsed.signature, for: parsed))
    }

    @Test func badAddressesAreRejected() throws {
        let authority = try TestCertificateAuthority()
        #expect(throws: TestCertificateAuthority.InvalidIPAddress(text: "localhost")) {
            _ = try authority.issue(commonName: "x", ipAddresses: ["localhost"])
        }
    }
}
