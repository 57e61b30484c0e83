import ArgumentParser
import Foundation
import KubeClient
import LinkerdCore
import LinkerdIdentity
import LinkerdIdentityServer
import Logging
import ServiceLifecycle
import UnixSignals

/// `linkerd-identity`: the mesh's certificate authority (Certify over gRPC). Flags follow upstream's
/// (`controller/cmd/identity`, reference §4.5), with durations in Go's syntax.
@main
struct LinkerdIdentityCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "linkerd-identity",
        abstract: "Run the Linkerd identity service: issue proxies' certificates after a TokenReview.")

    @Option(help: "The gRPC listening address, host:port (an empty host means all interfaces).")
    var addr: ListenAddress = ListenAddress(host: "0.0.0.0", port: 8080)

    @Option(name: .customLong("admin-addr"), help: "The admin server's address (/metrics, /ping, /ready).")
    var adminAddr: ListenAddress = ListenAddress(host: "0.0.0.0", port: 9990)

    @Option(help: "The mounted issuer Secret: crt.pem and key.pem, or tls.crt and tls.key (reloaded on change).")
    var issuer: String = "/var/run/linkerd/identity/issuer"

    @Option(name: .customLong("trust-anchors"), help: "The trust-anchor bundle (PEM), read at start.")
    var trustAnchors: String = "/var/run/linkerd/identity/trust-roots/ca-bundle.crt"

    @Option(name: .customLong("identity-trust-domain"), help: "The mesh's trust domain.")
    var trustDomain: String = "cluster.local"

    @Option(name: .customLong("controller-namespace"), help: "The control-plane namespace.")
    var controllerNamespace: String = "linkerd"

    @Option(name: .customLong("identity-issuance-lifetime"), help: "How long issued certificates live (Go duration).")
    var issuanceLifetime: GoDurationArgument = GoDurationArgument(.seconds(24 * 3600))

    @Option(
        name: .customLong("identity-clock-skew-allowance"),
        help: "How far certificates' validity is widened for clock skew (Go duration).")
    var clockSkewAllowance: GoDurationArgument = GoDurationArgument(.seconds(20))

    @Option(help: "A kubeconfig file; without one, the in-cluster configuration (or $KUBECONFIG) is used.")
    var kubeconfig: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    @Flag(help: "Serve plaintext HTTP/2 instead of TLS; allowed only on a loopback address.")
    var plaintext: Bool = false

    func validate() throws {
        guard issuanceLifetime.value > .zero else {
            throw ValidationError("--identity-issuance-lifetime must be positive")
        }
        guard clockSkewAllowance.value >= .zero else {
            throw ValidationError("--identity-clock-skew-allowance must not be negative")
        }
    }

    func run() async throws {
        let level = logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "linkerd.identity")
        var settings = IdentityController.Settings()
        settings.host = addr.host
        settings.port = addr.port
        settings.adminHost = adminAddr.host
        settings.adminPort = adminAddr.port
        settings.issuerDirectory = issuer
        settings.trustAnchorsPath = trustAnchors
        settings.trustDomain = trustDomain
        settings.controlPlaneNamespace = controllerNamespace
        settings.issuance = IssuanceSettings(
            lifetime: issuanceLifetime.value.duration, clockSkewAllowance: clockSkewAllowance.value.duration)
        settings.plaintext = plaintext

        let clientConfiguration: KubeClientConfiguration
        do {
            clientConfiguration = try KubeClientConfiguration.commandLine(kubeconfig: kubeconfig)
        } catch {
            throw ValidationError("cannot configure the Kubernetes client: \(error)")
        }
        let client = try KubeClient(configuration: clientConfiguration, logger: logger)
        do {
            let controller = try IdentityController(settings: settings, api: client, logger: logger)
            let group = ServiceGroup(
                configuration: .init(
                    services: controller.services.map { .init(service: $0) },
                    gracefulShutdownSignals: [.sigterm, .sigint],
                    logger: logger))
            logger.info(
                "linkerd-identity starting",
                metadata: [
                    "grpc": "\(addr)", "admin": "\(adminAddr)", "issuer": "\(issuer)",
                    "trustDomain": "\(trustDomain)", "namespace": "\(controllerNamespace)",
                ])
            try await group.run()
        } catch {
            try? await client.shutdown()
            throw error
        }
        try await client.shutdown()
    }
}

/// A Go duration flag value (`24h0m0s`, `20s`).
struct GoDurationArgument: ExpressibleByArgument, Sendable {
    var value: GoDuration

    init(_ duration: Duration) {
        value = GoDuration(duration)
    }

    init?(argument: String) {
        guard let value = try? GoDuration(parsing: argument) else { return nil }
        self.value = value
    }

    var defaultValueDescription: String { value.description }
}

/// Listening addresses as flags (`--addr :8080`); an invalid one is a usage error naming the flag.
extension ListenAddress: ExpressibleByArgument {
    public init?(argument: String) {
        guard let address = try? ListenAddress(parsing: argument) else { return nil }
        self = address
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
