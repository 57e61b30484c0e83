import Foundation
import KubeModel
import LinkerdCore
import LinkerdInject

/// When the mesh auditor may roll a workload to give its pods a current proxy, and how it does it.
///
/// The rules, in the order they are checked:
/// 1. Only Deployments, StatefulSets and DaemonSets are restarted (`Kind`); a pod of a ReplicaSet counts for its
///    Deployment. Jobs, CronJobs and bare pods never are: recreating them reruns work or loses the pod.
/// 2. Never in the control-plane namespace, nor a workload whose pod template already holds the
///    `linkerd-proxy` container (`linkerd inject --manual`): a restart brings the same proxy back. (The pod-level
///    side of this rule is `restartCanFix`.)
/// 3. Opt-in: `config.linkerd.io/auto-restart` on the workload's own metadata decides (`enabled` or `disabled`);
///    without it, the namespace's value decides; absent everywhere means no. Any other value, at whichever level
///    decides, means no: a typo must not start rollouts.
/// 4. At most one restart per workload per `interval`, measured on the caller's clock: the policy remembers the
///    restarts it made, and the pod template's `kubectl.kubernetes.io/restartedAt` (written by this policy or by
///    `kubectl rollout restart`) covers restarts it does not remember (another controller replica, a restart). A
///    `restartedAt` later than `now + interval` (written by hand, say year 9999) counts as `now`: it delays one
///    interval, no more.
/// 5. Not while the workload's previous rollout is still in progress (its status lags its spec).
///
/// A restart is exactly what `kubectl rollout restart` does: a patch of the pod template's
/// `kubectl.kubernetes.io/restartedAt` annotation, which makes the workload controller roll its pods.
public struct RestartPolicy: Sendable {
    /// The workload kinds that can be restarted.
    public enum Kind: String, Hashable, Sendable, CaseIterable {
        case deployment
        case statefulSet = "statefulset"
        case daemonSet = "daemonset"

        /// The kind of a resolved owner (`WorkloadOwner.kind`, lower-cased); nil for every kind that is never
        /// restarted (`job`, `cronjob`, `pod`, an orphan `replicaset`, ...).
        public init?(ownerKind: String) {
            self.init(rawValue: ownerKind.lowercased())
        }

        public var resourceType: ResourceType {
            switch self {
            case .deployment: .deployments
            case .statefulSet: .statefulSets
            case .daemonSet: .daemonSets
            }
        }
    }

    /// One restartable workload.
    public struct Target: Hashable, Sendable, CustomStringConvertible {
        public var kind: Kind
        public var namespace: String
        public var name: String

        public init(kind: Kind, namespace: String, name: String) {
            self.kind = kind
            self.namespace = namespace
            self.name = name
        }

        /// `deployment/web`, as kubectl names it.
        public var description: String { "\(kind.rawValue)/\(name)" }
    }

    /// What the policy reads from a workload object.
    public struct Workload: Hashable, Sendable {
        public var target: Target
        /// The workload's own annotations (not its pod template's).
        public var annotations: [String: String]
        /// The pod template's `kubectl.kubernetes.io/restartedAt`; nil when absent or not a timestamp.
        public var restartedAt: Date?
        /// Whether the workload's controller has not finished rolling out its current spec.
        public var rolloutInProgress: Bool
        /// Whether the pod template holds a container or init container named `linkerd-proxy`.
        public var templateHasProxy: Bool

        public init(
            target: Target, annotations: [String: String] = [:], restartedAt: Date? = nil,
            rolloutInProgress: Bool = false, templateHasProxy: Bool = false
        ) {
            self.target = target
            self.annotations = annotations
            self.restartedAt = restartedAt
            self.rolloutInProgress = rolloutInProgress
            self.templateHasProxy = templateHasProxy
        }

