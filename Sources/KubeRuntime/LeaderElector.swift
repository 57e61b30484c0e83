import Foundation
import KubeModel
import LinkerdCore
import Logging
import Metrics
import ServiceLifecycle
import Synchronization

/// Leader election on a `coordination.k8s.io/v1` Lease, with client-go's rules.
///
/// - A candidate takes the Lease when it is free (no holder) or when its record has not changed for
///   `leaseDuration`, measured on the candidate's own clock from when it last saw the record change (so clock skew
///   between machines does not matter).
/// - The leader renews every `retryPeriod`; if it cannot renew for `renewDeadline` (shorter than
///   `leaseDuration`), it stops leading before anyone else may take over, so two leaders never overlap. Each
///   attempt is abandoned after `retryPeriod`, so a hung request cannot stretch that bound.
/// - Every write is conditional on the Lease's resourceVersion: of two candidates racing, one gets a 409.
/// - On shutdown the leader releases the Lease (empty holder), so a successor takes over at its next retry.
public final class LeaderElector: Sendable {
    public struct Configuration: Sendable {
        public var leaseName: String
        public var namespace: String
        /// This candidate's identity, unique per process (typically the pod name).
        public var identity: String
        public var leaseDuration: Duration
        public var renewDeadline: Duration
        public var retryPeriod: Duration

        public init(
            leaseName: String, namespace: String, identity: String, leaseDuration: Duration = .seconds(15),
            renewDeadline: Duration = .seconds(10), retryPeriod: Duration = .seconds(2)
        ) {
            precondition(leaseDuration >= .seconds(1), "a Lease counts whole seconds")
            precondition(renewDeadline < leaseDuration, "renewDeadline must be shorter than leaseDuration")
            precondition(retryPeriod < renewDeadline, "retryPeriod must be shorter than renewDeadline")
            self.leaseName = leaseName
            self.namespace = namespace
            self.identity = identity
            self.leaseDuration = leaseDuration
            self.renewDeadline = renewDeadline
            self.retryPeriod = retryPeriod
        }
    }

    private struct Observation {
        var holder: String?
        var renewTime: String?
        var observedAt: Date
    }

    public let configuration: Configuration
    private let api: any KubeAPI
    private let clock: any WallClock
    private let logger: Logger
    private let leading = Mutex(false)
    private let observation = Mutex<Observation?>(nil)
    private let leaderGauge: Gauge

    public init(
        api: any KubeAPI, configuration: Configuration, clock: any WallClock = SystemWallClock(),
        metricsFactory: any MetricsFactory = MetricsSystem.factory,
        logger: Logger = Logger(label: "linkerd.kube.leader-election")
    ) {
        self.api = api
        self.configuration = configuration
        self.clock = clock
        var logger = logger
        logger[metadataKey: "lease"] = "\(configuration.namespace)/\(configuration.leaseName)"
        logger[metadataKey: "identity"] = "\(configuration.identity)"
        self.logger = logger
        leaderGauge = Gauge(
            label: "leader_election_master_status", dimensions: [("name", configuration.leaseName)],
            factory: metricsFactory)
    }

    /// Whether this candidate holds the Lease right now.
    public var isLeader: Bool {
        leading.withLock { $0 }
    }

    /// Campaigns for the Lease and runs `body` whenever this candidate leads, cancelling it when leadership is
    /// lost and campaigning again. Returns when the task is cancelled or `body` returns, releasing the Lease if
    /// held; rethrows an error of `body` after releasing the Lease.
    public func run(whileLeading body: @escaping @Sendable () async throws -> Void) async throws {
        while !Task.isCancelled {
            guard try await acquire() else { return }
            switch await lead(body) {
            case .lost: continue
            case .finished: return
            case .failed(let error): throw error
            }
        }
    }

    /// Retries until the Lease is ours; false when cancelled first.
    private func acquire() async throws -> Bool {
        while !Task.isCancelled {
            if await attempt() {
                logger.info("became leader")
                setLeading(true)
                return true
            }
            do {
                try await clock.sleep(for: configuration.retryPeriod)
            } catch {
                return false
            }
        }
        return false
    }

    private enum Term {
        /// Renewal failed: campaign again.
        case lost
        /// Cancelled, or `body` returned.
        case finished
        case failed(any Error)
    }

    /// Leads until leadership is lost, the task is cancelled or `body` ends; releases the Lease unless lost.
    private func lead(_ body: @escaping @Sendable () async throws -> Void) async -> Term {
        let term = await withTaskGroup(of: Term.self) { group in
            group.addTask {
                do {
                    try await body()
                    return .finished
                } catch  where Task.isCancelled {
                    return .finished
                } catch {
                    self.logger.error("work under leadership failed", metadata: ["error": "\(error)"])
                    return .failed(error)
                }
            }
            group.addTask { await self.renewUntilLost() ? .lost : .finished }
            let first = await group.next() ?? .finished
            group.cancelAll()
            await group.waitForAll()
            return first
        }
        setLeading(false)
        if case .lost = term {
            logger.warning("lost leadership")
        } else {
            await release()
        }
        return term
    }

    /// Renews every retryPeriod; returns true when renewal failed for renewDeadline, false when cancelled.
    private func renewUntilLost() async -> Bool {
        var lastRenewal = clock.now()
        while true {
            do {
                try await clock.sleep(for: configuration.retryPeriod)
            } catch {
                return false
            }
            if await attempt() {
                lastRenewal = clock.now()
            } else if isHeldByOther
                || clock.now().timeIntervalSince(lastRenewal) >= configuration.renewDeadline.inSeconds
            {
                return true
            }
        }
    }

