/// `core/v1.Namespace`.
public struct Namespace: KubeResource, Hashable {
    public static let resourceType = ResourceType.namespaces
    public var apiVersion: String? = "v1"
    public var kind: String? = "Namespace"
    public var metadata: ObjectMeta
    public var status: NamespaceStatus?

    public struct NamespaceStatus: Codable, Hashable, Sendable {
        /// `Active` or `Terminating`.
        public var phase: String?
    }

    public init(metadata: ObjectMeta) {
        self.metadata = metadata
    }
}

/// `core/v1.Service`.
public struct Service: KubeResource, Hashable {
    public static let resourceType = ResourceType.services
    public var apiVersion: String? = "v1"
    public var kind: String? = "Service"
    public var metadata: ObjectMeta
    public var spec: ServiceSpec?

    public init(metadata: ObjectMeta, spec: ServiceSpec? = nil) {
        self.metadata = metadata
        self.spec = spec
    }
}

public struct ServiceSpec: Codable, Hashable, Sendable {
    /// `ClusterIP`, `NodePort`, `LoadBalancer` or `ExternalName`.
    public var type: String?
    /// `None` for a headless service.
    public var clusterIP: String?
    public var clusterIPs: [String]?
    public var ports: [ServicePort]?
    public var selector: [String: String]?
    public var externalName: String?

    public init(
        type: String? = nil, clusterIP: String? = nil, ports: [ServicePort]? = nil,
        selector: [String: String]? = nil
    ) {
        self.type = type
        self.clusterIP = clusterIP
        self.ports = ports
        self.selector = selector
    }
}

public struct ServicePort: Codable, Hashable, Sendable {
    public var name: String?
    public var port: Int
    public var targetPort: IntOrString?
    public var `protocol`: String?
    public var appProtocol: String?
    public var nodePort: Int?

    public init(name: String? = nil, port: Int, targetPort: IntOrString? = nil, protocol: String? = nil) {
        self.name = name
        self.port = port
        self.targetPort = targetPort
        self.protocol = `protocol`
    }
}

/// `discovery.k8s.io/v1.EndpointSlice`.
public struct EndpointSlice: KubeResource, Hashable {
    public static let resourceType = ResourceType.endpointSlices
    public var apiVersion: String? = "discovery.k8s.io/v1"
    public var kind: String? = "EndpointSlice"
    public var metadata: ObjectMeta
    /// `IPv4`, `IPv6` or `FQDN`.
    public var addressType: String
    public var endpoints: [Endpoint]
    public var ports: [EndpointPort]?

    public struct Endpoint: Codable, Hashable, Sendable {
        public var addresses: [String]
        public var conditions: Conditions?
        public var hostname: String?
        public var nodeName: String?
        public var zone: String?
        public var targetRef: ObjectReference?
        public var hints: Hints?

        public init(
            addresses: [String], conditions: Conditions? = nil, hostname: String? = nil,
            nodeName: String? = nil, zone: String? = nil, targetRef: ObjectReference? = nil
        ) {
            self.addresses = addresses
            self.conditions = conditions
            self.hostname = hostname
            self.nodeName = nodeName
            self.zone = zone
            self.targetRef = targetRef
        }
    }

    public struct Conditions: Codable, Hashable, Sendable {
        public var ready: Bool?
        public var serving: Bool?
        public var terminating: Bool?

        public init(ready: Bool? = nil, serving: Bool? = nil, terminating: Bool? = nil) {
            self.ready = ready
            self.serving = serving
            self.terminating = terminating
        }
    }

    public struct Hints: Codable, Hashable, Sendable {
        public var forZones: [ForZone]?

        public struct ForZone: Codable, Hashable, Sendable {
            public var name: String
        }
    }

    public struct EndpointPort: Codable, Hashable, Sendable {
        public var name: String?
        public var port: Int?
        public var `protocol`: String?
        public var appProtocol: String?

        public init(name: String? = nil, port: Int? = nil, protocol: String? = nil, appProtocol: String? = nil) {
            self.name = name
            self.port = port
            self.protocol = `protocol`
            self.appProtocol = appProtocol
        }
    }

    public init(metadata: ObjectMeta, addressType: String, endpoints: [Endpoint], ports: [EndpointPort]? = nil) {
        self.metadata = metadata
        self.addressType = addressType
        self.endpoints = endpoints
        self.ports = ports
    }
}

/// `core/v1.ObjectReference`.
public struct ObjectReference: Codable, Hashable, Sendable {
    public var apiVersion: String?
    public var kind: String?
    public var namespace: String?
    public var name: String?
    public var uid: String?
    public var resourceVersion: String?
    public var fieldPath: String?

