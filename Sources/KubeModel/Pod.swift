/// `core/v1.Pod`, with the fields the mesh reads and writes.
public struct Pod: KubeResource, Hashable {
    public static let resourceType = ResourceType.pods
    public var apiVersion: String? = "v1"
    public var kind: String? = "Pod"
    public var metadata: ObjectMeta
    public var spec: PodSpec?
    public var status: PodStatus?

    public init(metadata: ObjectMeta, spec: PodSpec? = nil, status: PodStatus? = nil) {
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }
}

/// `core/v1.PodTemplateSpec`, carried by every workload kind.
public struct PodTemplateSpec: Codable, Hashable, Sendable {
    public var metadata: ObjectMeta?
    public var spec: PodSpec?

    public init(metadata: ObjectMeta? = nil, spec: PodSpec? = nil) {
        self.metadata = metadata
        self.spec = spec
    }
}

public struct PodSpec: Codable, Hashable, Sendable {
    public var containers: [Container]
    public var initContainers: [Container]?
    public var volumes: [Volume]?
    public var serviceAccountName: String?
    public var automountServiceAccountToken: Bool?
    public var hostNetwork: Bool?
    public var nodeName: String?
    public var restartPolicy: String?
    public var terminationGracePeriodSeconds: Int64?
    public var dnsPolicy: String?
    public var priorityClassName: String?
    public var securityContext: PodSecurityContext?
    public var enableServiceLinks: Bool?

    public init(
        containers: [Container], initContainers: [Container]? = nil, volumes: [Volume]? = nil,
        serviceAccountName: String? = nil, hostNetwork: Bool? = nil
    ) {
        self.containers = containers
        self.initContainers = initContainers
        self.volumes = volumes
        self.serviceAccountName = serviceAccountName
        self.hostNetwork = hostNetwork
    }
}

public struct PodSecurityContext: Codable, Hashable, Sendable {
    public var runAsUser: Int64?
    public var runAsGroup: Int64?
    public var runAsNonRoot: Bool?
    public var fsGroup: Int64?
    public var seccompProfile: SeccompProfile?

    public init(runAsUser: Int64? = nil, runAsGroup: Int64? = nil, runAsNonRoot: Bool? = nil, fsGroup: Int64? = nil) {
        self.runAsUser = runAsUser
        self.runAsGroup = runAsGroup
        self.runAsNonRoot = runAsNonRoot
        self.fsGroup = fsGroup
    }
}

public struct Container: Codable, Hashable, Sendable {
    public var name: String
    public var image: String?
    public var imagePullPolicy: String?
    public var command: [String]?
    public var args: [String]?
    public var env: [EnvVar]?
    public var ports: [ContainerPort]?
    public var resources: ResourceRequirements?
    public var volumeMounts: [VolumeMount]?
    public var livenessProbe: Probe?
    public var readinessProbe: Probe?
    public var startupProbe: Probe?
    public var lifecycle: Lifecycle?
    public var securityContext: SecurityContext?
    /// `Always` on an init container makes it a native sidecar (Kubernetes 1.29+).
    public var restartPolicy: String?
    public var terminationMessagePolicy: String?

    public init(
        name: String, image: String? = nil, command: [String]? = nil, args: [String]? = nil,
        env: [EnvVar]? = nil, ports: [ContainerPort]? = nil
    ) {
        self.name = name
        self.image = image
        self.command = command
        self.args = args
        self.env = env
        self.ports = ports
    }
}

public struct ContainerPort: Codable, Hashable, Sendable {
    public var name: String?
    public var containerPort: Int
    public var `protocol`: String?

    public init(name: String? = nil, containerPort: Int, protocol: String? = nil) {
        self.name = name
        self.containerPort = containerPort
        self.protocol = `protocol`
    }
}

public struct EnvVar: Codable, Hashable, Sendable {
    public var name: String
    public var value: String?
    public var valueFrom: EnvVarSource?

    public init(name: String, value: String? = nil, valueFrom: EnvVarSource? = nil) {
        self.name = name
        self.value = value
        self.valueFrom = valueFrom
    }
}

