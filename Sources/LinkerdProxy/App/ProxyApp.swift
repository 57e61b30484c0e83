import Foundation
import LinkerdCore
import LinkerdProxyCore
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// Why the proxy could not be built from a valid configuration (upstream: `Initialization failure: …`, exit 1).
public struct ProxyStartupError: Error, CustomStringConvertible {
    public var description: String
}

/// The proxy assembled from its configuration, as `linkerd-proxy` runs it and tests can: identity (key and CSR,
/// Certify, refresh), the readiness latch released by the first certificate, the admin server, and the inbound and
/// outbound listeners, outbound discovery through the Destination service. Each part is a swift-service-lifecycle `Service`; ``services(onShutdownRequest:)``
/// lists them for a `ServiceGroup`. The listeners bind at start and accept only once identity is certified, as upstream's
/// do.
public final class ProxyApp: Sendable {
    public let configuration: ProxyConfiguration
    public let credentials: ProxyCredentials
    public let readiness = ProxyReadiness()
    /// The legacy metric families of the data path (`request_total`, `tcp_*`, …), rendered by `/metrics`.
    public let metrics: ProxyMetricsRegistry
    public let logFilter: LogFilterStore
    public let admin: ProxyAdminServer
    public let identity: IdentityService
    public let inbound: InboundProxy
    /// One per outbound listen address (`LINKERD2_PROXY_OUTBOUND_LISTEN_ADDRS`), sharing their counters.
    public let outbound: [OutboundProxy]
    /// The Destination service's client, and the outbound discovery it feeds.
    public let destination: DestinationClient
    public let discovery: DiscoveryResolver
    private let shutdownTrigger: ShutdownTrigger

