/// `admission.k8s.io/v1` (and `v1beta1`, which has the same shape) `AdmissionReview`.
///
/// The webhook answers with the `apiVersion` it was sent. `object` and `oldObject` stay `JSONValue` so the
/// webhook sees every field of the submitted object, including ones this package does not model.
public struct AdmissionReview: Codable, Hashable, Sendable {
    public static let v1 = "admission.k8s.io/v1"
    public static let v1beta1 = "admission.k8s.io/v1beta1"

    public var apiVersion: String
    public var kind: String
    public var request: Request?
    public var response: Response?

    public init(apiVersion: String = AdmissionReview.v1, request: Request? = nil, response: Response? = nil) {
        self.apiVersion = apiVersion
        self.kind = "AdmissionReview"
        self.request = request
        self.response = response
    }

    public struct GroupVersionKind: Codable, Hashable, Sendable {
        public var group: String
        public var version: String
        public var kind: String

        public init(group: String, version: String, kind: String) {
            self.group = group
            self.version = version
            self.kind = kind
        }
    }

    public struct GroupVersionResource: Codable, Hashable, Sendable {
        public var group: String
        public var version: String
        public var resource: String

        public init(group: String, version: String, resource: String) {
            self.group = group
            self.version = version
            self.resource = resource
        }
    }

    public struct Request: Codable, Hashable, Sendable {
        public var uid: String
        public var kind: GroupVersionKind
        public var resource: GroupVersionResource
        public var subResource: String?
        public var requestKind: GroupVersionKind?
        public var requestResource: GroupVersionResource?
        public var name: String?
        public var namespace: String?
        /// `CREATE`, `UPDATE`, `DELETE` or `CONNECT`.
        public var operation: String
        public var userInfo: UserInfo
        public var object: JSONValue?
        public var oldObject: JSONValue?
        public var dryRun: Bool?
        public var options: JSONValue?

        public init(
            uid: String, kind: GroupVersionKind, resource: GroupVersionResource, name: String? = nil,
            namespace: String? = nil, operation: String, userInfo: UserInfo = UserInfo(), object: JSONValue? = nil,
            oldObject: JSONValue? = nil, dryRun: Bool? = nil
        ) {
            self.uid = uid
            self.kind = kind
            self.resource = resource
            self.name = name
            self.namespace = namespace
            self.operation = operation
            self.userInfo = userInfo
            self.object = object
            self.oldObject = oldObject
            self.dryRun = dryRun
        }
    }

    public struct Response: Codable, Hashable, Sendable {
        public var uid: String
        public var allowed: Bool
        public var result: Status?
        /// Base64 of the JSON patch bytes.
        public var patch: String?
        /// `JSONPatch` when `patch` is set.
        public var patchType: String?
        public var auditAnnotations: [String: String]?
        public var warnings: [String]?

        public init(
            uid: String, allowed: Bool, result: Status? = nil, patch: String? = nil,
            patchType: String? = nil, warnings: [String]? = nil
        ) {
            self.uid = uid
            self.allowed = allowed
            self.result = result
            self.patch = patch
            self.patchType = patchType
            self.warnings = warnings
        }
    }
}

/// `admissionregistration.k8s.io/v1.MutatingWebhookConfiguration`.
public struct MutatingWebhookConfiguration: KubeResource, Hashable {
    public static let resourceType = ResourceType.mutatingWebhookConfigurations
    public var apiVersion: String? = "admissionregistration.k8s.io/v1"
    public var kind: String? = "MutatingWebhookConfiguration"
    public var metadata: ObjectMeta
    public var webhooks: [Webhook]?

    public struct Webhook: Codable, Hashable, Sendable {
        public var name: String
        public var clientConfig: ClientConfig
        public var rules: [Rule]?
        /// `Ignore` or `Fail` (the default).
        public var failurePolicy: String?
        public var matchPolicy: String?
        public var namespaceSelector: LabelSelector?
        public var objectSelector: LabelSelector?
        public var sideEffects: String?
        /// 1–30, default 10.
        public var timeoutSeconds: Int?
        public var admissionReviewVersions: [String]?
        public var reinvocationPolicy: String?

        public init(
            name: String, clientConfig: ClientConfig, rules: [Rule]? = nil, failurePolicy: String? = nil,
            namespaceSelector: LabelSelector? = nil, objectSelector: LabelSelector? = nil,
            sideEffects: String? = "None", timeoutSeconds: Int? = nil,
            admissionReviewVersions: [String]? = ["v1", "v1beta1"]
        ) {
            self.name = name
            self.clientConfig = clientConfig
            self.rules = rules
            self.failurePolicy = failurePolicy
            self.namespaceSelector = namespaceSelector
            self.objectSelector = objectSelector
            self.sideEffects = sideEffects
            self.timeoutSeconds = timeoutSeconds
            self.admissionReviewVersions = admissionReviewVersions
        }
    }

    public struct ClientConfig: Codable, Hashable, Sendable {
        public var url: String?
        public var service: ServiceReference?
        /// Base64 of the PEM bundle that signs the webhook's serving certificate.
        public var caBundle: String?

        public init(url: String? = nil, service: ServiceReference? = nil, caBundle: String? = nil) {
            self.url = url
            self.service = service
            self.caBundle = caBundle
        }
    }

    public struct ServiceReference: Codable, Hashable, Sendable {
        public var namespace: String
        public var name: String
        public var path: String?
        public var port: Int?

        public init(namespace: String, name: String, path: String? = nil, port: Int? = nil) {
            self.namespace = namespace
            self.name = name
            self.path = path
            self.port = port
        }
    }

    public struct Rule: Codable, Hashable, Sendable {
        public var operations: [String]?
        public var apiGroups: [String]?
        public var apiVersions: [String]?
        public var resources: [String]?
        public var scope: String?

        public init(
            operations: [String]? = nil, apiGroups: [String]? = nil, apiVersions: [String]? = nil,
            resources: [String]? = nil, scope: String? = nil
        ) {
            self.operations = operations
            self.apiGroups = apiGroups
            self.apiVersions = apiVersions
            self.resources = resources
            self.scope = scope
        }

        /// Whether this rule selects the operation on the resource (`*` matches anything).
        public func matches(operation: String, group: String, version: String, resource: String) -> Bool {
            func allows(_ list: [String]?, _ value: String) -> Bool {
                guard let list else { return false }
                return list.contains("*") || list.contains(value)
            }
            return allows(operations, operation) && allows(apiGroups, group) && allows(apiVersions, version)
                && allows(resources, resource)
        }
    }

    public init(metadata: ObjectMeta, webhooks: [Webhook]? = nil) {
        self.metadata = metadata
        self.webhooks = webhooks
    }
}
