/// `metav1.ObjectMeta`: the fields the mesh reads and writes on every object.
public struct ObjectMeta: Codable, Hashable, Sendable {
    public var name: String?
    public var generateName: String?
    public var namespace: String?
    public var uid: String?
    public var resourceVersion: String?
    public var generation: Int64?
    /// RFC 3339, kept as the server's text so it round-trips exactly.
    public var creationTimestamp: String?
    public var deletionTimestamp: String?
    public var labels: [String: String]?
    public var annotations: [String: String]?
    public var ownerReferences: [OwnerReference]?
    public var finalizers: [String]?

    public init(
        name: String? = nil,
        namespace: String? = nil,
        labels: [String: String]? = nil,
        annotations: [String: String]? = nil,
        ownerReferences: [OwnerReference]? = nil
    ) {
        self.name = name
        self.namespace = namespace
        self.labels = labels
        self.annotations = annotations
        self.ownerReferences = ownerReferences
    }
}

/// `metav1.OwnerReference`.
public struct OwnerReference: Codable, Hashable, Sendable {
    public var apiVersion: String
    public var kind: String
    public var name: String
    public var uid: String
    public var controller: Bool?
    public var blockOwnerDeletion: Bool?

    public init(
        apiVersion: String, kind: String, name: String, uid: String, controller: Bool? = nil,
        blockOwnerDeletion: Bool? = nil
    ) {
        self.apiVersion = apiVersion
        self.kind = kind
        self.name = name
        self.uid = uid
        self.controller = controller
        self.blockOwnerDeletion = blockOwnerDeletion
    }
}

/// `metav1.ListMeta`.
public struct ListMeta: Codable, Hashable, Sendable {
    public var resourceVersion: String?
    /// The token for the next page; absent or empty on the last page.
    public var `continue`: String?
    public var remainingItemCount: Int64?

    public init(resourceVersion: String? = nil, continue continueToken: String? = nil, remainingItemCount: Int64? = nil)
    {
        self.resourceVersion = resourceVersion
        self.continue = continueToken
        self.remainingItemCount = remainingItemCount
    }
}

/// A list response (`PodList`, `NamespaceList`, ...). Items in a list carry no `apiVersion`/`kind`.
public struct ObjectList<Item: Codable & Sendable>: Codable, Sendable {
    public var apiVersion: String?
    public var kind: String?
    public var metadata: ListMeta
    public var items: [Item]

    public init(apiVersion: String? = nil, kind: String? = nil, metadata: ListMeta, items: [Item]) {
        self.apiVersion = apiVersion
        self.kind = kind
        self.metadata = metadata
        self.items = items
    }
}

/// Identifies one object in the API: its namespace (nil for cluster-scoped objects) and name.
/// Work queues and stores are keyed by this; its text form is `namespace/name` or `name`.
public struct ObjectKey: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var namespace: String?
    public var name: String

    public init(namespace: String?, name: String) {
        self.namespace = namespace
        self.name = name
    }

    public var description: String {
        namespace.map { "\($0)/\(name)" } ?? name
    }

    public static func < (lhs: ObjectKey, rhs: ObjectKey) -> Bool {
        (lhs.namespace ?? "", lhs.name) < (rhs.namespace ?? "", rhs.name)
    }
}
