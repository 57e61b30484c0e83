import Crypto
import Foundation
import LinkerdCore
import SwiftASN1
import X509

/// The proxy injector's own certificate authority for its webhook serving certificate, used when no certificate is
/// mounted (neither Helm nor cert-manager provided one).
///
/// Everything here is a function of its inputs and the `now` it is given; the only randomness is key generation and
/// serial numbers, inside `issue`. The Secret layout it reads and writes (`kubernetes.io/tls`):
///
/// - `tls.crt`: the serving leaf (PEM), `tls.key`: its key (PKCS#8 PEM) — what the webhook server serves.
/// - `ca.crt`: the current CA first, then earlier CAs that have not expired yet — what goes into the webhook
///   configuration's `caBundle`.
/// - `ca.key`: the current CA's key. Keeping it lets a leaf be renewed under the same CA, so routine renewals never
///   touch the `caBundle` and never race the API server picking it up. It widens nothing: whoever can read this
///   Secret can already read `tls.key` and impersonate the webhook, and the CA is trusted only by this webhook's
///   `caBundle`.
///
/// Lifetimes: the CA lives `caValidity` (365 days) and is replaced, with a new leaf, when less than
/// `caRenewalMargin` (30 days) remains; the leaf lives `leafValidity` (90 days, never past its CA) and is renewed
/// when less than a third of its lifetime remains. When the CA is replaced, the old one stays in `ca.crt` until it
/// expires (so at least as long as any leaf it signed), so replicas still serving the old leaf stay trusted until
/// they load the new one. Material that is missing, unparseable or inconsistent is replaced with a new CA and leaf;
/// the CAs of the old `ca.crt` that still parse, are CAs and have not expired stay after the new one (they were the
/// `caBundle` already, so nothing new is trusted), because other replicas may serve the old leaf until their next
/// reconcile. When `ca.crt` itself cannot be parsed, nothing of it is kept.
public struct WebhookCertificateAuthority: Sendable {
    /// Secret keys of the layout above.
    public static let certificateKey = "tls.crt"
    public static let privateKeyKey = "tls.key"
    public static let caCertificateKey = "ca.crt"
    public static let caPrivateKeyKey = "ca.key"
    /// The Secret type the layout lives in.
    public static let secretType = "kubernetes.io/tls"

    /// The namespace of the injector's Service (the control-plane namespace).
    public var namespace: String
    /// The injector's Service name.
    public var serviceName: String
    /// The cluster's DNS domain, for the fully qualified name.
    public var clusterDomain: String
    public var caValidity: Duration
    public var leafValidity: Duration
    /// The CA is replaced when less than this remains of it.
    public var caRenewalMargin: Duration
    /// How far back `notValidBefore` is set, to tolerate clocks behind ours.
    public var backdating: Duration

    public init(
        namespace: String,
        serviceName: String = "linkerd-proxy-injector",
        clusterDomain: String = "cluster.local",
        caValidity: Duration = .seconds(365 * 86_400),
        leafValidity: Duration = .seconds(90 * 86_400),
        caRenewalMargin: Duration = .seconds(30 * 86_400),
        backdating: Duration = .seconds(300)
    ) {
        self.namespace = namespace
        self.serviceName = serviceName
        self.clusterDomain = clusterDomain
        self.caValidity = caValidity
        self.leafValidity = leafValidity
        self.caRenewalMargin = caRenewalMargin
        self.backdating = backdating
    }

    /// The names the API server may use for the Service: `<svc>.<ns>.svc`, `<svc>.<ns>.svc.<domain>`, `<svc>.<ns>`.
    public var dnsNames: [String] {
        let service = "\(serviceName).\(namespace)"
        return ["\(service).svc", "\(service).svc.\(clusterDomain)", service]
    }

    /// The CA's common name, `<svc>.<ns>.svc-ca`.
    public var caCommonName: String {
        "\(serviceName).\(namespace).svc-ca"
    }

    // MARK: - Deciding

