import Crypto
import Foundation
import LinkerdCLI
import SwiftASN1
import Testing
import X509

@Suite("linkerd identity: bad input fails precisely and writes nothing")
struct IdentityBadInputTests {
    /// Runs `create-issuer` in `directory` with the anchor files given (relative names), and checks that it failed
    /// with exit status 1 and left the directory as it was.
    private func createIssuerFails(
        in directory: URL, caCert: String, caKey: String, at now: Date = identityTestTime,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> String {
        let before = try contents(of: directory)
        let outcome = linkerd(
            [
                "identity", "create-issuer",
                "--ca-cert", directory.appendingPathComponent(caCert).path,
                "--ca-key", directory.appendingPathComponent(caKey).path,
                "--cert-out", directory.appendingPathComponent("new-issuer.crt").path,
                "--key-out", directory.appendingPathComponent("new-issuer.key").path,
            ],
            at: now)
        #expect(outcome.exitCode == 1, sourceLocation: sourceLocation)
        #expect(outcome.standardOutput == "", sourceLocation: sourceLocation)
        #expect(try contents(of: directory) == before, "files were written", sourceLocation: sourceLocation)
        return outcome.standardError
    }

    /// Writes a self-signed certificate with `extensions` and a fresh P-256 key as `<name>.crt` and `<name>.key`.
    private func writeSelfSigned(
        _ name: String, in directory: URL,
        @ExtensionsBuilder extensions: () throws -> Result<Certificate.Extensions, any Error>
    ) throws {
        let key = P256.Signing.PrivateKey()
        let subject = try DistinguishedName { CommonName(name) }
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: Certificate.PublicKey(key.publicKey),
            notValidBefore: identityTestTime - 3_600, notValidAfter: identityTestTime + 86_400 * 365,
            issuer: subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try extensions().get(), issuerPrivateKey: Certificate.PrivateKey(key))
        try certificate.serializeAsPEM().pemString.write(
            to: directory.appendingPathComponent("\(name).crt"), atomically: true, encoding: .utf8)
        try key.pemRepresentation.write(
            to: directory.appendingPathComponent("\(name).key"), atomically: true, encoding: .utf8)
    }