public struct EnvVarSource: Codable, Hashable, Sendable {
    public var fieldRef: ObjectFieldSelector?
    public var resourceFieldRef: ResourceFieldSelector?
    public var secretKeyRef: KeySelector?
    public var configMapKeyRef: KeySelector?

    public init(
        fieldRef: ObjectFieldSelector? = nil, resourceFieldRef: ResourceFieldSelector? = nil,
        secretKeyRef: KeySelector? = nil, configMapKeyRef: KeySelector? = nil
    ) {
        self.fieldRef = fieldRef
        self.resourceFieldRef = resourceFieldRef
        self.secretKeyRef = secretKeyRef
        self.configMapKeyRef = configMapKeyRef
    }
}

public struct ObjectFieldSelector: Codable, Hashable, Sendable {
    public var apiVersion: String?
    public var fieldPath: String

    public init(apiVersion: String? = nil, fieldPath: String) {
        self.apiVersion = apiVersion
        self.fieldPath = fieldPath
    }
}

public struct ResourceFieldSelector: Codable, Hashable, Sendable {
    public var containerName: String?
    public var resource: String
    public var divisor: String?

    public init(containerName: String? = nil, resource: String, divisor: String? = nil) {
        self.containerName = containerName
        self.resource = resource
        self.divisor = divisor
    }
}

public struct KeySelector: Codable, Hashable, Sendable {
    public var name: String?
    public var key: String
    public var optional: Bool?

    public init(name: String? = nil, key: String, optional: Bool? = nil) {
        self.name = name
        self.key = key
        self.optional = optional
    }
}

/// Requests and limits as Kubernetes quantities in text form (`100m`, `64Mi`).
public struct ResourceRequirements: Codable, Hashable, Sendable {
    public var limits: [String: String]?
    public var requests: [String: String]?

    public init(limits: [String: String]? = nil, requests: [String: String]? = nil) {
        self.limits = limits
        self.requests = requests
    }
}

public struct VolumeMount: Codable, Hashable, Sendable {
    public var name: String
    public var mountPath: String
    public var readOnly: Bool?
    public var subPath: String?

    public init(name: String, mountPath: String, readOnly: Bool? = nil, subPath: String? = nil) {
        self.name = name
        self.mountPath = mountPath
        self.readOnly = readOnly
        self.subPath = subPath
    }
}

public struct Probe: Codable, Hashable, Sendable {
    public var httpGet: HTTPGetAction?
    public var tcpSocket: TCPSocketAction?
    public var exec: ExecAction?
    public var initialDelaySeconds: Int?
    public var periodSeconds: Int?
    public var timeoutSeconds: Int?
    public var failureThreshold: Int?
    public var successThreshold: Int?

    public init(
        httpGet: HTTPGetAction? = nil, tcpSocket: TCPSocketAction? = nil, exec: ExecAction? = nil,
        initialDelaySeconds: Int? = nil, periodSeconds: Int? = nil, timeoutSeconds: Int? = nil,
        failureThreshold: Int? = nil
    ) {
        self.httpGet = httpGet
        self.tcpSocket = tcpSocket
        self.exec = exec
        self.initialDelaySeconds = initialDelaySeconds
        self.periodSeconds = periodSeconds
        self.timeoutSeconds = timeoutSeconds
        self.failureThreshold = failureThreshold
    }
}

public struct HTTPGetAction: Codable, Hashable, Sendable {
    public var path: String?
    public var port: IntOrString
    public var scheme: String?

    public init(path: String? = nil, port: IntOrString, scheme: String? = nil) {
        self.path = path
        self.port = port
        self.scheme = scheme
    }
}

public struct TCPSocketAction: Codable, Hashable, Sendable {
    public var port: IntOrString

    public init(port: IntOrString) {
        self.port = port
    }
}

public struct ExecAction: Codable, Hashable, Sendable {
    public var command: [String]?

    public init(command: [String]? = nil) {
        self.command = command
    }
}

public struct Lifecycle: Codable, Hashable, Sendable {
    public var postStart: LifecycleHandler?
    public var preStop: LifecycleHandler?

