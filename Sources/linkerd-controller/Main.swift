import ArgumentParser
import Foundation
import KubeClient
import LinkerdController
import LinkerdCore
import Logging
import NIOSSL
import ServiceLifecycle
import UnixSignals

/// `linkerd-controller`: the proxy injector (mutating admission webhook) and the reconcile loop that keeps the
/// mesh honest. Flags follow the Go injector's (`-addr`, `-metrics-addr`, `-linkerd-namespace`, `-kubeconfig`,
/// `-log-level`), spelled as this project's manifests use them.
@main
struct LinkerdControllerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "linkerd-controller",
        abstract: "Run the Linkerd proxy injector webhook and the mesh reconcile loop.")

    @Option(help: "The webhook's HTTPS listening address, host:port (an empty host means all interfaces).")
    var addr: ListenAddress = ListenAddress(host: "0.0.0.0", port: 8443)

    @Option(name: .customLong("admin-addr"), help: "The admin server's address (/metrics, /ping, /ready).")
    var adminAddr: ListenAddress = ListenAddress(host: "0.0.0.0", port: 9995)

    @Option(name: .customLong("controller-namespace"), help: "The control-plane namespace.")
    var controllerNamespace: String = "linkerd"

    @Option(help: "The mounted values of ConfigMap linkerd-config (re-read when it changes).")
    var values: String = "/var/run/linkerd/config/values"

    @Option(name: .customLong("trust-roots"), help: "The mounted trust-anchor bundle (re-read when it changes).")
    var trustRoots: String = "/var/run/linkerd/identity/trust-roots/ca-bundle.crt"

    @Option(
        name: .customLong("tls-dir"),
        help: "A mounted serving certificate (tls.crt, tls.key); without one the controller issues its own.")
    var tlsDirectory: String = "/var/run/linkerd/tls"

    @Option(name: .customLong("min-tls-version"), help: "The webhook's minimum TLS version: 1.2 or 1.3.")
    var minimumTLSVersion: MinimumTLSVersion = .v1_3

    @Option(help: "A kubeconfig file; without one, the in-cluster configuration (or $KUBECONFIG) is used.")
    var kubeconfig: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    @Option(
        name: .customLong("auto-restart-interval"),
        help: "The least time between two restarts of one workload by the reconcile loop, in seconds.")
    var autoRestartInterval: Int = 600

    func validate() throws {
        // A week at most: longer would mean never, and keeps every duration computed from it far from overflow.
        guard (1...604_800).contains(autoRestartInterval) else {
            throw ValidationError("--auto-restart-interval must be between 1 and 604800 seconds (a week)")
        }
    }

    func run() async throws {
        let level = logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "linkerd.controller")
        let clientConfiguration: KubeClientConfiguration
        do {
            clientConfiguration = try KubeClientConfiguration.commandLine(kubeconfig: kubeconfig)
        } catch {
            throw ValidationError("cannot configure the Kubernetes client: \(error)")
        }
        let client = try KubeClient(configuration: clientConfiguration, logger: logger)

        var settings = ProxyInjectorController.Settings()
        settings.controlPlaneNamespace = controllerNamespace
        settings.webhookHost = addr.host
        settings.webhookPort = addr.port
        settings.adminHost = adminAddr.host
        settings.adminPort = adminAddr.port
        settings.valuesPath = values
        settings.trustRootsPath = trustRoots
        settings.tlsDirectory = tlsDirectory
        settings.minimumTLSVersion = minimumTLSVersion.tlsVersion
        settings.audit.restartInterval = .seconds(autoRestartInterval)

        let controller = ProxyInjectorController(settings: settings, api: client, logger: logger)
        let group = ServiceGroup(
            configuration: .init(
                services: controller.services.map { .init(service: $0) },
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        logger.info(
            "linkerd-controller starting",
            metadata: ["webhook": "\(addr)", "admin": "\(adminAddr)", "namespace": "\(controllerNamespace)"])
        do {
            try await group.run()
        } catch {
            try? await client.shutdown()
            throw error
        }
        try await client.shutdown()
    }
}

/// Listening addresses as flags (`--addr :8443`); an invalid one is a usage error naming the flag.
extension ListenAddress: ExpressibleByArgument {
    public init?(argument: String) {
        guard let address = try? ListenAddress(parsing: argument) else { return nil }
        self = address
    }
}

enum MinimumTLSVersion: String, ExpressibleByArgument, CaseIterable, Sendable {
    case v1_2 = "1.2"
    case v1_3 = "1.3"

    var tlsVersion: TLSVersion { self == .v1_2 ? .tlsv12 : .tlsv13 }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
