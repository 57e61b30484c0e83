import LinkerdCore
import LinkerdProxyCore
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// The outbound proxy's discovery (reference proxy §3.2): what the Destination service says about each original
/// destination, cached while connections use it.
///
/// For a connection to `ip:port`:
/// - outside `LINKERD2_PROXY_DESTINATION_PROFILE_NETWORKS`: the original destination, in plaintext, at once;
/// - otherwise `GetProfile(ip:port)`, waiting at most ``Settings/profileTimeout`` for its first answer:
///   - a profile naming an endpoint (the IP is a pod's): that endpoint, with its identity and protocol hint;
///   - a profile with a fully-qualified name within `LINKERD2_PROXY_DESTINATION_PROFILE_SUFFIXES` (the IP is a
///     Service's): a ``ServiceBalancer`` for `name:port`, fed by the `Get` stream (adds, removes, no-endpoints, and
///     the reset after a reconnection), so that each request goes to the endpoint P2C picks;
///   - `opaque_protocol`: as above, without HTTP detection;
///   - no profile, a refusal or no answer in time: the original destination, in plaintext.
///
/// Lookups run in tasks, off the data path; connections take a cached answer on their event loop. An answer unused
/// for ``Settings/idleTimeout`` (`LINKERD2_PROXY_OUTBOUND_DISCOVERY_IDLE_TIMEOUT`, 5 s) is dropped with its streams
/// by ``run()``, which sweeps the cache until shutdown.
public final class DiscoveryResolver: OutboundEndpointResolver, Service, Sendable {
    public struct Settings: Sendable {
        public var profileNetworks: [CIDR]
        public var profileSuffixes: [DNSSuffix]
        /// The balancers' queue (`LINKERD2_PROXY_OUTBOUND_HTTP_QUEUE_*`).
        public var queueCapacity: Int
        public var failfastTimeout: Duration
        public var idleTimeout: Duration
        /// How long a new connection waits for a profile before it goes to its original destination.
        public var profileTimeout: Duration

        public init(
            profileNetworks: [CIDR], profileSuffixes: [DNSSuffix], queueCapacity: Int = 10_000,
            failfastTimeout: Duration = .seconds(3), idleTimeout: Duration = .seconds(5),
            profileTimeout: Duration = .seconds(3)
        ) {
            self.profileNetworks = profileNetworks
            self.profileSuffixes = profileSuffixes
            self.queueCapacity = queueCapacity
            self.failfastTimeout = failfastTimeout
            self.idleTimeout = idleTimeout
            self.profileTimeout = profileTimeout
        }

        /// The settings `configuration` gives.
        public init(configuration: ProxyConfiguration) {
            let outbound = configuration.outbound
            self.init(
                profileNetworks: configuration.controlPlane.profileNetworks,
                profileSuffixes: configuration.controlPlane.profileSuffixes,
                queueCapacity: outbound.httpQueue.capacity, failfastTimeout: outbound.httpQueue.failfastTimeout,
                idleTimeout: outbound.discoveryIdleTimeout)
        }
    }

    /// One original destination's discovery.
    private final class Entry: Sendable {
        let target: Mutex<OutboundTarget?>
        let lastUsed: Atomic<UInt64>
        let tasks: Mutex<[Task<Void, Never>]>
        let firstAnswer: AsyncStream<Void>
        let answered: AsyncStream<Void>.Continuation

        init(now: UInt64) {
            target = Mutex(nil)
            lastUsed = Atomic(now)
            tasks = Mutex([])
            (firstAnswer, answered) = AsyncStream.makeStream(of: Void.self)
        }

        func cancel() {
            for task in tasks.withLock({ $0 }) { task.cancel() }
            answered.finish()
        }

        /// Whether a connection uses the entry's balancer now: long-lived connections send requests without asking
        /// for a target again, and must keep receiving endpoint updates.
        var inUse: Bool {
            guard case .service(let service, _) = target.withLock({ $0 }) else { return false }
            return service.usage.inUse
        }

        /// When a connection last asked for the entry or stopped using its balancer.
        var lastUse: UInt64 {
            var last = lastUsed.load(ordering: .relaxed)
            if case .service(let service, _) = target.withLock({ $0 }) {
                last = max(last, service.usage.lastReleased)
            }
            return last
        }
    }

    private let destination: DestinationClient
    private let settings: Settings
    private let metrics: ProxyMetricsRegistry?
    private let logger: Logger
    private let entries = Mutex<[String: Entry]>([:])

    public init(
        destination: DestinationClient, settings: Settings, metrics: ProxyMetricsRegistry? = nil, logger: Logger
    ) {
        self.destination = destination
        self.settings = settings
        self.metrics = metrics
        self.logger = logger
    }

    public func endpoint(for originalDestination: SocketAddress) async -> OutboundEndpoint {
        OutboundEndpoint(address: originalDestination)
    }

    public func immediateTarget(for originalDestination: SocketAddress) -> OutboundTarget? {
        guard isDiscoverable(originalDestination) else {
            return .endpoint(OutboundEndpoint(address: originalDestination))
        }
        let now = NIODeadline.now().uptimeNanoseconds
        guard let entry = entries.withLock({ $0[originalDestination.endpointText] }) else { return nil }
        entry.lastUsed.store(now, ordering: .relaxed)
        return entry.target.withLock { $0 }
    }

