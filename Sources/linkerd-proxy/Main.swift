import Foundation
import LinkerdCore
import LinkerdProxy
import LinkerdProxyCore
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization
import UnixSignals

/// `linkerd-proxy`: the data plane, configured by the `LINKERD2_PROXY_*` environment (proxy.md §1.4). Exit 64 with
/// `Invalid configuration: …` for a bad environment, 1 with `Initialization failure: …` when it cannot start.
@main
struct LinkerdProxyMain {
    static func main() async {
        let configuration: ProxyConfiguration
        do {
            configuration = try ProxyConfiguration(environment: ProcessEnvironment())
        } catch {
            FileHandle.standardError.write(Data("Invalid configuration: \(error)\n".utf8))
            exit(ProxyConfiguration.exitCode)
        }
        let filter = LogFilterStore(configuration.logging.filter)
        let json = configuration.logging.format == .json
        LoggingSystem.bootstrap { label in ProxyLogHandler(label: label, filter: filter, json: json) }
        let logger = Logger(label: "linkerd.proxy")
        do {
            // The data path on LINKERD2_PROXY_CORES threads (one by default); the control plane on a thread of its own.
            let cores = configuration.workers.count(availableProcessors: System.coreCount)
            let dataPath = MultiThreadedEventLoopGroup(numberOfThreads: cores)
            let controlPlane = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            logger.info("Data path on \(cores) thread\(cores == 1 ? "" : "s")")
            let app = try ProxyApp(
                configuration: configuration, logger: logger, logFilter: filter, eventLoopGroup: dataPath,
                controlEventLoopGroup: controlPlane)
            let group = ShutdownBox()
            var groupConfiguration = ServiceGroupConfiguration(
                services: app.services { group.shutdown() }.map { .init(service: $0) },
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
            // In-flight requests and spliced connections may drain for LINKERD2_PROXY_SHUTDOWN_GRACE_PERIOD; then
            // the group cancels every service, which closes what is left.
            groupConfiguration.maximumGracefulShutdownDuration = configuration.admin.shutdownGracePeriod
            let serviceGroup = ServiceGroup(configuration: groupConfiguration)
            group.set(serviceGroup)
            logger.info("Admin interface on \(configuration.listeners.admin)")
            logger.info("Local identity is \(configuration.identity.localName.name)")
            do {
                try await serviceGroup.run()
                logger.info("Shutdown completed")
            } catch {
                logger.error("the proxy stopped: \(error)")
                exit(1)
            }
        } catch {
            logger.error("Initialization failure: \(error)")
            exit(1)
        }
    }
}

/// The service group, once built, for `POST /shutdown`.
final class ShutdownBox: Sendable {
    private let group = Mutex<ServiceGroup?>(nil)

    func set(_ serviceGroup: ServiceGroup) {
        group.withLock { $0 = serviceGroup }
    }

    func shutdown() {
        guard let serviceGroup = group.withLock({ $0 }) else { return }
        Task { await serviceGroup.triggerGracefulShutdown() }
    }
}
