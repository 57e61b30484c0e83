/// `authentication.k8s.io/v1.TokenReview`: asks the API server who a bearer token belongs to.
public struct TokenReview: KubeResource, Hashable {
    public static let resourceType = ResourceType.tokenReviews
    public var apiVersion: String? = "authentication.k8s.io/v1"
    public var kind: String? = "TokenReview"
    public var metadata: ObjectMeta
    public var spec: Spec
    public var status: ReviewStatus?

    public struct Spec: Codable, Hashable, Sendable {
        public var token: String
        public var audiences: [String]?

        public init(token: String, audiences: [String]? = nil) {
            self.token = token
            self.audiences = audiences
        }
    }

    public struct ReviewStatus: Codable, Hashable, Sendable {
        public var authenticated: Bool?
        public var user: UserInfo?
        public var audiences: [String]?
        public var error: String?

        public init(
            authenticated: Bool? = nil, user: UserInfo? = nil, audiences: [String]? = nil,
            error: String? = nil
        ) {
            self.authenticated = authenticated
            self.user = user
            self.audiences = audiences
            self.error = error
        }
    }

    public init(token: String, audiences: [String]? = nil) {
        self.metadata = ObjectMeta()
        self.spec = Spec(token: token, audiences: audiences)
    }
}

/// `authentication.k8s.io/v1.UserInfo`.
public struct UserInfo: Codable, Hashable, Sendable {
    /// For a ServiceAccount: `system:serviceaccount:<namespace>:<name>`.
    public var username: String?
    public var uid: String?
    public var groups: [String]?
    public var extra: [String: [String]]?

    public init(
        username: String? = nil, uid: String? = nil, groups: [String]? = nil,
        extra: [String: [String]]? = nil
    ) {
        self.username = username
        self.uid = uid
        self.groups = groups
        self.extra = extra
    }
}

/// `authorization.k8s.io/v1.SelfSubjectAccessReview`: "may I do this?", asked by `linkerd check`.
public struct SelfSubjectAccessReview: KubeResource, Hashable {
    public static let resourceType = ResourceType.selfSubjectAccessReviews
    public var apiVersion: String? = "authorization.k8s.io/v1"
    public var kind: String? = "SelfSubjectAccessReview"
    public var metadata: ObjectMeta
    public var spec: Spec
    public var status: ReviewStatus?

    public struct Spec: Codable, Hashable, Sendable {
        public var resourceAttributes: ResourceAttributes?
        public var nonResourceAttributes: NonResourceAttributes?

        public init(
            resourceAttributes: ResourceAttributes? = nil,
            nonResourceAttributes: NonResourceAttributes? = nil
        ) {
            self.resourceAttributes = resourceAttributes
            self.nonResourceAttributes = nonResourceAttributes
        }
    }

    public struct ResourceAttributes: Codable, Hashable, Sendable {
        public var namespace: String?
        public var verb: String?
        public var group: String?
        public var version: String?
        public var resource: String?
        public var subresource: String?
        public var name: String?

        public init(
            namespace: String? = nil, verb: String? = nil, group: String? = nil, version: String? = nil,
            resource: String? = nil, subresource: String? = nil, name: String? = nil
        ) {
            self.namespace = namespace
            self.verb = verb
            self.group = group
            self.version = version
            self.resource = resource
            self.subresource = subresource
            self.name = name
        }
    }

    public struct NonResourceAttributes: Codable, Hashable, Sendable {
        public var path: String?
        public var verb: String?

        public init(path: String? = nil, verb: String? = nil) {
            self.path = path
            self.verb = verb
        }
    }

    public struct ReviewStatus: Codable, Hashable, Sendable {
        public var allowed: Bool
        public var denied: Bool?
        public var reason: String?
        public var evaluationError: String?

        public init(allowed: Bool, denied: Bool? = nil, reason: String? = nil) {
            self.allowed = allowed
            self.denied = denied
            self.reason = reason
        }
    }

    public init(resourceAttributes: ResourceAttributes) {
        self.metadata = ObjectMeta()
        self.spec = Spec(resourceAttributes: resourceAttributes)
    }
}
