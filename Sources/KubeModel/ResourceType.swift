/// Where a kind of object lives in the API: group, version, plural resource name, kind and scope.
public struct ResourceType: Hashable, Sendable, CustomStringConvertible {
    /// Empty for the core (`/api/v1`) group.
    public var group: String
    public var version: String
    /// The plural, lowercase name used in URLs (`pods`, `mutatingwebhookconfigurations`).
    public var plural: String
    public var kind: String
    public var namespaced: Bool

    public init(group: String, version: String, plural: String, kind: String, namespaced: Bool) {
        self.group = group
        self.version = version
        self.plural = plural
        self.kind = kind
        self.namespaced = namespaced
    }

    /// `v1` for the core group, `group/version` otherwise.
    public var apiVersion: String {
        group.isEmpty ? version : "\(group)/\(version)"
    }

    /// The URL path prefix of this group version: `/api/v1` or `/apis/apps/v1`.
    public var groupVersionPath: String {
        group.isEmpty ? "/api/\(version)" : "/apis/\(group)/\(version)"
    }

    /// The path of a collection or object. A nil or empty namespace on a namespaced resource means all namespaces.
    public func path(namespace: String? = nil, name: String? = nil, subresource: String? = nil) -> String {
        var path = groupVersionPath
        if namespaced, let namespace, !namespace.isEmpty {
            path += "/namespaces/\(namespace)"
        }
        path += "/\(plural)"
        if let name {
            path += "/\(name)"
            if let subresource {
                path += "/\(subresource)"
            }
        }
        return path
    }

    public var description: String {
        group.isEmpty ? "\(plural)/\(version)" : "\(plural).\(group)/\(version)"
    }
}

extension ResourceType {
    public static let namespaces = ResourceType(
        group: "", version: "v1", plural: "namespaces", kind: "Namespace", namespaced: false)
    public static let pods = ResourceType(group: "", version: "v1", plural: "pods", kind: "Pod", namespaced: true)
    public static let services = ResourceType(
        group: "", version: "v1", plural: "services", kind: "Service", namespaced: true)
    public static let serviceAccounts = ResourceType(
        group: "", version: "v1", plural: "serviceaccounts", kind: "ServiceAccount", namespaced: true)
    public static let secrets = ResourceType(
        group: "", version: "v1", plural: "secrets", kind: "Secret", namespaced: true)
    public static let configMaps = ResourceType(
        group: "", version: "v1", plural: "configmaps", kind: "ConfigMap", namespaced: true)
    public static let events = ResourceType(group: "", version: "v1", plural: "events", kind: "Event", namespaced: true)
    public static let endpointSlices = ResourceType(
        group: "discovery.k8s.io", version: "v1", plural: "endpointslices", kind: "EndpointSlice", namespaced: true)
    public static let leases = ResourceType(
        group: "coordination.k8s.io", version: "v1", plural: "leases", kind: "Lease", namespaced: true)
    public static let deployments = ResourceType(
        group: "apps", version: "v1", plural: "deployments", kind: "Deployment", namespaced: true)
    public static let replicaSets = ResourceType(
        group: "apps", version: "v1", plural: "replicasets", kind: "ReplicaSet", namespaced: true)
    public static let statefulSets = ResourceType(
        group: "apps", version: "v1", plural: "statefulsets", kind: "StatefulSet", namespaced: true)
    public static let daemonSets = ResourceType(
        group: "apps", version: "v1", plural: "daemonsets", kind: "DaemonSet", namespaced: true)
    public static let jobs = ResourceType(group: "batch", version: "v1", plural: "jobs", kind: "Job", namespaced: true)
    public static let cronJobs = ResourceType(
        group: "batch", version: "v1", plural: "cronjobs", kind: "CronJob", namespaced: true)
    public static let tokenReviews = ResourceType(
        group: "authentication.k8s.io", version: "v1", plural: "tokenreviews", kind: "TokenReview", namespaced: false)
    public static let selfSubjectAccessReviews = ResourceType(
        group: "authorization.k8s.io", version: "v1", plural: "selfsubjectaccessreviews",
        kind: "SelfSubjectAccessReview", namespaced: false)
    public static let mutatingWebhookConfigurations = ResourceType(
        group: "admissionregistration.k8s.io", version: "v1", plural: "mutatingwebhookconfigurations",
        kind: "MutatingWebhookConfiguration", namespaced: false)

    /// Every resource type this package models, in a stable order.
    public static let builtIn: [ResourceType] = [
        .namespaces, .pods, .services, .serviceAccounts, .secrets, .configMaps, .events, .endpointSlices, .leases,
        .deployments, .replicaSets, .statefulSets, .daemonSets, .jobs, .cronJobs, .tokenReviews,
        .selfSubjectAccessReviews, .mutatingWebhookConfigurations,
    ]
}

/// A typed Kubernetes object: it knows where it lives in the API and carries metadata.
public protocol KubeResource: Codable, Sendable {
    static var resourceType: ResourceType { get }
    var metadata: ObjectMeta { get set }
}

extension KubeResource {
    /// The object's key; an object without a name gets an empty name.
    public var key: ObjectKey {
        ObjectKey(namespace: Self.resourceType.namespaced ? metadata.namespace : nil, name: metadata.name ?? "")
    }
}
