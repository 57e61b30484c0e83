import Foundation
import LinkerdCore
import Synchronization
import X509

/// The identity service's Certify decision as a plain async function, without gRPC or files: it checks a request,
/// authenticates its token and issues a leaf (reference §4.3 and §4.4).
///
/// The issuer is swappable while calls run: ``update(issuer:)`` replaces it (hot reload) and calls already past
/// reading it finish with the one they read. Until an issuer is set, calls fail `unavailable`.
///
/// Certify's steps, in upstream's order, and their ``IdentityError`` codes:
/// 1. no issuer loaded yet: `unavailable` "cert issuer not ready yet";
/// 2. an empty identity, token or CSR: `invalidArgument` "missing identity", "missing token", "missing certificate
///    signing request"; a token over ``maximumTokenSize`` or not UTF-8: `invalidArgument`;
/// 3. a CSR that does not parse or whose signature does not verify: `invalidArgument`
///    (``CertificateSigningRequestCheck/parse(derEncoded:)``);
/// 4. the issuer no longer valid at `now` (expired, or its chain did): `unknown` "issuer certificate is not valid:
///    …", as upstream (a plain error there); the service should emit the Warning event `IssuerValidationFailed`;
/// 5. the CSR's names or key: `failedPrecondition` (``CertificateSigningRequestCheck/check(_:identity:)``);
/// 6. the TokenReview: see ``TokenReviewer``;
/// 7. the token's identity is not the requested one: `failedPrecondition` "requested identity did not match
///    provided token: requested=…; found=…";
/// 8. issuing: `internalError` only if signing fails.
public final class IdentityAuthority: Sendable {
    /// The longest token accepted, in bytes; projected ServiceAccount tokens are about 1 KiB.
    public static let maximumTokenSize = 64 * 1024

    /// The namespace the control plane runs in, such as `linkerd`.
    public let controlPlaneNamespace: String
    /// The mesh's trust domain, such as `cluster.local`.
    public let trustDomain: String
    public let settings: IssuanceSettings
    private let tokenReviewer: TokenReviewer
    private let currentIssuer: Mutex<IssuerCredentials?>

    /// - Parameters:
    ///   - issuer: the issuer to start with, or nil to answer `unavailable` until ``update(issuer:)``.
    /// - Throws: ``ParseError`` when `controlPlaneNamespace` is not a DNS-1123 label or `trustDomain` not a DNS name.
    public init(
        controlPlaneNamespace: String,
        trustDomain: String,
        tokenReviewer: TokenReviewer,
        issuer: IssuerCredentials? = nil,
        settings: IssuanceSettings = IssuanceSettings()
    ) throws(ParseError) {
        _ = try IdentityName.controlPlane(
            component: "linkerd-identity", namespace: controlPlaneNamespace, trustDomain: trustDomain)
        self.controlPlaneNamespace = controlPlaneNamespace
        self.trustDomain = trustDomain
        self.tokenReviewer = tokenReviewer
        self.settings = settings
        currentIssuer = Mutex(issuer)
    }

    /// The issuer calls use now, nil before the first one is set.
    public var issuer: IssuerCredentials? {
        currentIssuer.withLock { $0 }
    }

    /// Replaces the issuer; calls that start afterwards use the new one. The caller loads and verifies it
    /// (``IssuerCredentials/load(fromDirectory:layout:trustAnchors:now:)``) and keeps the old one when that fails.
    public func update(issuer: IssuerCredentials) {
        currentIssuer.withLock { $0 = issuer }
    }

    /// Decides a Certify request: the steps of the type's documentation.
    ///
    /// - Parameters:
    ///   - identity: the requested identity name (`CertifyRequest.identity`).
    ///   - token: the ServiceAccount token bytes (`CertifyRequest.token`).
    ///   - certificateSigningRequest: the DER CSR (`CertifyRequest.certificate_signing_request`).
    ///   - now: the time the leaf's validity is computed from and the issuer checked at.
    /// - Throws: ``IdentityError`` with the gRPC code to answer.
    public func certify(
        identity: String,
        token: [UInt8],
        certificateSigningRequest: [UInt8],
        now: Date
    ) async throws(IdentityError) -> CertifyResult {
        guard let issuer = self.issuer else {
            throw IdentityError(code: .unavailable, message: "cert issuer not ready yet")
        }
        guard !identity.isEmpty else { throw .invalidArgument("missing identity") }
        guard !token.isEmpty else { throw .invalidArgument("missing token") }
        guard !certificateSigningRequest.isEmpty else { throw .invalidArgument("missing certificate signing request") }
        guard token.count <= Self.maximumTokenSize else {
            throw .invalidArgument("token is \(token.count) bytes, more than the \(Self.maximumTokenSize) allowed")
        }
        guard let tokenText = String(validating: token, as: UTF8.self) else {
            throw .invalidArgument("token is not UTF-8 text")
        }
        let parsed = try CertificateSigningRequestCheck.parse(derEncoded: certificateSigningRequest)
        if let problem = issuer.validityProblem(at: now) {
            throw IdentityError(code: .unknown, message: "issuer certificate is not valid: \(problem)")
        }
        let request = try CertificateSigningRequestCheck.check(parsed, identity: identity)
        let requester = try await tokenReviewer.review(token: tokenText)
        let found: String
        do {
            found = try requester.identityName(controlPlaneNamespace: controlPlaneNamespace, trustDomain: trustDomain)
                .description
        } catch {
            throw .invalidArgument("the token's ServiceAccount \(requester) has no valid identity name: \(error)")
        }
        guard found == identity else {
            throw .failedPrecondition(
                "requested identity did not match provided token: requested=\(identity); found=\(found)")
        }
        let leaf = try issuer.issue(for: request, now: now, settings: settings)
        return CertifyResult(leaf: leaf, requester: requester)
    }
}

/// A granted Certify request.
public struct CertifyResult: Hashable, Sendable {
    /// The certificate, its chain and expiry: the `CertifyResponse`.
    public let leaf: IssuedLeaf
    /// The ServiceAccount the token belongs to; upstream emits the Normal event `IssuedLeafCertificate` on it.
    public let requester: TokenIdentity
}