    /// Judges a Secret's `data` (base64 values, as on the wire; nil when there is no Secret) at `now`.
    public func assess(secretData: [String: String]?, now: Date) -> WebhookCertificateAssessment {
        guard let secretData else { return .replace(reason: .missing, keeping: []) }
        let bundle: WebhookCertificateBundle
        do {
            bundle = try WebhookCertificateBundle(secretData: secretData)
        } catch {
            return .replace(
                reason: .invalid(error.description), keeping: Self.trustedAuthorities(in: secretData, now: now))
        }
        if let problem = inconsistency(of: bundle, now: now) {
            return .replace(reason: .invalid(problem), keeping: Self.trustedAuthorities(in: secretData, now: now))
        }
        let caRemaining = bundle.caCertificate.notValidAfter.timeIntervalSince(now)
        if caRemaining < caRenewalMargin.inSeconds {
            return .rotateAuthority(bundle, reason: .authorityExpiring(remaining: caRemaining))
        }
        let leafRemaining = bundle.leafCertificate.notValidAfter.timeIntervalSince(now)
        if leafRemaining < Self.lifetime(of: bundle.leafCertificate) / 3 {
            return .renewLeaf(bundle, reason: .leafExpiring(remaining: leafRemaining))
        }
        var current = bundle
        current.previousCACertificates = Self.stillValid(bundle.previousCACertificates, now: now)
        return .current(current)
    }

    /// When `bundle`, valid now, becomes due: the earlier of the leaf's two-thirds point and the CA's margin.
    public func renewalDate(of bundle: WebhookCertificateBundle) -> Date {
        let leaf = bundle.leafCertificate
        let leafDue = leaf.notValidAfter.addingTimeInterval(-Self.lifetime(of: leaf) / 3)
        let caDue = bundle.caCertificate.notValidAfter.addingTimeInterval(-caRenewalMargin.inSeconds)
        return min(leafDue, caDue)
    }

    /// Why a parsed bundle cannot be used as it is, or nil when it can.
    private func inconsistency(of bundle: WebhookCertificateBundle, now: Date) -> String? {
        let ca = bundle.caCertificate
        let leaf = bundle.leafCertificate
        guard bundle.caPrivateKey.publicKey == ca.publicKey else {
            return "\(Self.caPrivateKeyKey) does not match the first certificate of \(Self.caCertificateKey)"
        }
        guard bundle.leafPrivateKey.publicKey == leaf.publicKey else {
            return "\(Self.privateKeyKey) does not match \(Self.certificateKey)"
        }
        guard case .isCertificateAuthority = try? ca.extensions.basicConstraints else {
            return "the first certificate of \(Self.caCertificateKey) is not a CA"
        }
        guard leaf.issuer == ca.subject, ca.publicKey.isValidSignature(leaf.signature, for: leaf) else {
            return "\(Self.certificateKey) is not signed by the CA in \(Self.caCertificateKey)"
        }
        let names = Set(((try? leaf.extensions.subjectAlternativeNames) ?? nil)?.compactMap(Self.dnsName) ?? [])
        guard names == Set(dnsNames) else {
            return "\(Self.certificateKey) names \(names.sorted()), expected \(dnsNames)"
        }
        // Expiry is not an inconsistency: an expired leaf is renewed under its CA, an expired CA rotated. A
        // certificate from the future (our clock went back, or someone else's was ahead) cannot be served.
        for (key, certificate) in [(Self.caCertificateKey, ca), (Self.certificateKey, leaf)]
        where certificate.notValidBefore > now {
            return "\(key) is not valid before \(certificate.notValidBefore), after now (\(now))"
        }
        return nil
    }

    private static func dnsName(_ name: GeneralName) -> String? {
        if case .dnsName(let value) = name { value } else { nil }
    }

    private static func lifetime(of certificate: Certificate) -> TimeInterval {
        certificate.notValidAfter.timeIntervalSince(certificate.notValidBefore)
    }

    private static func stillValid(_ certificates: [Certificate], now: Date) -> [Certificate] {
        certificates.filter { $0.notValidAfter > now }
    }

