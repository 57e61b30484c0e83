import KubeModel

/// A resource type regardless of version: its API group and plural name. The store keys objects by it.
struct ResourceID: Hashable, Sendable {
    var group: String
    var plural: String

    init(_ type: ResourceType) {
        group = type.group
        plural = type.plural
    }
}

/// A resource type the server serves, and how it serves it.
struct ResourceDefinition: Sendable {
    var type: ResourceType
    /// Whether `/status` exists: then a PUT or PATCH of the object keeps the stored `status`, and one of `/status`
    /// changes nothing but `status`.
    var hasStatusSubresource: Bool
    /// Built-in types' list items carry no `apiVersion`/`kind`, as with the real server; custom resources' do.
    var isBuiltIn: Bool
    /// Review types (TokenReview, SelfSubjectAccessReview) are computed on create and never stored.
    var isCreateOnly: Bool

    var id: ResourceID { ResourceID(type) }

    /// The verbs discovery lists for this resource.
    var verbs: [String] {
        isCreateOnly ? ["create"] : ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
    }

    /// Every type of `ResourceType.builtIn`, with the status subresources the real server has for them.
    static let builtIn: [ResourceDefinition] = ResourceType.builtIn.map { type in
        let withStatus: [ResourceType] = [
            .pods, .deployments, .replicaSets, .statefulSets, .daemonSets, .jobs, .cronJobs, .namespaces,
        ]
        let createOnly: [ResourceType] = [.tokenReviews, .selfSubjectAccessReviews]
        return ResourceDefinition(
            type: type, hasStatusSubresource: withStatus.contains(type), isBuiltIn: true,
            isCreateOnly: createOnly.contains(type))
    }
}
