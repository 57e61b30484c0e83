import Foundation
import KubeModel
import LinkerdCore
import Logging
import Metrics
import ServiceLifecycle

/// What a reconciler asks for after handling a key.
public enum ReconcileAction: Hashable, Sendable {
    /// The object is as it should be; forget its failure history.
    case done
    /// Look again after this long (eventual consistency: polling something the watch does not cover).
    case requeue(after: Duration)
}

/// A level-based reconcile loop: changes seen by a `Reflector` enqueue object keys, and workers call
/// `reconcile(key)` for each, never for the same key twice at once.
///
/// The reconciler receives only the key, never the event: it reads the current state from the store (the object
/// may be gone) and makes the world match. Its outcome is obeyed in one place, `process(_:)`:
/// `.done` forgets the key's failures, `.requeue(after:)` schedules another look, and a thrown error requeues
/// with per-key exponential backoff (stretched to a `KubeError`'s Retry-After). Workers start only after the store's first complete list, and then every
/// existing object is reconciled once.
public final class Controller<R: KubeResource>: ServiceLifecycle.Service, Sendable {
    public typealias Reconcile = @Sendable (ObjectKey) async throws -> ReconcileAction

    public let name: String
    public let reflector: Reflector<R>
    public let queue: WorkQueue<ObjectKey>
    private let workers: Int
    private let clock: any WallClock
    private let reconcile: Reconcile
    private let logger: Logger
    private let reconcileTimer: Metrics.Timer
    private let successCounter: Counter
    private let requeueCounter: Counter
    private let errorCounter: Counter

    public init(
        name: String, reflector: Reflector<R>, workers: Int = 1, clock: any WallClock = SystemWallClock(),
        queueConfiguration: WorkQueue<ObjectKey>.Configuration = .init(),
        metricsFactory: any MetricsFactory = MetricsSystem.factory,
        logger: Logger = Logger(label: "linkerd.kube.controller"),
        reconcile: @escaping Reconcile
    ) {
        precondition(workers > 0, "a controller needs at least one worker")
        self.name = name
        self.reflector = reflector
        self.workers = workers
        self.clock = clock
        self.reconcile = reconcile
        var logger = logger
        logger[metadataKey: "controller"] = "\(name)"
        self.logger = logger
        queue = WorkQueue(name: name, configuration: queueConfiguration, clock: clock, metricsFactory: metricsFactory)
        let dimensions = [("controller", name)]
        reconcileTimer = Metrics.Timer(
            label: "controller_runtime_reconcile_time_seconds", dimensions: dimensions, preferredDisplayUnit: .seconds,
            factory: metricsFactory)
        successCounter = Counter(
            label: "controller_runtime_reconcile_total", dimensions: dimensions + [("result", "success")],
            factory: metricsFactory)
        requeueCounter = Counter(
            label: "controller_runtime_reconcile_total", dimensions: dimensions + [("result", "requeue_after")],
            factory: metricsFactory)
        errorCounter = Counter(
            label: "controller_runtime_reconcile_errors_total", dimensions: dimensions, factory: metricsFactory)
        reflector.onChange { [queue] change in queue.add(change.key) }
    }

    /// Enqueues a key from outside the reflector (e.g. a change to a related object).
    public func enqueue(_ key: ObjectKey) {
        queue.add(key)
    }

    /// Runs the workers and the queue's timer until cancelled or gracefully shut down, then returns normally. The reflector is run
    /// separately (it is shared), so this waits for its first list. It may be run again after it stops (e.g. when
    /// leadership comes back); the queue keeps the keys that were due.
    public func run() async throws {
        do {
            try await runUntilCancelled()
        } catch is CancellationError {
            return
        }
    }

    private func runUntilCancelled() async throws {
        try await cancelWhenGracefulShutdown {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await self.queue.run() }
                await self.reflector.store.waitUntilSynced()
                try Task.checkCancellation()
                for key in self.reflector.store.keys { self.queue.add(key) }
                for _ in 0..<self.workers {
                    group.addTask {
                        while let key = await self.queue.next() {
                            await self.process(key)
                            self.queue.done(key)
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
    }

    private func process(_ key: ObjectKey) async {
        let start = clock.now()
        do {
            let action = try await reconcile(key)
            switch action {
            case .done:
                queue.forget(key)
                successCounter.increment()
            case .requeue(let delay):
                queue.forget(key)
                queue.add(key, after: delay)
                requeueCounter.increment()
            }
        } catch  where Task.isCancelled {
            // Stopping (shutdown or lost leadership): the key stays due for whoever runs next.
            queue.add(key)
            return
        } catch {
            errorCounter.increment()
            logger.warning(
                "reconcile failed; retrying with backoff",
                metadata: ["key": "\(key)", "error": "\(error)", "failures": "\(queue.failures(of: key) + 1)"])
            queue.addRateLimited(key, atLeast: (error as? KubeError)?.retryAfter ?? .zero)
        }
        reconcileTimer.recordNanoseconds(Int64(clock.now().timeIntervalSince(start) * 1e9))
    }
}
