import Crypto
import Foundation
import LinkerdController
import Testing
import X509

@Suite("WebhookCertificateAuthority")
struct CertificateAuthorityTests {
    let authority = WebhookCertificateAuthority(namespace: "linkerd")
    let start = Date(timeIntervalSince1970: 1_700_000_000)
    let day: TimeInterval = 86_400

    @Test("issues a P-256 CA for 365 days and a serverAuth leaf for 90 days naming the injector Service")
    func issue() throws {
        let bundle = try authority.issue(now: start)
        let ca = bundle.caCertificate
        let leaf = bundle.leafCertificate

        #expect(ca.subject == ca.issuer)
        #expect(ca.subject.description == "CN=linkerd-proxy-injector.linkerd.svc-ca")
        #expect(try ca.extensions.basicConstraints == .isCertificateAuthority(maxPathLength: 0))
        #expect(try ca.extensions.keyUsage?.keyCertSign == true)
        #expect(ca.notValidAfter == start.addingTimeInterval(365 * day))
        #expect(ca.notValidBefore <= start)
        #expect(ca.signatureAlgorithm == .ecdsaWithSHA256)
        #expect(P256.Signing.PublicKey(ca.publicKey) != nil, "an ECDSA P-256 key")
        #expect(P256.Signing.PublicKey(leaf.publicKey) != nil)
        #expect(ca.publicKey.isValidSignature(ca.signature, for: ca), "self-signed")

        #expect(isSigned(leaf, by: ca))
        #expect(try leaf.extensions.basicConstraints == .notCertificateAuthority)
        #expect(try leaf.extensions.extendedKeyUsage.map(Array.init) == [.serverAuth])
        #expect(
            try dnsNames(of: leaf) == [
                "linkerd-proxy-injector.linkerd.svc", "linkerd-proxy-injector.linkerd.svc.cluster.local",
                "linkerd-proxy-injector.linkerd",
            ])
        #expect(leaf.notValidAfter == start.addingTimeInterval(90 * day))
        #expect(bundle.leafPrivateKey.publicKey == leaf.publicKey)

