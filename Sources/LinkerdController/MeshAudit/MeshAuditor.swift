import Foundation
import KubeModel
import KubeRuntime
import LinkerdCore
import LinkerdInject
import Logging
import Metrics
import ServiceLifecycle
import Synchronization

/// The reconcile loop that keeps the mesh honest: it audits every pod (`MeshAudit`) and reports, counts and, when
/// the workload opted in, fixes pods that should run a proxy but do not, or run an outdated one.
///
/// Wiring: a `Reflector` of Pods (all namespaces) feeds a `Controller` keyed by pod; a `Reflector` of Namespaces
/// re-enqueues a namespace's pods when its annotations or labels change; the mesh configuration provider is polled
/// every `configurationPollInterval` and a changed configuration re-enqueues every pod. Reconciling a pod
/// (`MeshAuditReconciler`), unless the webhook is never called for it (`WebhookScope`):
/// - `proxyMissing`: a Warning Event `ProxyMissing` on the pod and on its owner;
/// - `proxyOutdated`: a Normal Event `ProxyOutdated` on the pod and on its owner, naming what differs;
/// - Events are sent once per pod and finding (not on every resync), remembered in memory: a new leader reports
///   the findings it sees again;
/// - gauges `linkerd_controller_pods_proxy_missing` and `linkerd_controller_pods_proxy_outdated`
///   `{namespace, owner_kind, owner}`: set to 0 and then forgotten when an owner has no such pod left (so that bare
///   pods and orphan ReplicaSets do not pile up in memory); all set to 0 and forgotten when `run()` ends (a former
///   leader does not export stale values), and published again when it runs again;
/// - when `RestartPolicy` allows (opt-in with `config.linkerd.io/auto-restart: enabled`) and a restart can fix the
///   pod (`RestartPolicy.restartCanFix`: not a proxy added by `linkerd inject --manual`): a rolling restart of the
///   owning Deployment, StatefulSet or DaemonSet, a Normal Event `RestartedForMesh` on it, and
///   `linkerd_controller_workload_restarts_total{namespace, kind, reason}`.
///
/// It writes to the cluster, so it is meant to run under leader election (`LeaderElectedServices`); it may be run
/// again after it stops, keeping what it remembers (Events sent, restarts made, findings counted). It starts
/// auditing once the mesh configuration could be read (by this run or an earlier one) and the namespaces are listed;
/// until the configuration can be read it retries every `configurationPollInterval`, logging each failure. `run()`
/// returns normally when cancelled or shut down.
public final class MeshAuditor: ServiceLifecycle.Service, Sendable {
    public struct Configuration: Sendable {
        /// How often the mesh configuration provider is called. Default 30 seconds.
        public var configurationPollInterval: Duration
        /// The shortest time between two restarts of one workload (`RestartPolicy.interval`). Default 10 minutes.
        public var restartInterval: Duration
        /// Pods reconciled concurrently (at least 1). Default 2.
        public var workers: Int
        /// The Events' reporting component. Default `linkerd-mesh-auditor`.
        public var eventComponent: String

        public init(
            configurationPollInterval: Duration = .seconds(30), restartInterval: Duration = .seconds(600),
            workers: Int = 2, eventComponent: String = "linkerd-mesh-auditor"
        ) {
            self.configurationPollInterval = configurationPollInterval
            self.restartInterval = restartInterval
            self.workers = workers
            self.eventComponent = eventComponent
        }
    }

    private let configuration: Configuration
    private let meshConfiguration: @Sendable () throws -> MeshConfiguration
    private let clock: any WallClock
    private let logger: Logger
    private let pods: Reflector<Pod>
    private let namespaces: Reflector<Namespace>
    private let controller: Controller<Pod>
    /// Internal for tests.
    let reconciler: MeshAuditReconciler

