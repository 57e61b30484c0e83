import KubeModel
import Logging
import ServiceLifecycle
import Synchronization

/// Mirrors one resource type into a `Store` through a `Watcher`, and tells subscribers what changed.
///
/// One reflector per resource type serves every controller of a process: controllers read the shared `store`
/// and subscribe with `onChange` (typically to enqueue keys). After a re-list, subscribers hear about objects
/// that changed or vanished while the watch was broken, so nothing is missed.
public final class Reflector<R: KubeResource>: ServiceLifecycle.Service, Sendable {
    public typealias ChangeHandler = @Sendable (StoreChange<R>) -> Void

    public let store: Store<R>
    private let watcher: Watcher<R>
    private let handlers = Mutex<[ChangeHandler]>([])

    public init(watcher: Watcher<R>, store: Store<R> = Store()) {
        self.watcher = watcher
        self.store = store
    }

    /// Registers a handler called synchronously, on the reflector's task, for every change. Keep it cheap.
    public func onChange(_ handler: @escaping ChangeHandler) {
        handlers.withLock { $0.append(handler) }
    }

    /// Runs until cancelled or gracefully shut down, then returns normally.
    public func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                try await self.watcher.run { event in
                    self.absorb(event)
                }
            }
        } catch is CancellationError {
            return
        }
    }

    /// Applies one watcher event to the store and notifies subscribers. Exposed only to benchmarks and tests
    /// (`@_spi(Testing)`), which feed events without a server; everything else goes through `run()`.
    @_spi(Testing) public func absorb(_ event: WatcherEvent<R>) {
        let changes: [StoreChange<R>]
        switch event {
        case .listed(let objects): changes = store.replace(with: objects)
        case .applied(let object): changes = store.apply(object).map { [$0] } ?? []
        case .deleted(let object): changes = store.delete(object).map { [$0] } ?? []
        }
        guard !changes.isEmpty else { return }
        let handlers = self.handlers.withLock { $0 }
        for change in changes {
            for handler in handlers { handler(change) }
        }
    }
}