    public init(postStart: LifecycleHandler? = nil, preStop: LifecycleHandler? = nil) {
        self.postStart = postStart
        self.preStop = preStop
    }
}

public struct LifecycleHandler: Codable, Hashable, Sendable {
    public var exec: ExecAction?
    public var httpGet: HTTPGetAction?

    public init(exec: ExecAction? = nil, httpGet: HTTPGetAction? = nil) {
        self.exec = exec
        self.httpGet = httpGet
    }
}

public struct SecurityContext: Codable, Hashable, Sendable {
    public var runAsUser: Int64?
    public var runAsGroup: Int64?
    public var runAsNonRoot: Bool?
    public var readOnlyRootFilesystem: Bool?
    public var allowPrivilegeEscalation: Bool?
    public var privileged: Bool?
    public var capabilities: Capabilities?
    public var seccompProfile: SeccompProfile?

    public init(
        runAsUser: Int64? = nil, runAsGroup: Int64? = nil, runAsNonRoot: Bool? = nil,
        readOnlyRootFilesystem: Bool? = nil, allowPrivilegeEscalation: Bool? = nil, privileged: Bool? = nil,
        capabilities: Capabilities? = nil, seccompProfile: SeccompProfile? = nil
    ) {
        self.runAsUser = runAsUser
        self.runAsGroup = runAsGroup
        self.runAsNonRoot = runAsNonRoot
        self.readOnlyRootFilesystem = readOnlyRootFilesystem
        self.allowPrivilegeEscalation = allowPrivilegeEscalation
        self.privileged = privileged
        self.capabilities = capabilities
        self.seccompProfile = seccompProfile
    }
}

public struct Capabilities: Codable, Hashable, Sendable {
    public var add: [String]?
    public var drop: [String]?

    public init(add: [String]? = nil, drop: [String]? = nil) {
        self.add = add
        self.drop = drop
    }
}

public struct SeccompProfile: Codable, Hashable, Sendable {
    public var type: String

    public init(type: String) {
        self.type = type
    }
}

public struct Volume: Codable, Hashable, Sendable {
    public var name: String
    public var emptyDir: EmptyDirVolumeSource?
    public var secret: SecretVolumeSource?
    public var configMap: ConfigMapVolumeSource?
    public var projected: ProjectedVolumeSource?
    public var downwardAPI: DownwardAPIVolumeSource?
    public var hostPath: HostPathVolumeSource?
    public var persistentVolumeClaim: PersistentVolumeClaimVolumeSource?

    public init(
        name: String, emptyDir: EmptyDirVolumeSource? = nil, secret: SecretVolumeSource? = nil,
        configMap: ConfigMapVolumeSource? = nil, projected: ProjectedVolumeSource? = nil,
        downwardAPI: DownwardAPIVolumeSource? = nil
    ) {
        self.name = name
        self.emptyDir = emptyDir
        self.secret = secret
        self.configMap = configMap
        self.projected = projected
        self.downwardAPI = downwardAPI
    }
}

public struct EmptyDirVolumeSource: Codable, Hashable, Sendable {
    public var medium: String?
    public var sizeLimit: String?

    public init(medium: String? = nil, sizeLimit: String? = nil) {
        self.medium = medium
        self.sizeLimit = sizeLimit
    }
}

public struct KeyToPath: Codable, Hashable, Sendable {
    public var key: String
    public var path: String
    public var mode: Int?

    public init(key: String, path: String, mode: Int? = nil) {
        self.key = key
        self.path = path
        self.mode = mode
    }
}

public struct SecretVolumeSource: Codable, Hashable, Sendable {
    public var secretName: String?
    public var items: [KeyToPath]?
    public var optional: Bool?
    public var defaultMode: Int?

    public init(secretName: String? = nil, items: [KeyToPath]? = nil, optional: Bool? = nil) {
        self.secretName = secretName
        self.items = items
        self.optional = optional
    }
}

public struct ConfigMapVolumeSource: Codable, Hashable, Sendable {
    public var name: String?
    public var items: [KeyToPath]?
    public var optional: Bool?
    public var defaultMode: Int?