    /// - Parameters:
    ///   - api: the API server: watches Pods and Namespaces, reads ReplicaSets, Jobs and the restartable workloads,
    ///     patches those, creates Events.
    ///   - meshConfiguration: the current mesh configuration (e.g. `MeshConfigurationSource.current`); called at
    ///     start and every `configurationPollInterval`. A throw keeps the previous configuration.
    ///   - clock: times polls, restarts, Events and the work queue's delays.
    ///   - metricsFactory: where the gauges, the restart counter and the runtime's metrics go.
    public init(
        api: any KubeAPI, meshConfiguration: @escaping @Sendable () throws -> MeshConfiguration,
        configuration: Configuration = Configuration(), clock: any WallClock = SystemWallClock(),
        metricsFactory: any MetricsFactory = MetricsSystem.factory,
        logger: Logger = Logger(label: "linkerd.controller.mesh-audit")
    ) {
        self.configuration = configuration
        self.meshConfiguration = meshConfiguration
        self.clock = clock
        self.logger = logger
        let pods = Reflector(watcher: Watcher<Pod>(api: api, clock: clock, logger: logger))
        let namespaces = Reflector(watcher: Watcher<Namespace>(api: api, clock: clock, logger: logger))
        let reconciler = MeshAuditReconciler(
            api: api, pods: pods.store, namespaces: namespaces.store,
            events: EventRecorder(api: api, component: configuration.eventComponent, clock: clock, logger: logger),
            restartInterval: configuration.restartInterval, clock: clock, metricsFactory: metricsFactory,
            logger: logger)
        let controller = Controller(
            name: "mesh-audit", reflector: pods, workers: max(1, configuration.workers), clock: clock,
            metricsFactory: metricsFactory, logger: logger
        ) { key in
            try await reconciler.reconcile(key)
        }
        namespaces.onChange { [store = pods.store] change in
            guard
                change.old?.metadata.annotations != change.new?.metadata.annotations
                    || change.old?.metadata.labels != change.new?.metadata.labels
            else { return }
            for pod in store.list(namespace: change.key.name) {
                controller.enqueue(pod.key)
            }
        }
        self.pods = pods
        self.namespaces = namespaces
        self.reconciler = reconciler
        self.controller = controller
    }

    public func run() async throws {
        defer { reconciler.withdrawGauges() }
        do {
            try await cancelWhenGracefulShutdown {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await self.pods.run() }
                    group.addTask { try await self.namespaces.run() }
                    // Run again, the configuration installed before is kept: an unchanged one is no reason to wait.
                    self.loadConfiguration()
                    while !self.reconciler.isConfigured {
                        try await self.clock.sleep(for: self.configuration.configurationPollInterval)
                        self.loadConfiguration()
                    }
                    // Without its namespace's annotations a pod would look not meshable rather than missing its proxy.
                    await self.namespaces.store.waitUntilSynced()
                    try Task.checkCancellation()
                    self.reconciler.publishGauges()
                    group.addTask { try await self.controller.run() }
                    group.addTask { try await self.pollConfiguration() }
                    try await group.waitForAll()
                }
            }
        } catch is CancellationError {
            return
        }
    }

    /// Polls the provider; a changed configuration re-enqueues every pod.
    private func pollConfiguration() async throws {
        while true {
            try await clock.sleep(for: configuration.configurationPollInterval)
            if loadConfiguration() {
                logger.info("mesh configuration changed; auditing every pod again")
                for key in pods.store.keys { controller.enqueue(key) }
            }
        }
    }

    /// Reads the configuration; true when it was installed (the first one, or a change).
    @discardableResult
    private func loadConfiguration() -> Bool {
        do {
            return reconciler.install(try meshConfiguration())
        } catch {
            logger.warning(
                "cannot read the mesh configuration; keeping the previous one", metadata: ["error": "\(error)"])
            return false
        }
    }
}

/// The per-pod work of `MeshAuditor`: audit, remember, count, restart, report.
final class MeshAuditReconciler: Sendable {
    private struct State {
        var audit: MeshAudit?
        var book = MeshAuditBook()
        var policy: RestartPolicy
        var gauges: [MeshAuditBook.OwnerGroup: (proxyMissing: Gauge, proxyOutdated: Gauge)] = [:]
    }

