import KubeModel

/// Who asks for injection: the admission webhook (on pod creation) or `linkerd inject --manual`.
public enum InjectionOrigin: Sendable, Hashable {
    case webhook
    case cli
}

/// The owner the webhook resolved for a pod (ReplicaSet → its Deployment, Job → its CronJob).
public struct WorkloadOwner: Sendable, Hashable {
    /// The lower-cased kind: `deployment`, `replicaset`, `statefulset`, `daemonset`, `job`, `cronjob`,
    /// `replicationcontroller` or `pod`.
    public var kind: String
    public var name: String

    public init(kind: String, name: String) {
        self.kind = kind
        self.name = name
    }
}

/// One object to decide on and patch.
public struct InjectionRequest: Sendable, Hashable {
    /// The whole object: a Pod, a workload with a pod template, a Service, a Namespace, or anything else.
    public var object: JSONValue
    /// The object's kind: `Pod`, `Deployment`, `CronJob`, `Service`, `Namespace`, ...
    public var kind: String
    /// The object's namespace (`request.namespace` for the webhook, since pods from templates carry none).
    public var namespace: String
    /// The annotations of the object's namespace.
    public var namespaceAnnotations: [String: String]
    /// The pod's owner as the webhook resolved it; nil when there is none or it is unknown.
    public var owner: WorkloadOwner?
    public var origin: InjectionOrigin

    public init(
        object: JSONValue, kind: String, namespace: String, namespaceAnnotations: [String: String] = [:],
        owner: WorkloadOwner? = nil, origin: InjectionOrigin = .webhook
    ) {
        self.object = object
        self.kind = kind
        self.namespace = namespace
        self.namespaceAnnotations = namespaceAnnotations
        self.owner = owner
        self.origin = origin
    }
}