    /// The CA certificates of `ca.crt` still worth trusting through a replacement: those not expired at `now`;
    /// none when `ca.crt` does not parse or holds a certificate that is not a CA.
    private static func trustedAuthorities(in secretData: [String: String], now: Date) -> [Certificate] {
        guard let certificates = try? WebhookCertificateBundle.certificates(secretData, caCertificateKey) else {
            return []
        }
        let allAuthorities = certificates.allSatisfy { certificate in
            if case .isCertificateAuthority = try? certificate.extensions.basicConstraints { true } else { false }
        }
        return allAuthorities ? stillValid(certificates, now: now) : []
    }

    // MARK: - Issuing

    /// The bundle the Secret should hold after acting on `assessment`: the bundle itself when current, otherwise
    /// newly issued material (see the type's documentation for what is kept).
    ///
    /// - Throws: only if certificate construction fails, which valid inputs never cause.
    public func resolve(_ assessment: WebhookCertificateAssessment, now: Date) throws -> WebhookCertificateBundle {
        switch assessment {
        case .current(let bundle):
            return bundle
        case .renewLeaf(let bundle, _):
            let (leaf, leafKey) = try issueLeaf(ca: bundle.caCertificate, caKey: bundle.caPrivateKey, now: now)
            var renewed = bundle
            renewed.leafCertificate = leaf
            renewed.leafPrivateKey = leafKey
            renewed.previousCACertificates = Self.stillValid(bundle.previousCACertificates, now: now)
            return renewed
        case .rotateAuthority(let bundle, _):
            var renewed = try issue(now: now)
            renewed.previousCACertificates = Self.stillValid(
                [bundle.caCertificate] + bundle.previousCACertificates, now: now)
            return renewed
        case .replace(_, let kept):
            var renewed = try issue(now: now)
            renewed.previousCACertificates = Self.stillValid(kept, now: now)
            return renewed
        }
    }

    /// A new CA and a leaf it signed, with fresh P-256 keys and random serial numbers.
    public func issue(now: Date) throws -> WebhookCertificateBundle {
        let (ca, caKey) = try issueAuthority(now: now)
        let (leaf, leafKey) = try issueLeaf(ca: ca, caKey: caKey, now: now)
        return WebhookCertificateBundle(
            caCertificate: ca, caPrivateKey: caKey, leafCertificate: leaf, leafPrivateKey: leafKey)
    }

    /// A self-signed CA: `basicConstraints CA:TRUE, pathlen:0` and `keyUsage keyCertSign, cRLSign` (critical).
    public func issueAuthority(now: Date) throws -> (Certificate, Certificate.PrivateKey) {
        let key = Certificate.PrivateKey(P256.Signing.PrivateKey())
        let name = try DistinguishedName { CommonName(caCommonName) }
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: key.publicKey,
            notValidBefore: now.addingTimeInterval(-backdating.inSeconds),
            notValidAfter: now.addingTimeInterval(caValidity.inSeconds),
            issuer: name,
            subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: key.publicKey)
            },
            issuerPrivateKey: key
        )
        return (certificate, key)
    }

    /// A serving leaf for `dnsNames` signed by `ca`, valid `leafValidity` but never past the CA:
    /// `basicConstraints CA:FALSE`, `keyUsage digitalSignature` (critical), `extendedKeyUsage serverAuth`.
    public func issueLeaf(
        ca: Certificate, caKey: Certificate.PrivateKey, now: Date
    ) throws -> (Certificate, Certificate.PrivateKey) {
        let key = Certificate.PrivateKey(P256.Signing.PrivateKey())
        let notAfter = min(now.addingTimeInterval(leafValidity.inSeconds), ca.notValidAfter)
        let authorityKeyID = try ca.extensions.subjectKeyIdentifier?.keyIdentifier
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: key.publicKey,
            notValidBefore: max(now.addingTimeInterval(-backdating.inSeconds), ca.notValidBefore),
            notValidAfter: notAfter,
            issuer: ca.subject,
            subject: try DistinguishedName { CommonName(dnsNames[0]) },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectKeyIdentifier(hash: key.publicKey)
                AuthorityKeyIdentifier(keyIdentifier: authorityKeyID)
                SubjectAlternativeNames(dnsNames.map { .dnsName($0) })
            },
            issuerPrivateKey: caKey
        )
        return (certificate, key)
    }
}