    public init(name: String? = nil, items: [KeyToPath]? = nil, optional: Bool? = nil) {
        self.name = name
        self.items = items
        self.optional = optional
    }
}

public struct ProjectedVolumeSource: Codable, Hashable, Sendable {
    public var sources: [VolumeProjection]
    public var defaultMode: Int?

    public init(sources: [VolumeProjection], defaultMode: Int? = nil) {
        self.sources = sources
        self.defaultMode = defaultMode
    }
}

public struct VolumeProjection: Codable, Hashable, Sendable {
    public var serviceAccountToken: ServiceAccountTokenProjection?
    public var configMap: ConfigMapVolumeSource?
    public var secret: SecretVolumeSource?
    public var downwardAPI: DownwardAPIVolumeSource?

    public init(
        serviceAccountToken: ServiceAccountTokenProjection? = nil, configMap: ConfigMapVolumeSource? = nil,
        secret: SecretVolumeSource? = nil, downwardAPI: DownwardAPIVolumeSource? = nil
    ) {
        self.serviceAccountToken = serviceAccountToken
        self.configMap = configMap
        self.secret = secret
        self.downwardAPI = downwardAPI
    }
}

public struct ServiceAccountTokenProjection: Codable, Hashable, Sendable {
    public var audience: String?
    public var expirationSeconds: Int64?
    public var path: String

    public init(audience: String? = nil, expirationSeconds: Int64? = nil, path: String) {
        self.audience = audience
        self.expirationSeconds = expirationSeconds
        self.path = path
    }
}

public struct DownwardAPIVolumeSource: Codable, Hashable, Sendable {
    public var items: [DownwardAPIVolumeFile]?
    public var defaultMode: Int?

    public init(items: [DownwardAPIVolumeFile]? = nil) {
        self.items = items
    }
}

public struct DownwardAPIVolumeFile: Codable, Hashable, Sendable {
    public var path: String
    public var fieldRef: ObjectFieldSelector?
    public var resourceFieldRef: ResourceFieldSelector?

    public init(path: String, fieldRef: ObjectFieldSelector? = nil, resourceFieldRef: ResourceFieldSelector? = nil) {
        self.path = path
        self.fieldRef = fieldRef
        self.resourceFieldRef = resourceFieldRef
    }
}

public struct HostPathVolumeSource: Codable, Hashable, Sendable {
    public var path: String
    public var type: String?
}

public struct PersistentVolumeClaimVolumeSource: Codable, Hashable, Sendable {
    public var claimName: String
    public var readOnly: Bool?
}

public struct PodStatus: Codable, Hashable, Sendable {
    /// `Pending`, `Running`, `Succeeded`, `Failed` or `Unknown`.
    public var phase: String?
    public var podIP: String?
    public var podIPs: [PodIP]?
    public var hostIP: String?
    public var conditions: [PodCondition]?
    public var containerStatuses: [ContainerStatus]?
    public var initContainerStatuses: [ContainerStatus]?
    public var startTime: String?

    public init(
        phase: String? = nil, podIP: String? = nil, conditions: [PodCondition]? = nil,
        containerStatuses: [ContainerStatus]? = nil
    ) {
        self.phase = phase
        self.podIP = podIP
        self.conditions = conditions
        self.containerStatuses = containerStatuses
    }
}

public struct PodIP: Codable, Hashable, Sendable {
    public var ip: String

    public init(ip: String) {
        self.ip = ip
    }
}

public struct PodCondition: Codable, Hashable, Sendable {
    public var type: String
    public var status: String
    public var reason: String?
    public var message: String?

    public init(type: String, status: String, reason: String? = nil, message: String? = nil) {
        self.type = type
        self.status = status
        self.reason = reason
        self.message = message
    }
}

public struct ContainerStatus: Codable, Hashable, Sendable {
    public var name: String
    public var ready: Bool
    public var restartCount: Int
    public var image: String?
    public var started: Bool?

    public init(name: String, ready: Bool, restartCount: Int = 0, image: String? = nil) {
        self.name = name
        self.ready = ready
        self.restartCount = restartCount
        self.image = image
    }
}