        let other = try authority.issue(now: start)
        #expect(other.caCertificate.serialNumber != ca.serialNumber, "serial numbers are random")
        #expect(other.leafCertificate.serialNumber != leaf.serialNumber)
    }

    @Test("a fresh bundle is current, survives a round trip through Secret data, and is due at two thirds")
    func lifecycle() throws {
        let bundle = try authority.issue(now: start)
        let data = try bundle.secretData
        #expect(Set(data.keys) == ["tls.crt", "tls.key", "ca.crt", "ca.key"])
        #expect(try WebhookCertificateBundle(secretData: data) == bundle)

        guard case .current(let current) = authority.assess(secretData: data, now: start) else {
            Issue.record("a fresh bundle should be current")
            return
        }
        #expect(current == bundle)
        // 90 days with 5 minutes of backdating: due when less than a third of that remains.
        let due = authority.renewalDate(of: bundle)
        #expect(abs(due.timeIntervalSince(start) - (60 * day - 100)) < 1)
        guard case .current = authority.assess(secretData: data, now: due.addingTimeInterval(-1)) else {
            Issue.record("not due a second before the renewal date")
            return
        }
        guard case .renewLeaf(_, .leafExpiring) = authority.assess(secretData: data, now: due.addingTimeInterval(1))
        else {
            Issue.record("due a second after the renewal date")
            return
        }
    }

    @Test("a renewed leaf keeps the CA; a rotated CA keeps the old one trusted until it expires")
    func renewal() throws {
        let original = try authority.issue(now: start)
        let later = start.addingTimeInterval(61 * day)
        let renewed = try authority.resolve(
            authority.assess(secretData: try original.secretData, now: later), now: later)
        #expect(renewed.caCertificate == original.caCertificate)
        #expect(renewed.leafCertificate != original.leafCertificate)
        #expect(isSigned(renewed.leafCertificate, by: original.caCertificate))
        #expect(renewed.leafCertificate.notValidAfter == later.addingTimeInterval(90 * day))

        // 340 days in: the CA has 25 days left.
        let late = start.addingTimeInterval(340 * day)
        let assessment = authority.assess(secretData: try renewed.secretData, now: late)
        guard case .rotateAuthority(_, .authorityExpiring) = assessment else {
            Issue.record("expected a CA rotation, got \(assessment)")
            return
        }
        let rotated = try authority.resolve(assessment, now: late)
        #expect(rotated.caCertificate != original.caCertificate)
        #expect(rotated.previousCACertificates == [original.caCertificate])
        #expect(isSigned(rotated.leafCertificate, by: rotated.caCertificate))
        #expect(try certificates(inPEM: rotated.caBundlePEM) == [rotated.caCertificate, original.caCertificate])

        // Once the old CA has expired it leaves the bundle.
        let afterExpiry = start.addingTimeInterval(366 * day)
        guard case .current(let pruned) = authority.assess(secretData: try rotated.secretData, now: afterExpiry) else {
            Issue.record("expected the rotated bundle to be current")
            return
        }
        #expect(pruned.previousCACertificates.isEmpty)
        #expect(pruned.caCertificate == rotated.caCertificate)
    }

    @Test("a leaf never outlives its CA")
    func clampedLeaf() throws {
        let (ca, caKey) = try authority.issueAuthority(now: start)
        let late = start.addingTimeInterval(330 * day)
        let (leaf, _) = try authority.issueLeaf(ca: ca, caKey: caKey, now: late)
        #expect(leaf.notValidAfter == ca.notValidAfter)
    }

    @Test("missing, unparseable and inconsistent material is replaced, with the reason")
    func invalid() throws {
        let bundle = try authority.issue(now: start)
        let data = try bundle.secretData
        let other = try authority.issue(now: start)
        let otherData = try other.secretData
        let otherLeafKey = try #require(otherData["tls.key"])
        let otherLeaf = try #require(otherData["tls.crt"])
        let otherCAKey = try #require(otherData["ca.key"])
        let elsewhere = try WebhookCertificateAuthority(namespace: "other").issue(now: start)

        let cases: [(String, [String: String]?, String)] = [
            ("no Secret", nil, "the Secret does not exist"),
            ("no tls.key", data.filter { $0.key != "tls.key" }, "key tls.key is missing"),
            ("not base64", data.merging(["tls.crt": "%%%"]) { $1 }, "key tls.crt is not base64-encoded UTF-8 text"),
            ("garbage PEM", data.merging(["ca.crt": base64("hello")]) { $1 }, "key ca.crt does not hold valid PEM"),
            (
                "leaf key of another pair", data.merging(["tls.key": otherLeafKey]) { $1 },
                "tls.key does not match tls.crt"
            ),
            ("CA key of another pair", data.merging(["ca.key": otherCAKey]) { $1 }, "ca.key does not match"),
            (
                "leaf of another CA", data.merging(["tls.crt": otherLeaf, "tls.key": otherLeafKey]) { $1 },
                "tls.crt is not signed by the CA in ca.crt"
            ),
            ("another namespace", try elsewhere.secretData, "tls.crt names"),
            ("from the future", data, "is not valid before"),
        ]
        for (name, secretData, expected) in cases {
            let now = name == "from the future" ? start.addingTimeInterval(-day) : start
            let assessment = authority.assess(secretData: secretData, now: now)
            guard case .replace(let reason, _) = assessment else {
                Issue.record("\(name): expected replacement, got \(assessment)")
                continue
            }
            #expect(reason.description.contains(expected), "\(name): \(reason)")
            let replacement = try authority.resolve(assessment, now: now)
            // The old CA stays trusted when `ca.crt` still parses: other replicas may serve its leaf a while.
            let kept: [Certificate] =
                switch name {
                case "no Secret", "garbage PEM": []
                case "another namespace": [elsewhere.caCertificate]
                default: [bundle.caCertificate]
                }
            #expect(replacement.previousCACertificates == kept, "\(name)")
            #expect(replacement.caCertificate != bundle.caCertificate, "\(name)")
            guard case .current = authority.assess(secretData: try replacement.secretData, now: now) else {
                Issue.record("\(name): the replacement should be current")
                continue
            }
        }
    }

    @Test("a replacement keeps the old CAs that are unexpired, and only those")
    func replacementKeepsUnexpiredAuthorities() throws {
        let old = try authority.issue(now: start)
        let older = try authority.issue(now: start.addingTimeInterval(-300 * day))  // Expires at start + 65 days.
        var stale = old
        stale.previousCACertificates = [older.caCertificate]
        let otherLeafKey = try #require(try authority.issue(now: start).secretData["tls.key"])
        let broken = try stale.secretData.merging(["tls.key": otherLeafKey]) { $1 }

        let now = start.addingTimeInterval(30 * day)
        let early = authority.assess(secretData: broken, now: now)
        let replaced = try authority.resolve(early, now: now)
        #expect(replaced.previousCACertificates == [old.caCertificate, older.caCertificate])
        #expect(try replaced.caBundlePEM.hasSuffix(try stale.caBundlePEM), "ca.crt is the new CA, then the old ones")

        let later = start.addingTimeInterval(100 * day)
        let dropped = try authority.resolve(authority.assess(secretData: broken, now: later), now: later)
        #expect(dropped.previousCACertificates == [old.caCertificate], "the expired CA is dropped")

        // A `ca.crt` holding something that is not a CA keeps nothing.
        let leafAsCA = try broken.merging(["ca.crt": Data(try old.certificatePEM.utf8).base64EncodedString()]) { $1 }
        let cleared = try authority.resolve(authority.assess(secretData: leafAsCA, now: now), now: now)
        #expect(cleared.previousCACertificates.isEmpty)
    }
}
