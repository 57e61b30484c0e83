import KubeModel
import LinkerdCore
import Logging

/// What a `Watcher` reports: a complete snapshot after each (re-)list, then individual changes.
public enum WatcherEvent<R: Sendable>: Sendable {
    /// Every object that exists now; anything not in it is gone. Sent after the initial list and every re-list.
    case listed([R])
    /// An object was added or modified.
    case applied(R)
    case deleted(R)
}

/// Turns list + watch into an endless stream of `WatcherEvent`s, resuming and re-listing as needed.
///
/// `run` returns only when its task is cancelled: errors (dropped connections, stalled streams, 410 Gone, API
/// errors) are logged and retried as `WatcherStateMachine` decides, so a watch never silently stops.
public struct Watcher<R: KubeResource>: Sendable {
    public struct Configuration: Sendable {
        /// nil watches every namespace.
        public var namespace: String?
        public var labelSelector: String?
        public var fieldSelector: String?
        /// Objects per list page.
        public var pageSize: Int
        /// Asks the server to end each watch after this long, so connections are renewed regularly.
        public var watchTimeout: Duration
        public var backoff: Backoff

        public init(
            namespace: String? = nil, labelSelector: String? = nil, fieldSelector: String? = nil,
            pageSize: Int = 500, watchTimeout: Duration = .seconds(290), backoff: Backoff = Backoff()
        ) {
            self.namespace = namespace
            self.labelSelector = labelSelector
            self.fieldSelector = fieldSelector
            self.pageSize = pageSize
            self.watchTimeout = watchTimeout
            self.backoff = backoff
        }
    }

    public let api: any KubeAPI
    public let clock: any WallClock
    public let configuration: Configuration
    public let logger: Logger

    public init(
        api: any KubeAPI, clock: any WallClock = SystemWallClock(), configuration: Configuration = Configuration(),
        logger: Logger = Logger(label: "linkerd.kube.watcher")
    ) {
        self.api = api
        self.clock = clock
        self.configuration = configuration
        var logger = logger
        logger[metadataKey: "resource"] = "\(R.resourceType)"
        self.logger = logger
    }

    /// Lists and watches until the task is cancelled, calling `handle` for every event in order.
    public func run(_ handle: (WatcherEvent<R>) async -> Void) async throws {
        var machine = WatcherStateMachine(backoff: configuration.backoff)
        var listed: [R] = []
        while true {
            try Task.checkCancellation()
            switch machine.nextAction() {
            case .wait(let delay):
                try await clock.sleep(for: delay)
            case .list(let continueToken):
                do {
                    if continueToken == nil { listed.removeAll(keepingCapacity: true) }
                    let page = try await api.list(
                        R.resourceType, namespace: configuration.namespace,
                        options: ListOptions(
                            labelSelector: configuration.labelSelector, fieldSelector: configuration.fieldSelector,
                            limit: configuration.pageSize, continueToken: continueToken),
                        as: R.self)
                    listed += page.items
                    let complete = machine.listPageReceived(
                        resourceVersion: page.metadata.resourceVersion ?? "", continueToken: page.metadata.continue)
                    if complete {
                        logger.debug("listed", metadata: ["count": "\(listed.count)"])
                        let snapshot = listed
                        listed = []
                        await handle(.listed(snapshot))
                    }
                } catch {
                    try rethrowIfCancelled(error)
                    let delay = machine.failed(error)
                    logger.warning("list failed; retrying", metadata: ["error": "\(error)", "delay": "\(delay)"])
                }
            case .watch(let resourceVersion):
                var received = false
                do {
                    let stream = try await api.watch(
                        R.resourceType, namespace: configuration.namespace,
                        options: WatchOptions(
                            resourceVersion: resourceVersion, labelSelector: configuration.labelSelector,
                            fieldSelector: configuration.fieldSelector, allowWatchBookmarks: true,
                            timeoutSeconds: Int(configuration.watchTimeout.components.seconds)),
                        as: R.self)
                    for try await event in stream {
                        received = true
                        switch event {
                        case .added(let object), .modified(let object):
                            machine.watchEventReceived(resourceVersion: object.metadata.resourceVersion)
                            await handle(.applied(object))
                        case .deleted(let object):
                            machine.watchEventReceived(resourceVersion: object.metadata.resourceVersion)
                            await handle(.deleted(object))
                        case .bookmark(let bookmarkVersion):
                            machine.watchEventReceived(resourceVersion: bookmarkVersion)
                        }
                    }
                    machine.watchEnded(receivedEvents: received)
                } catch {
                    try rethrowIfCancelled(error)
                    let delay = machine.failed(error)
                    logger.info(
                        "watch interrupted; resuming",
                        metadata: ["error": "\(error)", "delay": "\(delay)", "resourceVersion": "\(resourceVersion)"])
                }
            }
        }
    }

    private func rethrowIfCancelled(_ error: any Error) throws {
        if error is CancellationError || Task.isCancelled { throw CancellationError() }
    }
}