        /// Reads a workload object as the API returns it.
        ///
        /// A rollout is in progress when `status.observedGeneration` is behind `metadata.generation`, or when the
        /// status counts fewer updated pods than wanted (Deployment and StatefulSet: `updatedReplicas` below
        /// `spec.replicas`, default 1, and for a Deployment also old pods still counted in `replicas`; DaemonSet:
        /// `updatedNumberScheduled` below `desiredNumberScheduled`). A missing status says nothing is in
        /// progress, so a workload whose controller never reported is not blocked forever.
        public init(kind: Kind, object: JSONValue) {
            let metadata = object["metadata"]
            let status = object["status"]
            var inProgress = false
            if let generation = Self.integer(metadata?["generation"]),
                let observed = Self.integer(status?["observedGeneration"]), observed < generation
            {
                inProgress = true
            }
            switch kind {
            case .deployment, .statefulSet:
                if let updated = Self.integer(status?["updatedReplicas"]) {
                    let wanted = Self.integer(object["spec"]?["replicas"]) ?? 1
                    let current = Self.integer(status?["replicas"]) ?? updated
                    if updated < wanted || (kind == .deployment && current > updated) { inProgress = true }
                }
            case .daemonSet:
                if let updated = Self.integer(status?["updatedNumberScheduled"]),
                    let desired = Self.integer(status?["desiredNumberScheduled"]), updated < desired
                {
                    inProgress = true
                }
            }
            let template = object["spec"]?["template"]
            let restartedAt = template?["metadata"]?["annotations"]?[RestartPolicy.restartedAtAnnotation]?.stringValue
            let templateSpec = template?["spec"]
            let containers =
                (templateSpec?["containers"]?.arrayValue ?? []) + (templateSpec?["initContainers"]?.arrayValue ?? [])
            self.init(
                target: Target(
                    kind: kind, namespace: metadata?["namespace"]?.stringValue ?? "",
                    name: metadata?["name"]?.stringValue ?? ""),
                annotations: Self.strings(metadata?["annotations"]),
                restartedAt: restartedAt.flatMap(KubeTime.parse),
                rolloutInProgress: inProgress,
                templateHasProxy: containers.contains { $0["name"]?.stringValue == MeshKeys.proxyContainerName })
        }

        private static func integer(_ value: JSONValue?) -> Int64? {
            switch value {
            case .integer(let number): number
            case .double(let number) where number == number.rounded(): Int64(exactly: number)
            default: nil
            }
        }

        private static func strings(_ value: JSONValue?) -> [String: String] {
            var strings: [String: String] = [:]
            for (key, value) in value?.objectValue ?? [:] {
                if let text = value.stringValue { strings[key] = text }
            }
            return strings
        }
    }

    /// Where a `config.linkerd.io/auto-restart` value was read.
    public enum AnnotationLevel: String, Hashable, Sendable {
        case workload
        case namespace
    }

    /// Why a workload is not restarted now.
    public enum Skip: Hashable, Sendable {
        case controlPlane
        /// The pod template already holds the proxy (`linkerd inject --manual`): a restart cannot replace it.
        case proxyInTemplate
        /// Neither the workload nor its namespace says `enabled`.
        case notOptedIn
        /// The workload says `disabled` (or, without a value of its own, its namespace does).
        case optedOut
        case invalidAnnotation(AnnotationLevel, value: String)
        /// Restarted less than `interval` ago; eligible again at `until`.
        case recentlyRestarted(until: Date)
        case rolloutInProgress
    }

    public enum Decision: Hashable, Sendable {
        case restart
        case skip(Skip)
    }

    /// The pod template annotation `kubectl rollout restart` sets.
    public static let restartedAtAnnotation = "kubectl.kubernetes.io/restartedAt"
    /// How the webhook's `linkerd.io/created-by` value starts (`MeshKeys.createdBy`: `linkerd/proxy-injector
    /// <version>`); the CLI writes `linkerd/cli <version>`.
    public static let webhookCreatedByPrefix = "linkerd/proxy-injector"

    /// The shortest time between two restarts of one workload.
    public var interval: Duration
    public var controlPlaneNamespace: String
    /// When this policy last restarted each workload, within the last `interval`.
    private var restarts: [Target: Date] = [:]