    private let api: any KubeAPI
    private let pods: Store<Pod>
    private let namespaces: Store<Namespace>
    private let events: EventRecorder
    private let owners: OwnerResolver
    private let restartInterval: Duration
    private let clock: any WallClock
    private let metricsFactory: any MetricsFactory
    private let logger: Logger
    private let state: Mutex<State>

    init(
        api: any KubeAPI, pods: Store<Pod>, namespaces: Store<Namespace>, events: EventRecorder,
        restartInterval: Duration, clock: any WallClock, metricsFactory: any MetricsFactory, logger: Logger
    ) {
        self.api = api
        self.pods = pods
        self.namespaces = namespaces
        self.events = events
        owners = OwnerResolver(api: api)
        self.restartInterval = restartInterval
        self.clock = clock
        self.metricsFactory = metricsFactory
        self.logger = logger
        state = Mutex(State(policy: RestartPolicy(controlPlaneNamespace: "", interval: restartInterval)))
    }

    /// Whether a configuration is installed.
    var isConfigured: Bool {
        state.withLock { $0.audit != nil }
    }

    /// Uses `configuration` from now on; false when it is the one already in use.
    func install(_ configuration: MeshConfiguration) -> Bool {
        state.withLock { state in
            guard state.audit?.configuration != configuration else { return false }
            state.audit = MeshAudit(configuration: configuration)
            state.policy.controlPlaneNamespace = configuration.controlPlaneNamespace
            return true
        }
    }

    /// Audits the pod `key` as it is in the store now.
    ///
    /// - Returns: `.requeue(after:)` for a finding on a restartable workload (to look at its opt-in and rate limit
    ///   again, since workloads are not watched), `.done` otherwise.
    /// - Throws: the error of reading or patching the workload to restart; the Events are sent first.
    func reconcile(_ key: ObjectKey) async throws -> ReconcileAction {
        // `MeshAuditor` starts the controller only after installing a configuration; this is the type's guard.
        guard let audit = state.withLock({ $0.audit }) else {
            return .requeue(after: .seconds(1))
        }
        guard let pod = pods.get(key), let namespace = key.namespace else {
            forget(key)
            return .done
        }
        let namespaceMetadata = namespaces.get(ObjectKey(namespace: nil, name: namespace))?.metadata
        let namespaceAnnotations = namespaceMetadata?.annotations ?? [:]
        let verdict = try audit.audit(
            pod, namespaceAnnotations: namespaceAnnotations, namespaceLabels: namespaceMetadata?.labels ?? [:])
        guard let finding = verdict.finding else {
            forget(key)
            return .done
        }
        let resolved = await owners.resolve(namespace: namespace, ownerReferences: pod.metadata.ownerReferences)
        let group = MeshAuditBook.OwnerGroup(
            namespace: namespace, ownerKind: resolved?.owner.kind ?? "pod", owner: resolved?.owner.name ?? key.name)
        let uid = pod.metadata.uid
        let eventsDue = state.withLock { state in
            let update = state.book.record(finding, pod: key, uid: uid, group: group)
            Self.setGauges(update.changedCounts, in: &state, factory: metricsFactory)
            return update.eventsDue
        }

        var action = ReconcileAction.done
        var restarted = false
        var proxyFromManifest = !RestartPolicy.restartCanFix(finding, podAnnotations: pod.metadata.annotations ?? [:])
        var restartError: (any Error)?
        if !proxyFromManifest, let resolved, let kind = RestartPolicy.Kind(ownerKind: resolved.owner.kind) {
            let target = RestartPolicy.Target(kind: kind, namespace: namespace, name: resolved.owner.name)
            do {
                let outcome = try await restartIfAllowed(
                    target, reference: resolved.reference, finding: finding, pod: key.name,
                    namespaceAnnotations: namespaceAnnotations)
                restarted = outcome.restarted
                proxyFromManifest = outcome.proxyInTemplate
                action = outcome.lookAgainAfter.map { .requeue(after: $0) } ?? .done
            } catch {
                restartError = error
            }
        }

        if eventsDue {
            let podReference = ObjectReference(
                apiVersion: "v1", kind: "Pod", namespace: namespace, name: key.name, uid: uid)
            let (type, reason): (EventType, String) =
                switch finding {
                case .proxyMissing: (.warning, MeshAuditEvents.proxyMissingReason)
                case .proxyOutdated: (.normal, MeshAuditEvents.proxyOutdatedReason)
                }
            let message = MeshAuditEvents.message(
                for: finding, pod: key.name, namespace: namespace, owner: resolved?.owner, restarting: restarted,
                proxyFromManifest: proxyFromManifest)
            await events.record(type, reason: reason, message: message, about: podReference)
            if let resolved {
                await events.record(type, reason: reason, message: message, about: resolved.reference)
            }
            // Stopping (shutdown or lost leadership) may have dropped an Event: the Controller keeps the key due, and
            // the Events are sent again rather than lost.
            try Task.checkCancellation()
            state.withLock { $0.book.markReported(finding, pod: key, uid: uid) }
            logger.info(
                "reported a mesh finding",
                metadata: ["reason": "\(reason)", "pod": "\(key)", "owner": "\(group.ownerKind)/\(group.owner)"])
        }
        if let restartError { throw restartError }
        return action
    }