    /// Builds the proxy; reads the identity directory (creating the key and CSR when absent), nothing else.
    ///
    /// - Parameters:
    ///   - logFilter: the filter the process's log handler reads, which `PUT /proxy-log-level` replaces; by
    ///     default a new one from the configuration.
    ///   - clock: the wall clock for certificate lifetimes and refreshes.
    ///   - eventLoopGroup: the data path's event loops (inbound and outbound connections and their upstreams):
    ///     `linkerd-proxy` gives it `LINKERD2_PROXY_CORES` threads, one by default.
    ///   - controlEventLoopGroup: the control plane's (admin server, Certify, Destination), kept apart so that
    ///     control work never waits behind the data path or delays it, as upstream's `admin` thread does; by default
    ///     the data path's.
    public init(
        configuration: ProxyConfiguration, logger: Logger, logFilter: LogFilterStore? = nil,
        clock: any WallClock = SystemWallClock(),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        controlEventLoopGroup: (any EventLoopGroup)? = nil
    ) throws(ProxyStartupError) {
        let controlGroup = controlEventLoopGroup ?? eventLoopGroup
        self.configuration = configuration
        let identitySettings = configuration.identity
        let trustAnchors: IdentityTrustAnchors
        let files: IdentityFiles
        do throws(IdentityMaterialError) {
            trustAnchors = try IdentityTrustAnchors(pemBundle: identitySettings.trustAnchorsPEM)
            files = try IdentityFiles.prepare(
                directory: identitySettings.directory, localName: identitySettings.localName.name)
        } catch {
            throw ProxyStartupError(description: "\(error)")
        }
        credentials = ProxyCredentials(files: files, trustAnchors: trustAnchors)
        let service = configuration.controlPlane.identity
        let client: IdentityClient
        let schedule: IdentityRefreshSchedule
        do {
            client = try IdentityClient(
                configuration: .init(
                    host: service.host.description, port: Int(service.port),
                    serverIdentity: service.serverName?.name ?? identitySettings.localName.name,
                    tokenPath: identitySettings.tokenFile, plaintext: service.isLoopback),
                files: files, trustAnchors: trustAnchors, clock: clock, eventLoopGroup: controlGroup)
            schedule = try IdentityRefreshSchedule(
                minimumRefresh: identitySettings.minRefresh, maximumRefresh: identitySettings.maxRefresh)
        } catch {
            throw ProxyStartupError(description: "\(error)")
        }
        identity = IdentityService(
            client: client, credentials: credentials, schedule: schedule, clock: clock,
            logger: logger.with(label: "identity"))
        self.logFilter = logFilter ?? LogFilterStore(configuration.logging.filter)
        let logFilter = self.logFilter
        let shutdownTrigger = ShutdownTrigger()
        self.shutdownTrigger = shutdownTrigger
        let credentials = credentials
        let started = clock.now()
        let adminAddress = configuration.listeners.admin
        let retainIdle = configuration.admin.metricsRetainIdle
        let certified: @Sendable () async throws -> Void = { _ = try await credentials.waitUntilCertified() }
        let registry = ProxyMetricsRegistry()
        metrics = registry
        do {
            inbound = InboundProxy(
                settings: try InboundProxy.Settings(configuration: configuration), credentials: credentials,
                metrics: registry, acceptsAfter: certified, logger: logger.with(label: "inbound"),
                eventLoopGroup: eventLoopGroup)
            let destinationAddress = configuration.controlPlane.destination
            destination = try DestinationClient(
                configuration: DestinationClient.Configuration(proxyConfiguration: configuration),
                security: .forControlPlane(destinationAddress, credentials: credentials), clock: clock,
                logger: logger.with(label: "destination"), eventLoopGroup: controlGroup)
            let discovery = DiscoveryResolver(
                destination: destination, settings: DiscoveryResolver.Settings(configuration: configuration),
                metrics: registry, logger: logger.with(label: "discovery"))
            self.discovery = discovery
            let outboundCounters = ConnectionCounters()
            outbound = try configuration.listeners.outbound.map { address in
                OutboundProxy(
                    settings: try OutboundProxy.Settings(configuration: configuration, listenAddress: address),
                    resolver: discovery, credentials: credentials, counters: outboundCounters,
                    metrics: registry, acceptsAfter: certified, logger: logger.with(label: "outbound"),
                    eventLoopGroup: eventLoopGroup)
            }
        } catch {
            throw ProxyStartupError(description: "\(error)")
        }
        admin = ProxyAdminServer(
            host: adminAddress.ip.description, port: Int(adminAddress.port),
            shutdownEnabled: configuration.admin.shutdownEndpointEnabled, readiness: readiness, logFilter: logFilter,
            metrics: { [registry] in
                // Legacy families first, then the newer ones and the process's, ending with `# EOF` (§6.1).
                registry.evictIdle(now: NIODeadline.now().uptimeNanoseconds, retainIdle: retainIdle)
                return registry.render() + ProxyProcessMetrics.render(credentials: credentials, startedAt: started)
            },
            onShutdown: { shutdownTrigger.fire() }, logger: logger.with(label: "admin"),
            eventLoopGroup: controlGroup)
    }

    /// The services to run, in start order, and what ends the proxy: `/shutdown` calls `onShutdownRequest` (set it
    /// to the service group's `triggerGracefulShutdown`).
    public func services(onShutdownRequest: @escaping @Sendable () -> Void) -> [any Service] {
        shutdownTrigger.set(onShutdownRequest)
        let listeners: [any Service] = [inbound] + outbound
        return [
            admin, identity, destination, discovery, ReadinessLatch(credentials: credentials, readiness: readiness),
        ]
            + listeners
    }
}

/// Releases the readiness latch once the first certificate is installed, then stays until the shutdown. (The
/// data-path listeners bind at start and accept from then on too: see ``ProxyListener``'s `acceptsAfter`.)
struct ReadinessLatch: Service {
    let credentials: ProxyCredentials
    let readiness: ProxyReadiness

    func run() async throws {
        do {
            _ = try await cancelWhenGracefulShutdown { try await credentials.waitUntilCertified() }
        } catch is CancellationError {
            return
        }
        readiness.markReady()
        try? await gracefulShutdown()
    }
}

/// The action behind `POST /shutdown`, set once the service group exists.
final class ShutdownTrigger: Sendable {
    private let action = Mutex<(@Sendable () -> Void)?>(nil)

    func set(_ newAction: @escaping @Sendable () -> Void) {
        action.withLock { $0 = newAction }
    }

    func fire() {
        action.withLock { $0 }?()
    }
}

extension Logger {
    /// This logger with `label` appended to its `component` metadata, for the proxy's parts.
    func with(label: String) -> Logger {
        var logger = self
        logger[metadataKey: "component"] = "\(label)"
        return logger
    }
}