    public init(
        apiVersion: String? = nil, kind: String? = nil, namespace: String? = nil, name: String? = nil,
        uid: String? = nil
    ) {
        self.apiVersion = apiVersion
        self.kind = kind
        self.namespace = namespace
        self.name = name
        self.uid = uid
    }
}

/// `core/v1.ServiceAccount`.
public struct ServiceAccount: KubeResource, Hashable {
    public static let resourceType = ResourceType.serviceAccounts
    public var apiVersion: String? = "v1"
    public var kind: String? = "ServiceAccount"
    public var metadata: ObjectMeta
    public var automountServiceAccountToken: Bool?

    public init(metadata: ObjectMeta, automountServiceAccountToken: Bool? = nil) {
        self.metadata = metadata
        self.automountServiceAccountToken = automountServiceAccountToken
    }
}

/// `core/v1.Secret`. `data` values are base64, as on the wire.
public struct Secret: KubeResource, Hashable {
    public static let resourceType = ResourceType.secrets
    public var apiVersion: String? = "v1"
    public var kind: String? = "Secret"
    public var metadata: ObjectMeta
    /// `Opaque`, `kubernetes.io/tls`, ...
    public var type: String?
    public var data: [String: String]?
    public var stringData: [String: String]?
    public var immutable: Bool?

    public init(metadata: ObjectMeta, type: String? = nil, data: [String: String]? = nil) {
        self.metadata = metadata
        self.type = type
        self.data = data
    }
}

/// `core/v1.ConfigMap`.
public struct ConfigMap: KubeResource, Hashable {
    public static let resourceType = ResourceType.configMaps
    public var apiVersion: String? = "v1"
    public var kind: String? = "ConfigMap"
    public var metadata: ObjectMeta
    public var data: [String: String]?
    public var binaryData: [String: String]?

    public init(metadata: ObjectMeta, data: [String: String]? = nil) {
        self.metadata = metadata
        self.data = data
    }
}

/// `core/v1.Event`.
public struct Event: KubeResource, Hashable {
    public static let resourceType = ResourceType.events
    public var apiVersion: String? = "v1"
    public var kind: String? = "Event"
    public var metadata: ObjectMeta
    public var involvedObject: ObjectReference
    public var reason: String?
    public var message: String?
    /// `Normal` or `Warning`.
    public var type: String?
    public var source: EventSource?
    public var firstTimestamp: String?
    public var lastTimestamp: String?
    public var eventTime: String?
    public var count: Int?
    public var action: String?
    public var reportingComponent: String?
    public var reportingInstance: String?

    public struct EventSource: Codable, Hashable, Sendable {
        public var component: String?
        public var host: String?

        public init(component: String? = nil, host: String? = nil) {
            self.component = component
            self.host = host
        }
    }

    public init(
        metadata: ObjectMeta, involvedObject: ObjectReference, reason: String? = nil, message: String? = nil,
        type: String? = nil
    ) {
        self.metadata = metadata
        self.involvedObject = involvedObject
        self.reason = reason
        self.message = message
        self.type = type
    }
}

/// `coordination.k8s.io/v1.Lease`, the lock of leader election.
public struct Lease: KubeResource, Hashable {
    public static let resourceType = ResourceType.leases
    public var apiVersion: String? = "coordination.k8s.io/v1"
    public var kind: String? = "Lease"
    public var metadata: ObjectMeta
    public var spec: LeaseSpec?

    public struct LeaseSpec: Codable, Hashable, Sendable {
        public var holderIdentity: String?
        public var leaseDurationSeconds: Int?
        /// `MicroTime` text (RFC 3339 with microseconds); see `KubeTime`.
        public var acquireTime: String?
        public var renewTime: String?
        public var leaseTransitions: Int?
        /// Coordinated leader election (Kubernetes 1.31+); carried so updates do not drop them.
        public var strategy: String?
        public var preferredHolder: String?

        public init(
            holderIdentity: String? = nil, leaseDurationSeconds: Int? = nil, acquireTime: String? = nil,
            renewTime: String? = nil, leaseTransitions: Int? = nil
        ) {
            self.holderIdentity = holderIdentity
            self.leaseDurationSeconds = leaseDurationSeconds
            self.acquireTime = acquireTime
            self.renewTime = renewTime
            self.leaseTransitions = leaseTransitions
        }
    }

    public init(metadata: ObjectMeta, spec: LeaseSpec? = nil) {
        self.metadata = metadata
        self.spec = spec
    }
}
