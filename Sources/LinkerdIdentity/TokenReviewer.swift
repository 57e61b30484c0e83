import KubeModel
import LinkerdCore

/// Who a ServiceAccount token belongs to, as the API server's TokenReview says: the user name
/// `system:serviceaccount:<namespace>:<name>`.
public struct TokenIdentity: Hashable, Sendable, CustomStringConvertible {
    /// The ServiceAccount's namespace.
    public let namespace: String
    /// The ServiceAccount's name.
    public let serviceAccount: String

    /// Parses a TokenReview user name (reference §4.3): four `:`-separated parts, the first `system`, each a DNS-1123
    /// label.
    ///
    /// Upstream accepts any second part (the "type") and builds `<name>.<ns>.<type>.identity...`. Kubernetes gives
    /// four-part `system:` user names only to ServiceAccounts, and a Linkerd identity name always has
    /// `serviceaccount` there, so any other type is refused here rather than producing a name no proxy asks for.
    ///
    /// - Throws: ``IdentityError`` with code `invalidArgument`, as upstream's `InvalidToken`.
    public init(username: String) throws(IdentityError) {
        let parts = username.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        let form = "system:serviceaccount:<namespace>:<name>"
        guard parts.count == 4, parts[0] == "system" else {
            throw .invalidArgument("token user name \(username.quoted) is not of the form \(form)")
        }
        guard parts[1] == "serviceaccount" else {
            throw .invalidArgument(
                "token user name \(username.quoted) is not a ServiceAccount's (\(form)); its type is "
                    + parts[1].quoted)
        }
        // IdentityName checks both parts are DNS-1123 labels; the control-plane part is a placeholder here.
        do {
            _ = try IdentityName(
                serviceAccount: parts[3], namespace: parts[2], controlPlaneNamespace: "linkerd", trustDomain: "local")
        } catch {
            throw .invalidArgument("token user name \(username.quoted) is invalid: \(error)")
        }
        namespace = parts[2]
        serviceAccount = parts[3]
    }

    /// The identity name for this ServiceAccount in a mesh:
    /// `<name>.<namespace>.serviceaccount.identity.<controlPlaneNamespace>.<trustDomain>`.
    public func identityName(controlPlaneNamespace: String, trustDomain: String) throws(ParseError) -> IdentityName {
        try IdentityName(
            serviceAccount: serviceAccount, namespace: namespace, controlPlaneNamespace: controlPlaneNamespace,
            trustDomain: trustDomain)
    }

    /// `system:serviceaccount:<namespace>:<name>`.
    public var description: String {
        "system:serviceaccount:\(namespace):\(serviceAccount)"
    }
}

/// Authenticates ServiceAccount tokens with the API server's TokenReview (upstream
/// `controller/identity/validator.go`, reference §4.3).
///
/// The review asks for the audience ``audience``; when the API server answers that the token's audiences do not
/// match (a legacy token, bound to the API server's audience only), it asks again without an audience. Outcomes:
/// - `status.error` set (after the retry): `invalidArgument`, with the API server's error (upstream `InvalidToken`);
/// - not `authenticated`: `failedPrecondition` "authentication token could not be authenticated";
/// - a user name that is not a ServiceAccount's: `invalidArgument` (see ``TokenIdentity/init(username:)``);
/// - the review cannot be made (an API error, a timeout, the server unreachable, the task cancelled): `unavailable`,
///   so the proxy retries; upstream answers `internal`, which reads as a server bug when it is usually transient.
///   A missing RBAC grant (403) is `unavailable` too: the operator must fix it, and the proxy keeps retrying until
///   then, which is what it should do.
public struct TokenReviewer: Sendable {
    /// The audience proxies' projected tokens are bound to.
    public static let audience = "identity.l5d.io"

    private let api: any KubeAPI

    public init(api: any KubeAPI) {
        self.api = api
    }

    /// Asks the API server whose token this is.
    ///
    /// - Throws: ``IdentityError`` as listed above.
    public func review(token: String) async throws(IdentityError) -> TokenIdentity {
        var status = try await review(TokenReview(token: token, audiences: [Self.audience]))
        if let error = status.error, error.contains("token audiences") {
            status = try await review(TokenReview(token: token))
        }
        if let error = status.error, !error.isEmpty {
            throw .invalidArgument("authentication token is invalid: \(error)")
        }
        guard status.authenticated == true else {
            throw .failedPrecondition("authentication token could not be authenticated")
        }
        return try TokenIdentity(username: status.user?.username ?? "")
    }

    private func review(_ request: TokenReview) async throws(IdentityError) -> TokenReview.ReviewStatus {
        do {
            let answer = try await api.create(request)
            return answer.status ?? TokenReview.ReviewStatus()
        } catch {
            throw IdentityError(code: .unavailable, message: "the TokenReview could not be made: \(error)")
        }
    }
}