    private var isHeldByOther: Bool {
        observation.withLock { observed in
            guard let holder = observed?.holder, !holder.isEmpty else { return false }
            return holder != configuration.identity
        }
    }

    /// `tryAcquireOrRenew()`, abandoned (false) when it takes longer than `retryPeriod` of real time: this bounds
    /// hung requests, which only real time can measure, so it does not use the injected clock.
    private func attempt() async -> Bool {
        await withTaskGroup(of: Bool?.self) { group in
            group.addTask { await self.tryAcquireOrRenew() }
            group.addTask {
                try? await Task.sleep(for: self.configuration.retryPeriod)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first ?? false
        }
    }

    /// One attempt: create the Lease, renew ours, or take over a free or expired one.
    private func tryAcquireOrRenew() async -> Bool {
        let now = clock.now()
        let nowText = KubeTime.formatMicro(now)
        let leaseSeconds = Int(configuration.leaseDuration.components.seconds)
        do {
            let existing: Lease
            do {
                existing = try await api.get(
                    Lease.self, namespace: configuration.namespace, name: configuration.leaseName)
            } catch let error as KubeError where error.code == .notFound {
                let lease = Lease(
                    metadata: ObjectMeta(name: configuration.leaseName, namespace: configuration.namespace),
                    spec: .init(
                        holderIdentity: configuration.identity, leaseDurationSeconds: leaseSeconds,
                        acquireTime: nowText, renewTime: nowText, leaseTransitions: 0))
                let created = try await api.create(lease)
                observe(created, at: now)
                return true
            }
            let spec = existing.spec ?? Lease.LeaseSpec()
            observe(existing, at: now)
            let holder = spec.holderIdentity ?? ""
            if !holder.isEmpty, holder != configuration.identity, !observedRecordExpired(now: now, lease: spec) {
                return false
            }
            var updated = existing
            let takingOver = holder != configuration.identity
            var renewed = spec
            renewed.holderIdentity = configuration.identity
            renewed.leaseDurationSeconds = leaseSeconds
            renewed.acquireTime = takingOver ? nowText : (spec.acquireTime ?? nowText)
            renewed.renewTime = nowText
            renewed.leaseTransitions = (spec.leaseTransitions ?? 0) + (takingOver ? 1 : 0)
            updated.spec = renewed
            let stored = try await api.update(updated)
            observe(stored, at: now)
            return true
        } catch {
            if !(error is CancellationError) {
                logger.debug("lease acquire/renew failed", metadata: ["error": "\(error)"])
            }
            return false
        }
    }

    private func observedRecordExpired(now: Date, lease: Lease.LeaseSpec) -> Bool {
        let duration = lease.leaseDurationSeconds.map { Double($0) } ?? configuration.leaseDuration.inSeconds
        return observation.withLock { observed in
            guard let observed else { return true }
            return observed.observedAt.addingTimeInterval(duration) <= now
        }
    }

    /// Remembers when the Lease record last changed, on our own clock.
    private func observe(_ lease: Lease, at now: Date) {
        observation.withLock { observed in
            let holder = lease.spec?.holderIdentity
            let renewTime = lease.spec?.renewTime
            if let current = observed, current.holder == holder, current.renewTime == renewTime { return }
            observed = Observation(holder: holder, renewTime: renewTime, observedAt: now)
        }
    }

    /// Gives the Lease up so a successor need not wait for it to expire. Runs outside the cancelled task, for at
    /// most `retryPeriod` of real time.
    private func release() async {
        let configuration = configuration
        let api = api
        let now = KubeTime.formatMicro(clock.now())
        let released = await Task {
            await withTaskGroup(of: Bool.self) { group in
                group.addTask {
                    try? await Task.sleep(for: configuration.retryPeriod)
                    return false
                }
                group.addTask { await Self.clearHolder(api: api, configuration: configuration, renewTime: now) }
                let first = await group.next() ?? false
                group.cancelAll()
                return first
            }
        }.value
        logger.info(released ? "released the lease" : "could not release the lease")
    }

    private static func clearHolder(api: any KubeAPI, configuration: Configuration, renewTime now: String) async -> Bool
    {
        do {
            var lease = try await api.get(Lease.self, namespace: configuration.namespace, name: configuration.leaseName)
            guard lease.spec?.holderIdentity == configuration.identity else { return false }
            lease.spec?.holderIdentity = nil
            lease.spec?.leaseDurationSeconds = 1
            lease.spec?.renewTime = now
            _ = try await api.update(lease)
            return true
        } catch {
            return false
        }
    }

    private func setLeading(_ value: Bool) {
        leading.withLock { $0 = value }
        leaderGauge.record(value ? 1 : 0)
    }
}

/// Runs services only while a `LeaderElector` holds its Lease; a `Service` for the process's `ServiceGroup`.
public struct LeaderElectedServices: ServiceLifecycle.Service {
    public let elector: LeaderElector
    public let services: [any ServiceLifecycle.Service]

    public init(elector: LeaderElector, services: [any ServiceLifecycle.Service]) {
        self.elector = elector
        self.services = services
    }

    public func run() async throws {
        let services = services
        try await cancelWhenGracefulShutdown {
            try await elector.run {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for service in services {
                        group.addTask { try await service.run() }
                    }
                    try await group.waitForAll()
                }
            }
        }
    }
}
