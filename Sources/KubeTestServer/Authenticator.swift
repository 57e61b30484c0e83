import KubeModel

/// Who a request comes from, and the answers to TokenReviews and SelfSubjectAccessReviews.
///
/// Two kinds of tokens: client tokens (`acceptClientToken`) authenticate API requests only; service-account tokens
/// (`registerServiceAccountToken`) answer TokenReviews and also authenticate API requests when their audiences
/// include the API server's. Client certificates verified against the server's CA authenticate as their subject CN.
struct Authenticator: Sendable {
    /// The API server's own audience, as in a real cluster with default flags.
    static let apiAudience = "https://kubernetes.default.svc"

    static let anonymous = UserInfo(username: "system:anonymous", groups: ["system:unauthenticated"])

    struct ServiceAccountToken: Sendable {
        var user: UserInfo
        /// nil: a legacy token, bound to the API server's audience only.
        var audiences: [String]?

        var effectiveAudiences: [String] {
            audiences ?? [Authenticator.apiAudience]
        }
    }

    struct Denial: Sendable {
        var verb: String
        var resource: String
        /// nil denies in every namespace.
        var namespace: String?
    }

    enum Outcome: Sendable {
        case authenticated(UserInfo)
        case anonymous
        /// 401: a required credential is missing or a presented one is unknown while authentication is required.
        case rejected
    }

    var clientTokens: [String: String] = [:]
    var serviceAccountTokens: [String: ServiceAccountToken] = [:]
    var denials: [Denial] = []

    /// Authenticates by bearer token first, then by client certificate. Without `required`, requests without a
    /// known credential are anonymous; with it they are rejected.
    func authenticate(bearerToken: String?, certificateName: String?, required: Bool) -> Outcome {
        if let bearerToken {
            if let user = clientTokens[bearerToken] {
                return .authenticated(UserInfo(username: user, groups: ["system:authenticated"]))
            }
            if let token = serviceAccountTokens[bearerToken], token.effectiveAudiences.contains(Self.apiAudience) {
                return .authenticated(token.user)
            }
        }
        if let certificateName {
            return .authenticated(UserInfo(username: certificateName, groups: ["system:authenticated"]))
        }
        return required ? .rejected : .anonymous
    }

    /// Fills in a TokenReview's status.
    ///
    /// With `spec.audiences`, the token must carry at least one of them and `status.audiences` is the
    /// intersection; without, the token must carry the API server's audience, which `status.audiences` then holds.
    /// An unknown token is `authenticated: false` with error "token not found".
    func review(_ review: TokenReview) -> TokenReview {
        var review = review
        guard let token = serviceAccountTokens[review.spec.token] else {
            review.status = TokenReview.ReviewStatus(authenticated: false, error: "token not found")
            return review
        }
        let requested = review.spec.audiences ?? []
        let wanted = requested.isEmpty ? [Self.apiAudience] : requested
        let granted = wanted.filter(token.effectiveAudiences.contains)
        guard !granted.isEmpty else {
            let have = token.effectiveAudiences.map { "\"\($0)\"" }.joined(separator: ", ")
            let want = wanted.map { "\"\($0)\"" }.joined(separator: ", ")
            review.status = TokenReview.ReviewStatus(
                authenticated: false, error: "token audiences [\(have)] is invalid for the target audiences [\(want)]")
            return review
        }
        review.status = TokenReview.ReviewStatus(authenticated: true, user: token.user, audiences: granted)
        return review
    }

    /// Fills in a SelfSubjectAccessReview's status: allowed unless a denial matches the resource attributes
    /// (`*` in a denial's verb or resource matches anything). Non-resource requests are always allowed.
    func review(_ review: SelfSubjectAccessReview) -> SelfSubjectAccessReview {
        var review = review
        let attributes = review.spec.resourceAttributes
        let denied =
            attributes.map { attributes in
                denials.contains { denial in
                    (denial.verb == "*" || denial.verb == attributes.verb)
                        && (denial.resource == "*" || denial.resource == attributes.resource)
                        && (denial.namespace == nil || denial.namespace == attributes.namespace)
                }
            } ?? false
        review.status =
            denied
            ? SelfSubjectAccessReview.ReviewStatus(allowed: false, denied: true, reason: "denied by KubeTestServer")
            : SelfSubjectAccessReview.ReviewStatus(allowed: true)
        return review
    }
}
