import Crypto
import Foundation
import LinkerdCLI
import SwiftASN1
import Testing
@_spi(FixedExpiryValidationTime) import X509

@Suite("linkerd identity: create and inspect the PKI")
struct IdentityCommandTests {
    @Test("create-trust-anchor writes a self-signed P-256 root with path length 1, its PKCS#8 key with mode 0600")
    func trustAnchor() throws {
        try withTemporaryDirectory { directory in
            let outcome = linkerd(
                [
                    "identity", "create-trust-anchor", "--cert-out", directory.appendingPathComponent("ca.crt").path,
                    "--key-out", directory.appendingPathComponent("ca.key").path,
                ],
                at: identityTestTime)
            #expect(outcome.exitCode == 0, "\(outcome.standardError)")
            #expect(outcome.standardOutput.contains("CN=root.linkerd.cluster.local"))
            #expect(outcome.standardOutput.contains("(3650 days)"))

            let anchor = try certificate(at: directory.appendingPathComponent("ca.crt"))
            #expect(anchor.subject.description == "CN=root.linkerd.cluster.local")
            #expect(anchor.issuer == anchor.subject)
            #expect(anchor.signatureAlgorithm == .ecdsaWithSHA256)
            #expect(P256.Signing.PublicKey(anchor.publicKey) != nil)
            #expect(anchor.publicKey.isValidSignature(anchor.signature, for: anchor))
            #expect(try anchor.extensions.basicConstraints == .isCertificateAuthority(maxPathLength: 1))
            #expect(try anchor.extensions.keyUsage == KeyUsage(keyCertSign: true, cRLSign: true))
            #expect(anchor.extensions.first { $0.oid == .X509ExtensionID.basicConstraints }?.critical == true)
            #expect(
                try anchor.extensions.subjectKeyIdentifier == SubjectKeyIdentifier(hash: anchor.publicKey))
            #expect(anchor.notValidAfter == identityTestTime + 87_600 * 3_600)
            #expect(anchor.notValidBefore < identityTestTime)

            let keyText = try String(contentsOf: directory.appendingPathComponent("ca.key"), encoding: .utf8)
            #expect(keyText.hasPrefix("-----BEGIN PRIVATE KEY-----\n"))
            let key = try P256.Signing.PrivateKey(pemRepresentation: keyText)
            #expect(Certificate.PublicKey(key.publicKey) == anchor.publicKey)
            #expect(try permissions(of: directory.appendingPathComponent("ca.key")) == 0o600)
            #expect(try permissions(of: directory.appendingPathComponent("ca.crt")) == 0o644)
            #expect(try contents(of: directory) == ["ca.crt", "ca.key"])
        }
    }

    @Test("create-issuer writes an intermediate (path length 0, AKI = anchor SKI) that swift-certificates verifies")
    func issuerVerifies() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("linkerd-cli-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let (anchorOutcome, issuerOutcome) = try createAnchorAndIssuer(in: directory, at: identityTestTime)
        #expect(anchorOutcome.exitCode == 0, "\(anchorOutcome.standardError)")
        #expect(issuerOutcome.exitCode == 0, "\(issuerOutcome.standardError)")
        #expect(issuerOutcome.standardError == "")
        #expect(issuerOutcome.standardOutput.contains("(365 days)"))
        // Both secret layouts are documented.
        #expect(issuerOutcome.standardOutput.contains("--from-file=crt.pem="))
        #expect(issuerOutcome.standardOutput.contains("--from-file=key.pem="))
        #expect(issuerOutcome.standardOutput.contains("--type=kubernetes.io/tls --from-file=tls.crt="))
        #expect(issuerOutcome.standardOutput.contains("--from-file=ca.crt="))

        let anchor = try certificate(at: directory.appendingPathComponent("ca.crt"))
        let issuer = try certificate(at: directory.appendingPathComponent("issuer.crt"))
        #expect(issuer.subject.description == "CN=identity.linkerd.cluster.local")
        #expect(issuer.issuer == anchor.subject)
        #expect(issuer.signatureAlgorithm == .ecdsaWithSHA256)
        #expect(P256.Signing.PublicKey(issuer.publicKey) != nil)
        #expect(try issuer.extensions.basicConstraints == .isCertificateAuthority(maxPathLength: 0))
        #expect(try issuer.extensions.keyUsage == KeyUsage(keyCertSign: true, cRLSign: true))
        #expect(try issuer.extensions.subjectKeyIdentifier == SubjectKeyIdentifier(hash: issuer.publicKey))
        #expect(
            try issuer.extensions.authorityKeyIdentifier?.keyIdentifier
                == anchor.extensions.subjectKeyIdentifier?.keyIdentifier)
        #expect(issuer.notValidAfter == identityTestTime + 8_760 * 3_600)
        #expect(issuer.serialNumber != anchor.serialNumber)
        let issuerKey = try P256.Signing.PrivateKey(
            pemRepresentation: String(contentsOf: directory.appendingPathComponent("issuer.key"), encoding: .utf8))
        #expect(Certificate.PublicKey(issuerKey.publicKey) == issuer.publicKey)
        #expect(try permissions(of: directory.appendingPathComponent("issuer.key")) == 0o600)

        var verifier = Verifier(rootCertificates: CertificateStore([anchor])) {
            RFC5280Policy(fixedExpiryValidationTime: identityTestTime + 86_400)
        }
        guard
            case .validCertificate(let chain) = await verifier.validate(leaf: issuer, intermediates: CertificateStore())
        else {
            Issue.record("the issuer does not verify against the trust anchor")
            return
        }
        #expect(Array(chain) == [issuer, anchor])

        // The control: another anchor does not verify it.
        let other = try createOtherAnchor(in: directory)
        var otherVerifier = Verifier(rootCertificates: CertificateStore([other])) {
            RFC5280Policy(fixedExpiryValidationTime: identityTestTime + 86_400)
        }
        guard case .couldNotValidate = await otherVerifier.validate(leaf: issuer, intermediates: CertificateStore())
        else {
            Issue.record("the issuer verifies against an unrelated anchor")
            return
        }
    }

    private func createOtherAnchor(in directory: URL) throws -> Certificate {
        let outcome = linkerd(
            [
                "identity", "create-trust-anchor", "--cert-out", directory.appendingPathComponent("other.crt").path,
                "--key-out", directory.appendingPathComponent("other.key").path,
            ],
            at: identityTestTime)
        #expect(outcome.exitCode == 0, "\(outcome.standardError)")
        return try certificate(at: directory.appendingPathComponent("other.crt"))
    }

    @Test("OpenSSL verifies the issuer against the anchor, reads the keys, and shows CA:TRUE and the names")
    func openSSLAgrees() throws {
        try withTemporaryDirectory { directory in
            // OpenSSL checks validity against the real clock, so these certificates are created now.
            let (anchorOutcome, issuerOutcome) = try createAnchorAndIssuer(
                in: directory, at: Date(), anchorArguments: ["--trust-domain", "example.org"],
                issuerArguments: ["--trust-domain", "example.org"])
            #expect(anchorOutcome.exitCode == 0, "\(anchorOutcome.standardError)")
            #expect(issuerOutcome.exitCode == 0, "\(issuerOutcome.standardError)")

            let verify = try openssl(["verify", "-CAfile", "ca.crt", "issuer.crt"], in: directory)
            #expect(verify.status == 0, "\(verify.output)")
            #expect(verify.output.trimmingCharacters(in: .whitespacesAndNewlines) == "issuer.crt: OK")
            // The control: the issuer is not its own trust anchor.
            let wrong = try openssl(["verify", "-CAfile", "issuer.crt", "issuer.crt"], in: directory)
            #expect(wrong.status != 0)

            let anchorText = try openssl(["x509", "-in", "ca.crt", "-noout", "-text"], in: directory)
            #expect(anchorText.status == 0, "\(anchorText.output)")
            #expect(anchorText.output.contains("CA:TRUE, pathlen:1"))
            #expect(anchorText.output.contains("Subject: CN = root.linkerd.example.org"))
            #expect(anchorText.output.contains("Certificate Sign, CRL Sign"))
            #expect(anchorText.output.contains("NIST CURVE: P-256"))

            let issuerText = try openssl(["x509", "-in", "issuer.crt", "-noout", "-text"], in: directory)
            #expect(issuerText.output.contains("CA:TRUE, pathlen:0"))
            #expect(issuerText.output.contains("Issuer: CN = root.linkerd.example.org"))
            #expect(issuerText.output.contains("Subject: CN = identity.linkerd.example.org"))
            #expect(issuerText.output.contains("Signature Algorithm: ecdsa-with-SHA256"))
            #expect(issuerText.output.contains("X509v3 Authority Key Identifier"))

            for key in ["ca.key", "issuer.key"] {
                let check = try openssl(["pkey", "-in", key, "-noout", "-check"], in: directory)
                #expect(check.status == 0, "\(key): \(check.output)")
            }
            // The key belongs to the certificate: OpenSSL derives the same public key from both.
            let fromKey = try openssl(["pkey", "-in", "issuer.key", "-pubout"], in: directory)
            let fromCertificate = try openssl(["x509", "-in", "issuer.crt", "-noout", "-pubkey"], in: directory)
            #expect(fromKey.output == fromCertificate.output)

            // inspect prints the fingerprint OpenSSL computes.
            let fingerprint = try openssl(
                ["x509", "-in", "issuer.crt", "-noout", "-fingerprint", "-sha256"], in: directory)
            let expected = fingerprint.output.components(separatedBy: "=").last?.trimmingCharacters(
                in: .whitespacesAndNewlines)
            let inspection = linkerd(["identity", "inspect", directory.appendingPathComponent("issuer.crt").path])
            #expect(inspection.exitCode == 0, "\(inspection.standardError)")
            #expect(expected.map { inspection.standardOutput.contains("SHA-256 fingerprint: \($0)") } == true)
        }
    }

    @Test("inspect describes a bundle: names, key, CA, usages, validity, days left and the chain")
    func inspectBundle() throws {
        try withTemporaryDirectory { directory in
            try createAnchorAndIssuer(in: directory, at: identityTestTime)
            let bundle =
                try String(contentsOf: directory.appendingPathComponent("issuer.crt"), encoding: .utf8)
                + String(contentsOf: directory.appendingPathComponent("ca.crt"), encoding: .utf8)
            let later = identityTestTime + 10 * 86_400
            let outcome = linkerd(["identity", "inspect", "-"], at: later, standardInput: bundle)
            #expect(outcome.exitCode == 0, "\(outcome.standardError)")
            let text = outcome.standardOutput
            #expect(text.hasPrefix("stdin: 2 certificates\n\n[1] CN=identity.linkerd.cluster.local\n"))
            for line in [
                "  Subject:             CN=identity.linkerd.cluster.local",
                "  Issuer:              CN=root.linkerd.cluster.local",
                "  SANs:                none",
                "  Public key:          ECDSA P-256",
                "  Signature:           ecdsaWithSHA256",
                "  CA:                  yes, path length 0",
                "  Key usage:           keyCertSign, cRLSign",
                "  Not after:           2026-06-15T16:26:40Z",
                "  Days left:           355",
                "  Signed by next:      yes (certificate 2)",
                "[2] CN=root.linkerd.cluster.local",
                "  CA:                  yes, path length 1",
                "  Not after:           2035-06-13T16:26:40Z",
                "  Days left:           3640",
                "  Signed:              self-signed (last in the bundle)",
            ] {
                #expect(text.contains(line + "\n"), "missing \(line.debugDescription) in:\n\(text)")
            }
            #expect(!text.contains("Warning"))

            // In the wrong order, the chain check says why.
            let reversed =
                try String(contentsOf: directory.appendingPathComponent("ca.crt"), encoding: .utf8)
                + String(contentsOf: directory.appendingPathComponent("issuer.crt"), encoding: .utf8)
            let swapped = linkerd(["identity", "inspect", "-"], at: later, standardInput: reversed)
            #expect(
                swapped.standardOutput.contains(
                    "  Signed by next:      NO: its issuer is \"CN=root.linkerd.cluster.local\", the next certificate "
                        + "is \"CN=identity.linkerd.cluster.local\"\n"))
            #expect(swapped.standardOutput.contains("  Signed:              by a certificate not in the bundle"))
        }
    }

    @Test("inspect -o json: one object per file with the same facts, files in argument order")
    func inspectJSON() throws {
        try withTemporaryDirectory { directory in
            try createAnchorAndIssuer(in: directory, at: identityTestTime)
            let anchorPath = directory.appendingPathComponent("ca.crt").path
            let issuerPath = directory.appendingPathComponent("issuer.crt").path
            let outcome = linkerd(["identity", "inspect", "-o", "json", issuerPath, anchorPath], at: identityTestTime)
            #expect(outcome.exitCode == 0, "\(outcome.standardError)")
            let bundles = try #require(
                JSONSerialization.jsonObject(with: Data(outcome.standardOutput.utf8)) as? [[String: Any]])
            #expect(bundles.map { $0["source"] as? String } == [issuerPath, anchorPath])
            let issuer = try #require((bundles[0]["certificates"] as? [[String: Any]])?.first)
            #expect(issuer["subject"] as? String == "CN=identity.linkerd.cluster.local")
            #expect(issuer["isCertificateAuthority"] as? Bool == true)
            #expect(issuer["pathLength"] as? Int == 0)
            #expect(issuer["daysLeft"] as? Int == 365)
            #expect(issuer["status"] as? String == "valid")
            #expect(issuer["warning"] == nil)
            #expect(issuer["keyUsage"] as? [String] == ["keyCertSign", "cRLSign"])
            #expect(issuer["extendedKeyUsage"] as? [String] == [])
            #expect(issuer["publicKey"] as? String == "ECDSA P-256")
            // Alone in its file, the issuer is signed by a certificate the file does not hold.
            #expect(issuer["chain"] as? String == "last")
            #expect((issuer["sha256Fingerprint"] as? String)?.count == 32 * 3 - 1)
            let anchor = try #require((bundles[1]["certificates"] as? [[String: Any]])?.first)
            #expect(anchor["chain"] as? String == "self-signed")
            #expect(anchor["daysLeft"] as? Int == 3650)
        }
    }

    @Test("inspect counts days from the injected time: < 60 days warns, after the end EXPIRED, before the start")
    func inspectWarnings() throws {
        try withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("ca.crt").path
            let created = linkerd(
                [
                    "identity", "create-trust-anchor", "--validity", "720h", "--cert-out", path,
                    "--key-out", directory.appendingPathComponent("ca.key").path,
                ],
                at: identityTestTime)
            #expect(created.exitCode == 0, "\(created.standardError)")

            let soon = linkerd(["identity", "inspect", path], at: identityTestTime)
            #expect(soon.standardOutput.contains("  Days left:           30\n"))
            #expect(
                soon.standardOutput.contains(
                    "  Warning:             expires in < 60 days (on 2025-07-15T16:26:40Z); linkerd check warns "
                        + "from 60 days before expiry\n"))

            let expired = linkerd(["identity", "inspect", path], at: identityTestTime + 31 * 86_400 + 60)
            #expect(expired.exitCode == 0)
            #expect(expired.standardOutput.contains("  Days left:           -2\n"))
            #expect(
                expired.standardOutput.contains("  Warning:             EXPIRED on 2025-07-15T16:26:40Z, 1 day ago\n"))
            let json = linkerd(["identity", "inspect", "-o", "json", path], at: identityTestTime + 31 * 86_400 + 60)
            #expect(json.standardOutput.contains("\"status\" : \"expired\""))
            #expect(json.standardOutput.contains("\"daysLeft\" : -2"))

            let early = linkerd(["identity", "inspect", path], at: identityTestTime - 86_400)
            #expect(
                early.standardOutput.contains("  Warning:             NOT YET VALID: valid from 2025-06-15T16:21:40Z\n")
            )

            // 61 days left: no warning.
            let long = directory.appendingPathComponent("long.crt").path
            _ = linkerd(
                [
                    "identity", "create-trust-anchor", "--validity", "1464h", "--cert-out", long,
                    "--key-out", directory.appendingPathComponent("long.key").path,
                ],
                at: identityTestTime)
            let fine = linkerd(["identity", "inspect", long], at: identityTestTime)
            #expect(fine.standardOutput.contains("  Days left:           61\n"))
            #expect(!fine.standardOutput.contains("Warning"))
        }
    }

    @Test("inspect reads certificates made elsewhere: SANs of every kind, RSA keys, EKUs, a 10-day OpenSSL cert warns")
    func inspectForeignCertificates() throws {
        try withTemporaryDirectory { directory in
            let ec = try openssl(
                [
                    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", "web.key", "-out", "web.crt", "-subj", "/CN=web", "-days", "10",
                    "-addext", "subjectAltName=DNS:web.example,IP:10.1.2.3,IP:::1,URI:spiffe://cluster.local/ns/a/sa/b",
                    "-addext", "extendedKeyUsage=serverAuth,clientAuth",
                ],
                in: directory)
            #expect(ec.status == 0, "\(ec.output)")
            let web = linkerd(["identity", "inspect", directory.appendingPathComponent("web.crt").path])
            #expect(web.exitCode == 0, "\(web.standardError)")
            #expect(
                web.standardOutput.contains(
                    "  SANs:                DNS:web.example, IP:10.1.2.3, IP:::1, URI:spiffe://cluster.local/ns/a/sa/b\n"
                ))
            #expect(web.standardOutput.contains("  Extended key usage:  serverAuth, clientAuth\n"))
            #expect(web.standardOutput.contains("  Days left:           9\n"))
            #expect(web.standardOutput.contains("  Warning:             expires in < 60 days"))

            let rsa = try openssl(
                [
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "rsa.key", "-out", "rsa.crt",
                    "-subj", "/O=Example/CN=rsa root", "-days", "400",
                ],
                in: directory)
            #expect(rsa.status == 0, "\(rsa.output)")
            let inspected = linkerd(["identity", "inspect", directory.appendingPathComponent("rsa.crt").path])
            #expect(inspected.standardOutput.contains("  Public key:          RSA 2048\n"))
            #expect(inspected.standardOutput.contains("  Signature:           sha256WithRSAEncryption\n"))
            #expect(inspected.standardOutput.contains("  Subject:             CN=rsa root,O=Example\n"))
        }
    }

    @Test("Options: trust domain, common names, validity; --force replaces existing files")
    func options() throws {
        try withTemporaryDirectory { directory in
            let (anchorOutcome, issuerOutcome) = try createAnchorAndIssuer(
                in: directory, at: identityTestTime,
                anchorArguments: ["--common-name", "My Root CA", "--validity", "48h"],
                issuerArguments: ["--trust-domain", "mesh.example.com", "--validity", "24h"])
            #expect(anchorOutcome.exitCode == 0, "\(anchorOutcome.standardError)")
            #expect(issuerOutcome.exitCode == 0, "\(issuerOutcome.standardError)")
            let anchor = try certificate(at: directory.appendingPathComponent("ca.crt"))
            let issuer = try certificate(at: directory.appendingPathComponent("issuer.crt"))
            #expect(anchor.subject.description == "CN=My Root CA")
            #expect(issuer.subject.description == "CN=identity.linkerd.mesh.example.com")
            #expect(anchor.notValidAfter == identityTestTime + 48 * 3_600)
            #expect(issuer.notValidAfter == identityTestTime + 24 * 3_600)

            let oldIssuer = issuer
            let replaced = linkerd(
                [
                    "identity", "create-issuer", "--force",
                    "--ca-cert", directory.appendingPathComponent("ca.crt").path,
                    "--ca-key", directory.appendingPathComponent("ca.key").path,
                    "--cert-out", directory.appendingPathComponent("issuer.crt").path,
                    "--key-out", directory.appendingPathComponent("issuer.key").path,
                ],
                at: identityTestTime)
            #expect(replaced.exitCode == 0, "\(replaced.standardError)")
            // The default year is cut to the anchor's 48 hours, with a warning.
            #expect(
                replaced.standardError
                    == "warning: the validity is cut to the trust anchor's, which ends 2025-06-17T16:26:40Z\n")
            let newIssuer = try certificate(at: directory.appendingPathComponent("issuer.crt"))
            #expect(newIssuer != oldIssuer)
            #expect(newIssuer.notValidAfter == anchor.notValidAfter)
            #expect(try permissions(of: directory.appendingPathComponent("issuer.key")) == 0o600)
            #expect(try contents(of: directory) == ["ca.crt", "ca.key", "issuer.crt", "issuer.key"])
        }
    }

    @Test("The identity group lists its subcommands; the executable prints a subcommand's help and runs it")
    func helpAndExecutable() throws {
        let group = linkerd(["identity"])
        #expect(group.exitCode == 0)
        for name in ["create-trust-anchor", "create-issuer", "inspect"] {
            #expect(group.standardOutput.contains(name))
        }
        #expect(linkerd(["--help"]).standardOutput.contains("identity"))

        // A subcommand's --help is printed by ArgumentParser's own help command, which runs only in the executable.
        let help = try ExecutableTests.run(["identity", "create-issuer", "--help"], input: "")
        #expect(help.status == 0)
        // The help is wrapped to the terminal's width: compare it with single spaces.
        let text = help.stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        #expect(text.contains("crt.pem and key.pem (linkerd.io/tls)"))
        #expect(text.contains("tls.crt, tls.key and ca.crt (kubernetes.io/tls)"))

        let pem = try withTemporaryDirectory { directory in
            try createAnchorAndIssuer(in: directory, at: Date())
            return try String(contentsOf: directory.appendingPathComponent("issuer.crt"), encoding: .utf8)
        }
        let inspected = try ExecutableTests.run(["identity", "inspect", "-o", "json", "-"], input: pem)
        #expect(inspected.status == 0, "\(inspected.stderr)")
        #expect(inspected.stdout.contains("\"subject\" : \"CN=identity.linkerd.cluster.local\""))
        let failed = try ExecutableTests.run(["identity", "inspect", "-"], input: "junk")
        #expect(failed.status == 1)
        #expect(failed.stderr.hasPrefix("Error: stdin: not PEM"))
    }
}