    /// - Parameter interval: default 10 minutes.
    public init(controlPlaneNamespace: String, interval: Duration = .seconds(600)) {
        self.interval = interval
        self.controlPlaneNamespace = controlPlaneNamespace
    }

    /// The decision for `workload` at `now`, given its namespace's annotations. Does not remember anything: call
    /// `noteRestart` when acting on `.restart`.
    public func decide(_ workload: Workload, namespaceAnnotations: [String: String], now: Date) -> Decision {
        if workload.target.namespace == controlPlaneNamespace {
            return .skip(.controlPlane)
        }
        if workload.templateHasProxy {
            return .skip(.proxyInTemplate)
        }
        if let skip = Self.optIn(workload: workload.annotations, namespace: namespaceAnnotations) {
            return .skip(skip)
        }
        if let until = restartedUntil(workload, now: now) {
            return .skip(.recentlyRestarted(until: until))
        }
        if workload.rolloutInProgress {
            return .skip(.rolloutInProgress)
        }
        return .restart
    }

    /// Whether a restart can fix `finding` on a pod annotated `podAnnotations`, before looking at its workload: a
    /// missing proxy, or an outdated one the webhook injected (`linkerd.io/created-by` starts with
    /// `linkerd/proxy-injector`). Any other proxy (`linkerd inject --manual`, or an injector that did not say) came
    /// with the pod's template, and a restart would recreate it as outdated as it is, every interval, forever.
    public static func restartCanFix(_ finding: MeshFinding, podAnnotations: [String: String]) -> Bool {
        switch finding {
        case .proxyMissing: true
        case .proxyOutdated: podAnnotations[MeshKeys.createdBy]?.hasPrefix(webhookCreatedByPrefix) == true
        }
    }

    /// When `target` may be restarted again, if this policy restarted it less than `interval` before `now`. Lets
    /// a caller skip reading the workload when the answer cannot be `.restart`.
    public func remembersRestart(of target: Target, now: Date) -> Date? {
        guard let last = restarts[target] else { return nil }
        let until = last.addingTimeInterval(interval.inSeconds)
        return until > now ? until : nil
    }

    /// Remembers a restart of `target` at `at` (call it before patching, so a concurrent decision for the same
    /// workload sees it), and forgets restarts older than `interval`.
    public mutating func noteRestart(of target: Target, at date: Date) {
        let horizon = date.addingTimeInterval(-interval.inSeconds)
        restarts = restarts.filter { $0.value > horizon }
        restarts[target] = date
    }

    /// Forgets the restart noted at `date`, when the patch carrying it failed.
    public mutating func retractRestart(of target: Target, at date: Date) {
        if restarts[target] == date { restarts[target] = nil }
    }

    /// The JSON merge patch of `kubectl rollout restart` at `date` (RFC 3339, UTC).
    public static func restartPatch(at date: Date) -> Patch {
        .merge([
            "spec": ["template": ["metadata": ["annotations": [restartedAtAnnotation: .string(KubeTime.format(date))]]]]
        ])
    }

    /// nil when the workload opted in; otherwise why not (rule 3).
    private static func optIn(workload: [String: String], namespace: [String: String]) -> Skip? {
        let (value, level): (String?, AnnotationLevel) =
            if let own = workload[MeshKeys.autoRestart], !own.isEmpty {
                (own, .workload)
            } else {
                (namespace[MeshKeys.autoRestart], .namespace)
            }
        switch value {
        case "enabled": return nil
        case "disabled": return .optedOut
        case nil, "": return .notOptedIn
        case let value?: return .invalidAnnotation(level, value: value)
        }
    }

    /// The end of the quiet period after the latest restart, remembered or read from the template (rule 4). A
    /// template time beyond `now + interval` counts as `now`.
    private func restartedUntil(_ workload: Workload, now: Date) -> Date? {
        let template = workload.restartedAt.map { $0 > now.addingTimeInterval(interval.inSeconds) ? now : $0 }
        let seen = [restarts[workload.target], template].compactMap { $0 }.max()
        guard let seen else { return nil }
        let until = seen.addingTimeInterval(interval.inSeconds)
        return until > now ? until : nil
    }
}