    public func target(for originalDestination: SocketAddress) async -> OutboundTarget {
        let fallback = OutboundTarget.endpoint(OutboundEndpoint(address: originalDestination))
        guard isDiscoverable(originalDestination) else { return fallback }
        let key = originalDestination.endpointText
        let now = NIODeadline.now().uptimeNanoseconds
        let (entry, isNew) = entries.withLock { entries in
            if let existing = entries[key] { return (existing, false) }
            let entry = Entry(now: now)
            entries[key] = entry
            return (entry, true)
        }
        entry.lastUsed.store(now, ordering: .relaxed)
        if isNew {
            let task = Task { await self.follow(originalDestination, key: key, entry: entry) }
            entry.tasks.withLock { $0.append(task) }
        }
        if let known = entry.target.withLock({ $0 }) { return known }
        // Wait for the first answer, or the timeout.
        let timeout = settings.profileTimeout
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await _ in entry.firstAnswer { return }
            }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
        return entry.target.withLock { $0 } ?? fallback
    }

    /// Sweeps idle answers every second until shutdown; then ends every stream.
    public func run() async throws {
        let idle =
            UInt64(settings.idleTimeout.components.seconds) * 1_000_000_000
            + UInt64(settings.idleTimeout.components.attoseconds / 1_000_000_000)
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            try? await Task.sleep(for: .seconds(1))
            let now = NIODeadline.now().uptimeNanoseconds
            let expired = entries.withLock { entries in
                let expired = entries.filter { now &- $0.value.lastUse > idle && !$0.value.inUse }
                for key in expired.keys { entries.removeValue(forKey: key) }
                return Array(expired.values)
            }
            for entry in expired { entry.cancel() }
        }
        for entry in entries.withLock({ entries in
            defer { entries = [:] }; return Array(entries.values)
        }) {
            entry.cancel()
        }
    }

    /// Follows the profile of `originalDestination` and keeps the entry's target current.
    private func follow(_ originalDestination: SocketAddress, key: String, entry: Entry) async {
        do {
            for try await profile in destination.profile(key) {
                let target = await self.target(from: profile, originalDestination: originalDestination, entry: entry)
                entry.target.withLock { $0 = target }
                entry.answered.yield()
            }
        } catch {
            logger.debug("no profile", metadata: ["target": "\(key)", "error": "\(error)"])
        }
        // No profile (or the stream ended): the original destination, unless an answer came before.
        entry.target.withLock { target in
            if target == nil { target = .endpoint(OutboundEndpoint(address: originalDestination)) }
        }
        entry.answered.finish()
    }

    private func target(
        from profile: DestinationProfileUpdate, originalDestination: SocketAddress, entry: Entry
    ) async -> OutboundTarget {
        if let endpoint = profile.endpoint, let address = try? SocketAddress(endpoint.address) {
            let hint: EndpointProtocolHint = profile.opaqueProtocol ? .opaque : endpoint.protocolHint
            return .endpoint(
                OutboundEndpoint(
                    address: address, identity: endpoint.tlsIdentity, serverName: endpoint.tlsServerName,
                    protocolHint: hint))
        }
        if let name = profile.fullyQualifiedName, !name.isEmpty, isResolvable(name),
            let port = originalDestination.port
        {
            let authority = "\(name.hasSuffix(".") ? String(name.dropLast()) : name):\(port)"
            let existing: ServiceBalancer? = entry.target.withLock { target in
                if case .service(let service, _) = target, service.name == authority { return service }
                return nil
            }
            let service = existing ?? makeBalancer(authority, entry: entry)
            return .service(service, opaque: profile.opaqueProtocol)
        }
        return .endpoint(
            OutboundEndpoint(address: originalDestination, protocolHint: profile.opaqueProtocol ? .opaque : .unknown))
    }

    private func makeBalancer(_ authority: String, entry: Entry) -> ServiceBalancer {
        var lookup: (@Sendable (Endpoint) -> HTTPEndpointMetrics?)?
        if let registry = metrics {
            lookup = { endpoint in
                guard let address = try? SocketAddress(endpoint.address) else { return nil }
                let labels = ProxyMetricLabels.outbound(
                    endpoint: OutboundEndpoint(address: address, identity: endpoint.tlsIdentity),
                    authority: authority, destinationLabels: endpoint.metricLabels)
                return registry.httpEndpoint(labels, now: NIODeadline.now().uptimeNanoseconds)
            }
        }
        let queue = BalancerQueue(capacity: settings.queueCapacity, failfastTimeout: settings.failfastTimeout)
        let service = ServiceBalancer(name: authority, queue: queue, metrics: lookup)
        let destination = destination
        let logger = logger
        let task = Task {
            do {
                for try await update in destination.resolve(authority) {
                    service.apply(update)
                }
            } catch {
                logger.debug("resolution ended", metadata: ["service": "\(authority)", "error": "\(error)"])
            }
        }
        entry.tasks.withLock { $0.append(task) }
        return service
    }

    private func isDiscoverable(_ address: SocketAddress) -> Bool {
        guard let text = address.ipAddress, let ip = try? IPAddress(parsing: text) else { return false }
        for network in settings.profileNetworks where network.contains(ip) {
            return true
        }
        return false
    }

    private func isResolvable(_ name: String) -> Bool {
        for suffix in settings.profileSuffixes where suffix.matches(name) {
            return true
        }
        return false
    }
}
