import Crypto
import Foundation
import LinkerdIdentity
import SwiftASN1
import Testing
import X509

@Suite struct CertificateSigningRequestCheckTests {
    let name = identity("web", "emojivoto")

    private func check(_ csr: [UInt8]) async -> IdentityError? {
        await identityError { () throws(IdentityError) in
            try CertificateSigningRequestCheck.check(
                CertificateSigningRequestCheck.parse(derEncoded: csr), identity: name)
        }
    }

    @Test func acceptsTheProxysRequest() throws {
        let key = P256.Signing.PrivateKey()
        let csr = try makeCSR(commonName: name, names: [.dnsName(name)], key: Certificate.PrivateKey(key))
        let validated = try CertificateSigningRequestCheck.check(
            CertificateSigningRequestCheck.parse(derEncoded: csr), identity: name)
        #expect(validated.dnsName == name)
        #expect(validated.publicKey == Certificate.PublicKey(key.publicKey))
        #expect(validated.subject == (try DistinguishedName { CommonName(name) }))
    }

    @Test func acceptsAnEmptyCommonName() throws {
        for csr in [
            try makeCSR(commonName: nil, names: [.dnsName(name)]), try makeCSR(commonName: "", names: [.dnsName(name)]),
        ] {
            let validated = try CertificateSigningRequestCheck.check(
                CertificateSigningRequestCheck.parse(derEncoded: csr), identity: name)
            #expect(validated.dnsName == name)
        }
    }

    @Test func garbageIsAnInvalidArgument() async throws {
        let error = await check(Array("not a CSR".utf8))
        #expect(error?.code == .invalidArgument)
        #expect(error?.message.hasPrefix("certificate signing request could not be parsed as DER") == true)
    }

    @Test func aTruncatedRequestIsAnInvalidArgument() async throws {
        let csr = try proxyCSR(for: name)
        let error = await check(Array(csr.dropLast(10)))
        #expect(error?.code == .invalidArgument)
    }

    @Test func anOversizedRequestIsRefusedBeforeParsing() async throws {
        let error = await check([UInt8](repeating: 0x30, count: CertificateSigningRequestCheck.maximumSize + 1))
        #expect(error?.code == .invalidArgument)
        #expect(error?.message == "certificate signing request is 16385 bytes, more than the 16384 allowed")
    }

    @Test func aSignatureByAnotherKeyIsAnInvalidArgument() async throws {
        let holder = Certificate.PrivateKey(P256.Signing.PrivateKey())
        let forger = Certificate.PrivateKey(P256.Signing.PrivateKey())
        let genuine = try makeRequest(commonName: name, names: [.dnsName(name)], key: holder)
        let forged = try makeRequest(commonName: name, names: [.dnsName(name)], key: forger)
        // The holder's public key, under a signature the holder's key did not make.
        let tampered = try CertificateSigningRequest(
            version: genuine.version, subject: genuine.subject, publicKey: genuine.publicKey,
            attributes: genuine.attributes, signatureAlgorithm: forged.signatureAlgorithm, signature: forged.signature)
        let error = await check(try der(tampered))
        #expect(error?.code == .invalidArgument)
        #expect(
            error?.message
                == "certificate signing request signature does not verify with the request's own public key "
                + "(SignatureAlgorithm.ecdsaWithSHA256)")
    }

    @Test func anAlteredRequestIsAnInvalidArgument() async throws {
        var csr = try proxyCSR(for: name)
        // Change one letter of the signed subject ("web" → "wec"): the bytes still parse, the signature breaks.
        let needle = Array("web.emojivoto".utf8)
        let start = try #require(csr.indices.first { csr[$0...].starts(with: needle) })
        csr[start + 2] = UInt8(ascii: "c")
        let error = await check(csr)
        #expect(error?.code == .invalidArgument)
        #expect(error?.message.contains("signature does not verify") == true)
    }

    @Test func twoDNSNamesAreAFailedPrecondition() async throws {
        let other = identity("admin", "emojivoto")
        let error = await check(try makeCSR(commonName: name, names: [.dnsName(name), .dnsName(other)]))
        #expect(error?.code == .failedPrecondition)
        #expect(
            error?.message
                == "certificate signing request has 2 DNS subject alternative names (\"\(name)\", \"\(other)\"), "
                + "but must have exactly one: the requested identity \"\(name)\"")
    }

    @Test func noDNSNameIsAFailedPrecondition() async throws {
        let error = await check(try makeCSR(commonName: name, names: []))
        #expect(error?.code == .failedPrecondition)
        #expect(
            error?.message
                == "certificate signing request has no DNS subject alternative name, but must have exactly one: "
                + "the requested identity \"\(name)\"")
    }

    @Test func anotherDNSNameIsAFailedPrecondition() async throws {
        let other = identity("admin", "emojivoto")
        let error = await check(try makeCSR(commonName: nil, names: [.dnsName(other)]))
        #expect(error?.code == .failedPrecondition)
        #expect(
            error?.message
                == "certificate signing request DNS subject alternative name \"\(other)\" does not match the "
                + "requested identity \"\(name)\"")
    }

    @Test func anotherCommonNameIsAFailedPrecondition() async throws {
        let error = await check(try makeCSR(commonName: "admin", names: [.dnsName(name)]))
        #expect(error?.code == .failedPrecondition)
        #expect(
            error?.message
                == "certificate signing request common name \"admin\" does not match the requested identity "
                + "\"\(name)\"")
    }

    @Test func emailURIAndIPNamesAreFailedPreconditions() async throws {
        let others: [(GeneralName, String)] = [
            (.rfc822Name("web@example.com"), "email subject alternative name \"web@example.com\""),
            (.uniformResourceIdentifier("spiffe://cluster.local/ns/emojivoto/sa/web"), "URI subject alternative name"),
            (.ipAddress(ASN1OctetString(contentBytes: [10, 0, 0, 1])), "IP address subject alternative name"),
        ]
        for (other, description) in others {
            let error = await check(try makeCSR(commonName: name, names: [.dnsName(name), other]))
            #expect(error?.code == .failedPrecondition)
            #expect(error?.message.contains(description) == true, "\(String(describing: error))")
        }
    }

    /// Only P-256: a P-384 key (made with swift-crypto) is refused although its request is otherwise perfect.
    @Test func aP384KeyIsAFailedPrecondition() async throws {
        let key = Certificate.PrivateKey(P384.Signing.PrivateKey())
        let error = await check(try makeCSR(commonName: name, names: [.dnsName(name)], key: key))
        #expect(error?.code == .failedPrecondition)
        #expect(
            error?.message
                == "certificate signing request key (P384.PublicKey) is not ECDSA P-256, the only key type accepted")
    }

    /// An RSA request made by openssl, as a foreign client would make it.
    @Test func anRSAKeyIsAFailedPrecondition() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = "\(directory.path)/rsa.csr"
        let result = try run(
            "openssl",
            [
                "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", "\(directory.path)/rsa.key",
                "-subj", "/CN=\(name)", "-addext", "subjectAltName=DNS:\(name)", "-outform", "DER", "-out", path,
            ])
        try #require(result.status == 0, "\(result.output)")
        let csr = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        let error = await check(csr)
        #expect(error?.code == .failedPrecondition)
        #expect(
            error?.message
                == "certificate signing request key (RSA2048.PublicKey) is not ECDSA P-256, the only key type accepted")
    }
}