/// What `WebhookCertificateAuthority.assess` found in a Secret.
public enum WebhookCertificateAssessment: Sendable {
    /// Valid and not due; the bundle has expired earlier CAs dropped (so it may differ from the Secret).
    case current(WebhookCertificateBundle)
    /// Valid, but less than a third of the leaf's lifetime remains: issue a new leaf under the same CA.
    case renewLeaf(WebhookCertificateBundle, reason: WebhookCertificateRenewalReason)
    /// Valid, but the CA is close to expiry: issue a new CA and leaf, keeping the old CA in `ca.crt`.
    case rotateAuthority(WebhookCertificateBundle, reason: WebhookCertificateRenewalReason)
    /// Missing or unusable: issue a new CA and leaf, keeping `keeping` (the unexpired CAs of the old `ca.crt`, when
    /// it parses) after the new CA in `ca.crt`.
    case replace(reason: WebhookCertificateRenewalReason, keeping: [Certificate])

    /// Why new material is needed, or nil when the Secret is current.
    public var renewalReason: WebhookCertificateRenewalReason? {
        switch self {
        case .current: nil
        case .renewLeaf(_, let reason), .rotateAuthority(_, let reason), .replace(let reason, _): reason
        }
    }
}

/// Why `WebhookCertificateAuthority` issues new material.
public enum WebhookCertificateRenewalReason: Hashable, Sendable, CustomStringConvertible {
    /// There is no Secret.
    case missing
    /// The Secret's material cannot be used; the text says why.
    case invalid(String)
    /// The leaf has this many seconds left, less than a third of its lifetime.
    case leafExpiring(remaining: TimeInterval)
    /// The CA has this many seconds left, less than the renewal margin.
    case authorityExpiring(remaining: TimeInterval)

    /// Every value of `label`.
    public static let labels = ["missing", "invalid", "leaf_expiring", "ca_expiring"]

    /// A short label for metrics: `missing`, `invalid`, `leaf_expiring`, `ca_expiring`.
    public var label: String {
        switch self {
        case .missing: "missing"
        case .invalid: "invalid"
        case .leafExpiring: "leaf_expiring"
        case .authorityExpiring: "ca_expiring"
        }
    }

    public var description: String {
        switch self {
        case .missing: "the Secret does not exist"
        case .invalid(let problem): "the Secret is invalid: \(problem)"
        case .leafExpiring(let remaining): "the serving certificate expires in \(Int(remaining)) s"
        case .authorityExpiring(let remaining): "the CA expires in \(Int(remaining)) s"
        }
    }
}

/// A webhook CA and the serving leaf it signed, with both keys: the content of the Secret.
public struct WebhookCertificateBundle: Sendable, Hashable {
    public var caCertificate: Certificate
    public var caPrivateKey: Certificate.PrivateKey
    public var leafCertificate: Certificate
    public var leafPrivateKey: Certificate.PrivateKey
    /// Earlier CAs, still trusted in `ca.crt` after the current one.
    public var previousCACertificates: [Certificate]

    public init(
        caCertificate: Certificate, caPrivateKey: Certificate.PrivateKey, leafCertificate: Certificate,
        leafPrivateKey: Certificate.PrivateKey, previousCACertificates: [Certificate] = []
    ) {
        self.caCertificate = caCertificate
        self.caPrivateKey = caPrivateKey
        self.leafCertificate = leafCertificate
        self.leafPrivateKey = leafPrivateKey
        self.previousCACertificates = previousCACertificates
    }

