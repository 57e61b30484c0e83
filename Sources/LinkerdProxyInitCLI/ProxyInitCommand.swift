import ArgumentParser
import Foundation
import LinkerdProxyInit
import Logging

/// What a run of proxy-init reads and writes besides the network: its environment (for `PATH`), the programs it
/// runs, and its two output streams.
public struct ProxyInitContext: Sendable {
    public var environment: [String: String]
    public var runner: any CommandRunner
    public var standardOutput: @Sendable (String) -> Void
    public var standardError: @Sendable (String) -> Void

    public init(
        environment: [String: String], runner: any CommandRunner,
        standardOutput: @escaping @Sendable (String) -> Void, standardError: @escaping @Sendable (String) -> Void
    ) {
        self.environment = environment
        self.runner = runner
        self.standardOutput = standardOutput
        self.standardError = standardError
    }

    /// The process's environment, child processes, and standard output and error.
    public static var process: ProxyInitContext {
        ProxyInitContext(
            environment: ProcessInfo.processInfo.environment, runner: ProcessCommandRunner(),
            standardOutput: { FileHandle.standardOutput.write(Data($0.utf8)) },
            standardError: { FileHandle.standardError.write(Data($0.utf8)) })
    }
}

/// `linkerd-proxy-init`: installs (or removes) the nat rules that send a pod's TCP traffic through its proxy.
/// The executable runs ``main(_:)`` on its arguments; tests call ``run(_:context:)``.
public struct ProxyInitCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "linkerd-proxy-init",
        abstract: "Redirect a pod's TCP traffic through the Linkerd proxy with iptables.",
        discussion: """
            Without a subcommand, installs the rules (the linkerd-init container's job). The rules live in the nat \
            chains PROXY_INIT_REDIRECT (from PREROUTING) and PROXY_INIT_OUTPUT (from OUTPUT); running again \
            replaces them, and 'cleanup' removes them. When a command fails, the run's changes are undone.

            Exit status: 0 done; 1 a command failed (or timed out) and the nat rules were restored to how they \
            were; 2 a command failed and restoring failed too; 64 invalid flags; 65 iptables-save printed an \
            unreadable table; 69 iptables, nsenter or the network namespace is missing or unusable (nothing was \
            changed).
            """,
        subcommands: [InstallCommand.self, CleanupCommand.self],
        defaultSubcommand: InstallCommand.self
    )

    public init() {}

    /// Parses `arguments` (without the program name) and runs them with `context`, returning the exit status.
    /// Help goes to standard output with status 0; flag errors to standard error with status 64.
    public static func run(_ arguments: [String], context: ProxyInitContext) -> Int32 {
        do {
            let command = try parseAsRoot(BooleanFlags.normalize(arguments))
            guard let firewallCommand = command as? any FirewallCommand else {
                context.standardOutput(helpMessage() + "\n")
                return 0
            }
            return firewallCommand.execute(in: context)
        } catch {
            let code = exitCode(for: error).rawValue
            let message = fullMessage(for: error) + "\n"
            code == 0 ? context.standardOutput(message) : context.standardError(message)
            return code
        }
    }

    /// Runs the process's own arguments and exits with the status.
    public static func main(_ arguments: [String]) -> Never {
        Foundation.exit(run(arguments, context: .process))
    }
}

/// A subcommand that changes the firewall: installing or cleaning up.
protocol FirewallCommand: ParsableCommand {
    var options: FirewallOptions { get }
    var action: FirewallRun.Action { get }
}

extension FirewallCommand {
    /// Checks the flags, runs the action logging as they say, and returns the exit status.
    ///
    /// The flags are checked here rather than in `validate()`, which would only repeat the same work before it.
    func execute(in context: ProxyInitContext) -> Int32 {
        let settings: ProxyInitSettings
        do {
            settings = try options.settings(requirePorts: action == .install)
        } catch {
            context.standardError(ProxyInitCommand.fullMessage(for: error) + "\n")
            return ProxyInitCommand.exitCode(for: error).rawValue
        }
        let logger = Logger(label: "linkerd.proxy-init") { _ in
            ProxyInitLogHandler(format: settings.logFormat, sink: context.standardError, logLevel: settings.logLevel)
        }
        let run = FirewallRun(
            settings: settings, runner: context.runner, locator: ProgramLocator(environment: context.environment),
            logger: logger, print: context.standardOutput)
        do {
            try run.perform(action)
            return 0
        } catch {
            logger.error("\(error.message)")
            return error.status.rawValue
        }
    }
}

/// Installs the rules: the default subcommand.
struct InstallCommand: FirewallCommand {
    static let configuration = CommandConfiguration(
        commandName: "install", abstract: "Install the redirect rules (the default).")

    @OptionGroup var options: FirewallOptions

    var action: FirewallRun.Action { .install }
}

/// Removes the rules.
struct CleanupCommand: FirewallCommand {
    static let configuration = CommandConfiguration(
        commandName: "cleanup",
        abstract: "Remove every rule and chain proxy-init installs; the proxy ports are not needed.")

    @OptionGroup var options: FirewallOptions

    var action: FirewallRun.Action { .cleanup }
}
