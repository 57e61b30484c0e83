/// A workload kind that stamps out pods from a template.
public protocol PodTemplateWorkload: KubeResource {
    var podTemplate: PodTemplateSpec? { get }
}

/// `apps/v1.Deployment`.
public struct Deployment: PodTemplateWorkload, Hashable {
    public static let resourceType = ResourceType.deployments
    public var apiVersion: String? = "apps/v1"
    public var kind: String? = "Deployment"
    public var metadata: ObjectMeta
    public var spec: Spec?
    public var status: WorkloadStatus?

    public struct Spec: Codable, Hashable, Sendable {
        public var replicas: Int?
        public var selector: LabelSelector?
        public var template: PodTemplateSpec
        public var paused: Bool?
        /// Kept as JSON so it round-trips; the mesh never interprets it.
        public var strategy: JSONValue?

        public init(replicas: Int? = nil, selector: LabelSelector? = nil, template: PodTemplateSpec) {
            self.replicas = replicas
            self.selector = selector
            self.template = template
        }
    }

    public init(metadata: ObjectMeta, spec: Spec? = nil) {
        self.metadata = metadata
        self.spec = spec
    }

    public var podTemplate: PodTemplateSpec? { spec?.template }
}

/// `apps/v1.ReplicaSet`.
public struct ReplicaSet: PodTemplateWorkload, Hashable {
    public static let resourceType = ResourceType.replicaSets
    public var apiVersion: String? = "apps/v1"
    public var kind: String? = "ReplicaSet"
    public var metadata: ObjectMeta
    public var spec: Spec?
    public var status: WorkloadStatus?

    public struct Spec: Codable, Hashable, Sendable {
        public var replicas: Int?
        public var selector: LabelSelector?
        public var template: PodTemplateSpec?

        public init(replicas: Int? = nil, selector: LabelSelector? = nil, template: PodTemplateSpec? = nil) {
            self.replicas = replicas
            self.selector = selector
            self.template = template
        }
    }

    public init(metadata: ObjectMeta, spec: Spec? = nil) {
        self.metadata = metadata
        self.spec = spec
    }

    public var podTemplate: PodTemplateSpec? { spec?.template }
}

/// `apps/v1.StatefulSet`.
public struct StatefulSet: PodTemplateWorkload, Hashable {
    public static let resourceType = ResourceType.statefulSets
    public var apiVersion: String? = "apps/v1"
    public var kind: String? = "StatefulSet"
    public var metadata: ObjectMeta
    public var spec: Spec?
    public var status: WorkloadStatus?

    public struct Spec: Codable, Hashable, Sendable {
        public var replicas: Int?
        public var serviceName: String?
        public var selector: LabelSelector?
        public var template: PodTemplateSpec
        public var updateStrategy: JSONValue?

        public init(
            replicas: Int? = nil, serviceName: String? = nil, selector: LabelSelector? = nil,
            template: PodTemplateSpec
        ) {
            self.replicas = replicas
            self.serviceName = serviceName
            self.selector = selector
            self.template = template
        }
    }

    public init(metadata: ObjectMeta, spec: Spec? = nil) {
        self.metadata = metadata
        self.spec = spec
    }

    public var podTemplate: PodTemplateSpec? { spec?.template }
}

/// `apps/v1.DaemonSet`.
public struct DaemonSet: PodTemplateWorkload, Hashable {
    public static let resourceType = ResourceType.daemonSets
    public var apiVersion: String? = "apps/v1"
    public var kind: String? = "DaemonSet"
    public var metadata: ObjectMeta
    public var spec: Spec?
    public var status: JSONValue?

    public struct Spec: Codable, Hashable, Sendable {
        public var selector: LabelSelector?
        public var template: PodTemplateSpec
        public var updateStrategy: JSONValue?

        public init(selector: LabelSelector? = nil, template: PodTemplateSpec) {
            self.selector = selector
            self.template = template
        }
    }

    public init(metadata: ObjectMeta, spec: Spec? = nil) {
        self.metadata = metadata
        self.spec = spec
    }

    public var podTemplate: PodTemplateSpec? { spec?.template }
}

/// `batch/v1.Job`.
public struct Job: PodTemplateWorkload, Hashable {
    public static let resourceType = ResourceType.jobs
    public var apiVersion: String? = "batch/v1"
    public var kind: String? = "Job"
    public var metadata: ObjectMeta
    public var spec: Spec?
    public var status: JSONValue?

    public struct Spec: Codable, Hashable, Sendable {
        public var template: PodTemplateSpec
        public var parallelism: Int?
        public var completions: Int?
        public var backoffLimit: Int?

        public init(template: PodTemplateSpec, parallelism: Int? = nil, completions: Int? = nil) {
            self.template = template
            self.parallelism = parallelism
            self.completions = completions
        }
    }

    public init(metadata: ObjectMeta, spec: Spec? = nil) {
        self.metadata = metadata
        self.spec = spec
    }

    public var podTemplate: PodTemplateSpec? { spec?.template }
}

/// `batch/v1.CronJob`.
public struct CronJob: PodTemplateWorkload, Hashable {
    public static let resourceType = ResourceType.cronJobs
    public var apiVersion: String? = "batch/v1"
    public var kind: String? = "CronJob"
    public var metadata: ObjectMeta
    public var spec: Spec?
    public var status: JSONValue?

    public struct Spec: Codable, Hashable, Sendable {
        public var schedule: String
        public var suspend: Bool?
        public var jobTemplate: JobTemplate

        public init(schedule: String, jobTemplate: JobTemplate) {
            self.schedule = schedule
            self.jobTemplate = jobTemplate
        }
    }

    public struct JobTemplate: Codable, Hashable, Sendable {
        public var metadata: ObjectMeta?
        public var spec: Job.Spec

        public init(metadata: ObjectMeta? = nil, spec: Job.Spec) {
            self.metadata = metadata
            self.spec = spec
        }
    }

    public init(metadata: ObjectMeta, spec: Spec? = nil) {
        self.metadata = metadata
        self.spec = spec
    }

    public var podTemplate: PodTemplateSpec? { spec?.jobTemplate.spec.template }
}

/// The replica counters shared by Deployment, ReplicaSet and StatefulSet status.
public struct WorkloadStatus: Codable, Hashable, Sendable {
    public var observedGeneration: Int64?
    public var replicas: Int?
    public var readyReplicas: Int?
    public var updatedReplicas: Int?
    public var availableReplicas: Int?

    public init(replicas: Int? = nil, readyReplicas: Int? = nil) {
        self.replicas = replicas
        self.readyReplicas = readyReplicas
    }
}