    /// Parses a Secret's `data` (base64 values). Only the structure is checked here; whether the pieces fit
    /// together is `WebhookCertificateAuthority.assess`'s job.
    public init(secretData: [String: String]) throws(WebhookCertificateBundleError) {
        let leafChain = try Self.certificates(secretData, WebhookCertificateAuthority.certificateKey)
        let authorities = try Self.certificates(secretData, WebhookCertificateAuthority.caCertificateKey)
        self.init(
            caCertificate: authorities[0],
            caPrivateKey: try Self.privateKey(secretData, WebhookCertificateAuthority.caPrivateKeyKey),
            leafCertificate: leafChain[0],
            leafPrivateKey: try Self.privateKey(secretData, WebhookCertificateAuthority.privateKeyKey),
            previousCACertificates: Array(authorities.dropFirst())
        )
    }

    /// The serving leaf as PEM (`tls.crt`).
    public var certificatePEM: String {
        get throws { try leafCertificate.serializeAsPEM().pemString + "\n" }
    }

    /// The serving key as PKCS#8 PEM (`tls.key`).
    public var privateKeyPEM: String {
        get throws { try leafPrivateKey.serializeAsPEM().pemString + "\n" }
    }

    /// The CA's key as PKCS#8 PEM (`ca.key`).
    public var caPrivateKeyPEM: String {
        get throws { try caPrivateKey.serializeAsPEM().pemString + "\n" }
    }

    /// The current CA then the earlier ones, as PEM (`ca.crt`, and the webhook's `caBundle` once base64-encoded).
    public var caBundlePEM: String {
        get throws {
            try ([caCertificate] + previousCACertificates).map { try $0.serializeAsPEM().pemString + "\n" }.joined()
        }
    }

    /// The Secret's `data`: the four keys, base64-encoded.
    public var secretData: [String: String] {
        get throws {
            [
                WebhookCertificateAuthority.certificateKey: Data(try certificatePEM.utf8).base64EncodedString(),
                WebhookCertificateAuthority.privateKeyKey: Data(try privateKeyPEM.utf8).base64EncodedString(),
                WebhookCertificateAuthority.caCertificateKey: Data(try caBundlePEM.utf8).base64EncodedString(),
                WebhookCertificateAuthority.caPrivateKeyKey: Data(try caPrivateKeyPEM.utf8).base64EncodedString(),
            ]
        }
    }

    private static func pem(
        _ data: [String: String], _ key: String
    ) throws(WebhookCertificateBundleError) -> String {
        guard let value = data[key] else { throw .missingKey(key) }
        guard let bytes = Data(base64Encoded: value), let text = String(data: bytes, encoding: .utf8) else {
            throw .notBase64UTF8(key: key)
        }
        return text
    }

    static func certificates(
        _ data: [String: String], _ key: String
    ) throws(WebhookCertificateBundleError) -> [Certificate] {
        let text = try pem(data, key)
        do {
            let documents = try PEMDocument.parseMultiple(pemString: text)
            guard !documents.isEmpty else {
                throw WebhookCertificateBundleError.invalid(key: key, reason: "no PEM block")
            }
            return try documents.map { try Certificate(pemDocument: $0) }
        } catch let error as WebhookCertificateBundleError {
            throw error
        } catch {
            throw .invalid(key: key, reason: String(describing: error))
        }
    }

    private static func privateKey(
        _ data: [String: String], _ key: String
    ) throws(WebhookCertificateBundleError) -> Certificate.PrivateKey {
        let text = try pem(data, key)
        do {
            return try Certificate.PrivateKey(pemEncoded: text)
        } catch {
            throw .invalid(key: key, reason: String(describing: error))
        }
    }
}

/// Why a Secret's data could not be parsed into a `WebhookCertificateBundle`.
public enum WebhookCertificateBundleError: Error, Hashable, Sendable, CustomStringConvertible {
    case missingKey(String)
    case notBase64UTF8(key: String)
    case invalid(key: String, reason: String)

    public var description: String {
        switch self {
        case .missingKey(let key): "key \(key) is missing"
        case .notBase64UTF8(let key): "key \(key) is not base64-encoded UTF-8 text"
        case .invalid(let key, let reason): "key \(key) does not hold valid PEM: \(reason)"
        }
    }
}