    /// Restarts `target` if the policy allows it now.
    ///
    /// - Returns: whether it was restarted; when to look again (the end of the quiet period, else the interval),
    ///   nil when never (the proxy is in the workload's template: only a change of the template, which rolls the
    ///   pods, can fix it); and whether that was the reason.
    private func restartIfAllowed(
        _ target: RestartPolicy.Target, reference: ObjectReference, finding: MeshFinding, pod: String,
        namespaceAnnotations: [String: String]
    ) async throws -> (restarted: Bool, lookAgainAfter: Duration?, proxyInTemplate: Bool) {
        let now = clock.now()
        // Restarted by us lately: the answer cannot be yes, so do not even read the workload.
        if let until = state.withLock({ $0.policy.remembersRestart(of: target, now: now) }) {
            return (false, duration(from: now, to: until), false)
        }
        let object: JSONValue
        do {
            object = try await api.get(
                target.kind.resourceType, namespace: target.namespace, name: target.name, subresource: nil,
                as: JSONValue.self)
        } catch let error as KubeError where error.code == .notFound {
            return (false, restartInterval, false)
        }
        let workload = RestartPolicy.Workload(kind: target.kind, object: object)
        let decision = state.withLock { state in
            let decision = state.policy.decide(workload, namespaceAnnotations: namespaceAnnotations, now: now)
            if decision == .restart { state.policy.noteRestart(of: target, at: now) }
            return decision
        }
        switch decision {
        case .skip(.recentlyRestarted(let until)):
            return (false, duration(from: now, to: until), false)
        case .skip(.proxyInTemplate):
            logger.debug(
                "not restarting: the proxy is in the pod template",
                metadata: ["workload": "\(target.namespace)/\(target)"])
            return (false, nil, true)
        case .skip(let reason):
            logger.debug(
                "not restarting", metadata: ["workload": "\(target.namespace)/\(target)", "reason": "\(reason)"])
            return (false, restartInterval, false)
        case .restart:
            do {
                _ = try await api.patch(
                    target.kind.resourceType, namespace: target.namespace, name: target.name,
                    patch: RestartPolicy.restartPatch(at: now), subresource: nil, as: JSONValue.self)
            } catch {
                state.withLock { $0.policy.retractRestart(of: target, at: now) }
                throw error
            }
            Counter(
                label: "linkerd_controller_workload_restarts_total",
                dimensions: [
                    ("namespace", target.namespace), ("kind", target.kind.rawValue), ("reason", finding.metricReason),
                ],
                factory: metricsFactory
            ).increment()
            logger.info(
                "restarted a workload for the mesh",
                metadata: [
                    "workload": "\(target.namespace)/\(target)", "pod": "\(pod)", "reason": "\(finding.metricReason)",
                ])
            await events.record(
                .normal, reason: MeshAuditEvents.restartedReason,
                message: MeshAuditEvents.restartedMessage(for: finding, pod: pod), about: reference)
            return (true, restartInterval, false)
        }
    }