    @Test("A key that belongs to another certificate")
    func keyMismatch() throws {
        try withTemporaryDirectory { directory in
            try createAnchorAndIssuer(in: directory, at: identityTestTime)
            let error = try createIssuerFails(in: directory, caCert: "ca.crt", caKey: "issuer.key")
            #expect(
                error
                    == "Error: \(directory.appendingPathComponent("issuer.key").path): the private key does not "
                    + "belong to the certificate in \(directory.appendingPathComponent("ca.crt").path) "
                    + "(\"CN=root.linkerd.cluster.local\")\n")
        }
    }

    @Test("An anchor that is not a CA, a CA with path length 0, a CA without keyCertSign")
    func notASigningCA() throws {
        try withTemporaryDirectory { directory in
            try writeSelfSigned("leaf", in: directory) {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
            }
            #expect(
                try createIssuerFails(in: directory, caCert: "leaf.crt", caKey: "leaf.key").hasSuffix(
                    "leaf.crt: the certificate \"CN=leaf\" is not a CA (no basicConstraints CA:TRUE), so it cannot "
                        + "sign an issuer\n"))

            try writeSelfSigned("plain", in: directory) {}
            #expect(
                try createIssuerFails(in: directory, caCert: "plain.crt", caKey: "plain.key").contains("is not a CA"))

            try writeSelfSigned("nosign", in: directory) {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                Critical(KeyUsage(digitalSignature: true))
            }
            #expect(
                try createIssuerFails(in: directory, caCert: "nosign.crt", caKey: "nosign.key").hasSuffix(
                    "nosign.crt: the certificate \"CN=nosign\" lacks the keyCertSign key usage (it has: "
                        + "digitalSignature)\n"))

            // An issuer (path length 0) cannot sign another issuer.
            try createAnchorAndIssuer(in: directory, at: identityTestTime)
            #expect(
                try createIssuerFails(in: directory, caCert: "issuer.crt", caKey: "issuer.key").hasSuffix(
                    "issuer.crt: the certificate \"CN=identity.linkerd.cluster.local\" has path length 0, which "
                        + "allows no CA below it; the issuer is one\n"))
        }
    }

    @Test("An expired anchor, and an RSA anchor key")
    func expiredAndRSA() throws {
        try withTemporaryDirectory { directory in
            _ = linkerd(
                [
                    "identity", "create-trust-anchor", "--validity", "24h",
                    "--cert-out", directory.appendingPathComponent("ca.crt").path,
                    "--key-out", directory.appendingPathComponent("ca.key").path,
                ],
                at: identityTestTime)
            #expect(
                try createIssuerFails(
                    in: directory, caCert: "ca.crt", caKey: "ca.key", at: identityTestTime + 2 * 86_400
                )
                .hasSuffix(
                    "ca.crt: the certificate \"CN=root.linkerd.cluster.local\" expired on 2025-06-16T16:26:40Z\n"))

            let rsa = try openssl(
                [
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "rsa.key", "-out", "rsa.crt",
                    "-subj", "/CN=rsa", "-days", "30",
                ],
                in: directory)
            #expect(rsa.status == 0, "\(rsa.output)")
            #expect(
                try createIssuerFails(in: directory, caCert: "rsa.crt", caKey: "rsa.key", at: Date()).hasSuffix(
                    "rsa.key: a RSA 2048 key; the issuer is signed with ECDSA-SHA256, so the trust anchor's key must "
                        + "be ECDSA P-256\n"))
        }
    }

    @Test("Unreadable and malformed anchor files")
    func malformedFiles() throws {
        try withTemporaryDirectory { directory in
            try createAnchorAndIssuer(in: directory, at: identityTestTime)
            try "hello\n".write(to: directory.appendingPathComponent("text.pem"), atomically: true, encoding: .utf8)
            try Data([0x30, 0x82, 0xff, 0xfe, 0x00]).write(to: directory.appendingPathComponent("der.crt"))
            try "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".write(
                to: directory.appendingPathComponent("garbage.crt"), atomically: true, encoding: .utf8)
            try "-----BEGIN CERTIFICATE-----\nnot base64!\n".write(
                to: directory.appendingPathComponent("broken.crt"), atomically: true, encoding: .utf8)
            try "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n".write(
                to: directory.appendingPathComponent("encrypted.key"), atomically: true, encoding: .utf8)
            let twoKeys =
                try String(contentsOf: directory.appendingPathComponent("ca.key"), encoding: .utf8)
                + String(contentsOf: directory.appendingPathComponent("issuer.key"), encoding: .utf8)
            try twoKeys.write(to: directory.appendingPathComponent("two.key"), atomically: true, encoding: .utf8)
            try FileManager.default.createDirectory(
                at: directory.appendingPathComponent("adir"), withIntermediateDirectories: false)

            let cases: [(cert: String, key: String, suffix: String)] = [
                ("missing.crt", "ca.key", "missing.crt: no such file or directory\n"),
                ("ca.crt", "missing.key", "missing.key: no such file or directory\n"),
                ("adir", "ca.key", "adir: a directory, expected a file\n"),
                (
                    "text.pem", "ca.key",
                    "text.pem: not PEM: no -----BEGIN CERTIFICATE----- block (for DER input: "
                        + "openssl x509 -inform der)\n"
                ),
                ("der.crt", "ca.key", "der.crt: not PEM text (binary data; for DER input: openssl x509 -inform der)\n"),
                ("ca.key", "ca.key", "ca.key: no CERTIFICATE PEM block (found: PRIVATE KEY)\n"),
                (
                    "ca.crt", "ca.crt",
                    "ca.crt: no private key PEM block (PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE "
                        + "KEY; found: CERTIFICATE)\n"
                ),
                ("ca.crt", "two.key", "two.key: 2 private keys; expected one\n"),
                (
                    "ca.crt", "encrypted.key",
                    "encrypted.key: the private key is encrypted; decrypt it first "
                        + "(openssl pkey -in FILE -out PLAIN.key)\n"
                ),
            ]
            for (cert, key, suffix) in cases {
                let error = try createIssuerFails(in: directory, caCert: cert, caKey: key)
                #expect(error.hasPrefix("Error: ") && error.hasSuffix(suffix), "\(cert) \(key): \(error)")
            }
            let garbage = try createIssuerFails(in: directory, caCert: "garbage.crt", caKey: "ca.key")
            #expect(
                garbage.contains("garbage.crt: certificate 1 of 1 is not a valid X.509 certificate: "), "\(garbage)")
            let broken = try createIssuerFails(in: directory, caCert: "broken.crt", caKey: "ca.key")
            #expect(broken.contains("broken.crt: malformed PEM: "), "\(broken)")
        }
    }

    @Test("Outputs: an existing file is kept without --force, same path twice, a missing directory")
    func outputs() throws {
        try withTemporaryDirectory { directory in
            let certificate = directory.appendingPathComponent("ca.crt")
            try "keep me\n".write(to: certificate, atomically: true, encoding: .utf8)
            let before = try contents(of: directory)
            let existing = linkerd(
                [
                    "identity", "create-trust-anchor", "--cert-out", certificate.path,
                    "--key-out", directory.appendingPathComponent("ca.key").path,
                ],
                at: identityTestTime)
            #expect(existing.exitCode == 1)
            #expect(existing.standardError == "Error: \(certificate.path): already exists (--force overwrites it)\n")
            #expect(try contents(of: directory) == before)
            #expect(try String(contentsOf: certificate, encoding: .utf8) == "keep me\n")

            let same = linkerd(
                [
                    "identity", "create-trust-anchor", "--cert-out", directory.appendingPathComponent("x.pem").path,
                    "--key-out", directory.appendingPathComponent("./x.pem").path,
                ],
                at: identityTestTime)
            #expect(same.exitCode == 1)
            #expect(same.standardError.hasSuffix("x.pem: given as both the certificate and the key output\n"))

            let nowhere = directory.appendingPathComponent("no/such/dir")
            let missing = linkerd(
                [
                    "identity", "create-trust-anchor", "--cert-out", nowhere.appendingPathComponent("ca.crt").path,
                    "--key-out", directory.appendingPathComponent("ca.key").path,
                ],
                at: identityTestTime)
            #expect(missing.exitCode == 1)
            #expect(missing.standardError.hasSuffix("ca.crt: the directory \(nowhere.path) does not exist\n"))
            #expect(try contents(of: directory) == before)
        }
    }

    @Test("Flags: validity syntax and sign, trust domain, empty common name, missing outputs (exit status 64)")
    func flags() throws {
        try withTemporaryDirectory { directory in
            let outputs = [
                "--cert-out", directory.appendingPathComponent("ca.crt").path,
                "--key-out", directory.appendingPathComponent("ca.key").path,
            ]
            let cases: [([String], String)] = [
                (["--validity", "10x"], "\"10x\" is not a valid duration: unknown unit \"x\""),
                (["--validity=-1h"], "the validity -1h is not positive"),
                (["--validity", "0"], "the validity 0 is not positive"),
                (["--trust-domain", "Cluster_Local"], "--trust-domain: \"Cluster_Local\" is not a valid trust domain"),
                (["--common-name", " "], "--common-name is empty"),
            ]
            for (arguments, message) in cases {
                let outcome = linkerd(["identity", "create-trust-anchor"] + outputs + arguments, at: identityTestTime)
                #expect(outcome.exitCode == 64, "\(arguments)")
                #expect(outcome.standardError.contains(message), "\(arguments): \(outcome.standardError)")
            }
            let noKey = linkerd(["identity", "create-trust-anchor", "--cert-out", "x.crt"], at: identityTestTime)
            #expect(noKey.exitCode == 64)
            #expect(noKey.standardError.contains("Missing expected argument '--key-out <file>'"))
            let written = try contents(of: directory)
            #expect(written.isEmpty)
        }
    }

    @Test("inspect: no input, stdin twice, a key file, garbage on stdin")
    func inspectInputs() throws {
        try withTemporaryDirectory { directory in
            try createAnchorAndIssuer(in: directory, at: identityTestTime)
            let none = linkerd(["identity", "inspect"])
            #expect(none.exitCode == 64)
            #expect(none.standardError.contains("no input: give PEM files, or - for standard input"))
            #expect(linkerd(["identity", "inspect", "-", "-"]).exitCode == 64)

            let key = linkerd(["identity", "inspect", directory.appendingPathComponent("ca.key").path])
            #expect(key.exitCode == 1)
            #expect(key.standardOutput == "")
            #expect(key.standardError.hasSuffix("ca.key: no CERTIFICATE PEM block (found: PRIVATE KEY)\n"))

            let garbage = linkerd(
                ["identity", "inspect", directory.appendingPathComponent("ca.crt").path, "-"], standardInput: "junk")
            #expect(garbage.exitCode == 1)
            #expect(garbage.standardOutput == "")
            #expect(garbage.standardError.hasPrefix("Error: stdin: not PEM"))

            let format = linkerd(["identity", "inspect", "-o", "yaml", directory.appendingPathComponent("ca.crt").path])
            #expect(format.exitCode == 64)
        }
    }
}