    private func forget(_ key: ObjectKey) {
        state.withLock { state in
            let changed = state.book.forget(key)
            Self.setGauges(changed, in: &state, factory: metricsFactory)
        }
    }

    /// Sets the gauges of the owners in `counts`; an owner with no pod left gets 0 and its gauges are forgotten.
    private static func setGauges(
        _ counts: [MeshAuditBook.OwnerGroup: MeshAuditBook.Counts], in state: inout State,
        factory: any MetricsFactory
    ) {
        for (group, counts) in counts {
            if counts == MeshAuditBook.Counts() {
                if let gauges = state.gauges.removeValue(forKey: group) { withdraw(gauges) }
                continue
            }
            let gauges =
                state.gauges[group]
                ?? {
                    let dimensions = [
                        ("namespace", group.namespace), ("owner_kind", group.ownerKind), ("owner", group.owner),
                    ]
                    let made = (
                        proxyMissing: Gauge(
                            label: "linkerd_controller_pods_proxy_missing", dimensions: dimensions, factory: factory),
                        proxyOutdated: Gauge(
                            label: "linkerd_controller_pods_proxy_outdated", dimensions: dimensions, factory: factory)
                    )
                    state.gauges[group] = made
                    return made
                }()
            gauges.proxyMissing.record(counts.proxyMissing)
            gauges.proxyOutdated.record(counts.proxyOutdated)
        }
    }

    /// Sets both gauges to 0, the last value the owner's series get until it has a finding again.
    /// Sets the owner's gauges to 0 (for a scrape that sees them before they go) and removes their series, so
    /// owners that come and go (bare pods, orphan ReplicaSets) leave no series behind.
    private static func withdraw(_ gauges: (proxyMissing: Gauge, proxyOutdated: Gauge)) {
        gauges.proxyMissing.record(0)
        gauges.proxyOutdated.record(0)
        gauges.proxyMissing.destroy()
        gauges.proxyOutdated.destroy()
    }

    /// Sets the gauges from the counts remembered (when `MeshAuditor` starts, or starts again).
    func publishGauges() {
        state.withLock { state in
            Self.setGauges(state.book.counts, in: &state, factory: metricsFactory)
        }
    }

    /// Sets every gauge to 0 and forgets it (when `MeshAuditor` stops: another replica reports now). The counts are
    /// kept for `publishGauges`.
    func withdrawGauges() {
        state.withLock { state in
            for gauges in state.gauges.values { Self.withdraw(gauges) }
            state.gauges = [:]
        }
    }

    /// The owners whose gauges are kept.
    var gaugedGroups: Set<MeshAuditBook.OwnerGroup> {
        state.withLock { Set($0.gauges.keys) }
    }

    /// The time from `start` to `end`, between 0 and `restartInterval` (a date read from a workload can be
    /// anything, and a Double out of Int64's range must never be converted).
    private func duration(from start: Date, to end: Date) -> Duration {
        let seconds = end.timeIntervalSince(start)
        guard seconds.isFinite, seconds > 0 else { return .zero }
        guard seconds < restartInterval.inSeconds else { return restartInterval }
        // 9e18 is below Int64.max (9.22e18) with room for the rounding of the Double.
        if seconds * 1e9 < 9e18 { return .nanoseconds(Int64(seconds * 1e9)) }
        if seconds < 9e18 { return .seconds(Int64(seconds)) }
        return restartInterval
    }
}
