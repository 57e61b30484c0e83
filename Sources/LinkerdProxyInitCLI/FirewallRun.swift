import Foundation
import LinkerdCore
import LinkerdProxyInit
import Logging

/// Why a run of proxy-init failed, with the exit status it ends the process with.
public struct ProxyInitFailure: Error, Hashable, Sendable, CustomStringConvertible {
    /// The exit statuses, chosen so an operator (or a CNI plugin) can tell the cases apart without reading logs.
    public enum Status: Int32, Sendable, Hashable {
        /// A command failed; everything this run changed was undone.
        case failedAndRolledBack = 1
        /// A command failed and undoing the changes failed too: rules of this run may remain.
        case rollbackIncomplete = 2
        /// The flags were invalid (ArgumentParser's usage status).
        case usage = 64
        /// iptables-save printed something that is not a nat table.
        case unreadableRules = 65
        /// Something proxy-init needs is missing: the iptables programs, nsenter, or the network namespace.
        case unavailable = 69
    }

    public var status: Status
    public var message: String

    public init(_ status: Status, _ message: String) {
        self.status = status
        self.message = message
    }

    public var description: String { message }
}

/// One run of proxy-init against real programs: resolves the iptables programs, reads the table, runs the plan
/// and, when a command fails, rolls every family it touched back to how it was before the run.
struct FirewallRun {
    let settings: ProxyInitSettings
    let runner: any CommandRunner
    let locator: ProgramLocator
    let logger: Logger
    /// Where `--simulate` prints the commands.
    let print: @Sendable (String) -> Void

    /// What to do to each family's table.
    enum Action {
        case install
        case cleanup

        func plan(_ settings: ProxyInitSettings, family: IPFamily, existing: NATTable) -> [IPTablesCommand] {
            switch self {
            case .install: FirewallPlanner.install(settings.firewall, family: family, existing: existing)
            case .cleanup: FirewallPlanner.cleanup(existing: existing)
            }
        }
    }

    /// A family whose table this run has read, and maybe changed.
    private struct Touched {
        var family: IPFamily
        var binaries: FirewallBinaries
        var before: NATTable
    }

    func perform(_ action: Action) throws(ProxyInitFailure) {
        if settings.simulate {
            simulate(action)
            return
        }
        let namespacePrefix = try namespacePrefix()
        // Every family's programs are found and its table read before anything changes, so that a missing or
        // broken ip6tables cannot leave the IPv4 rules installed on their own.
        let programs = try settings.families.map { family throws(ProxyInitFailure) in (family, try resolve(family)) }
        var touched: [Touched] = []
        for (family, binaries) in programs {
            touched.append(
                Touched(family: family, binaries: binaries, before: try read(binaries, prefix: namespacePrefix)))
        }
        if action == .install {
            try setCloseWaitTimeout(prefix: namespacePrefix)
        }
        for (index, family) in touched.enumerated() {
            for command in action.plan(settings, family: family.family, existing: family.before) {
                let result = execute(command, with: family.binaries, prefix: namespacePrefix)
                guard result.succeeded else {
                    let failed = "\(family.binaries.command) \(command) failed (\(result.summary))"
                    logger.error("\(failed); rolling back")
                    throw rollBack(touched[...index], prefix: namespacePrefix, after: failed)
                }
            }
            let after = runner.run(namespacePrefix + [family.binaries.save, "-t", "nat"])
            if after.succeeded {
                logger.info("\(family.binaries.save) -t nat: \(after.standardOutput)")
            } else {
                logger.warning("\(family.binaries.save) -t nat failed after the changes (\(after.summary))")
            }
        }
    }

    /// `--simulate`: the plans for an empty table, printed as the commands that would run.
    private func simulate(_ action: Action) {
        let prefix = settings.networkNamespace.map { "nsenter --net=\($0) -- " } ?? ""
        if action == .install, settings.closeWaitTimeoutSeconds > 0 {
            print("\(prefix)sysctl -w \(closeWaitSetting)\n")
        }
        for family in settings.families {
            let programs = settings.binaries(for: family)
            print("\(prefix)\(programs.save) -t nat\n")
            for command in action.plan(settings, family: family, existing: .empty) {
                print("\(prefix)\(programs.command) \(command)\(settings.useWaitFlag ? " -w" : "")\n")
            }
        }
    }

    private var closeWaitSetting: String {
        "net.netfilter.nf_conntrack_tcp_timeout_close_wait=\(settings.closeWaitTimeoutSeconds)"
    }

    /// `nsenter --net=<namespace> --` when a namespace was given, after checking that it exists.
    private func namespacePrefix() throws(ProxyInitFailure) -> [String] {
        guard let namespace = settings.networkNamespace else { return [] }
        guard FileManager.default.fileExists(atPath: namespace) else {
            throw ProxyInitFailure(.unavailable, "the network namespace \(namespace.quoted) (--netns) does not exist")
        }
        guard NamespaceFile.isNamespace(namespace) else {
            throw ProxyInitFailure(
                .unavailable,
                "\(namespace.quoted) (--netns) is not a namespace: expected a file of the nsfs file system, such as "
                    + "/proc/<pid>/ns/net or one of /run/netns")
        }
        guard let nsenter = locator.locate("nsenter") else {
            throw ProxyInitFailure(
                .unavailable,
                "--netns needs nsenter, which is not in PATH (\(locator.searchPath.joined(separator: ":")))")
        }
        return [nsenter, "--net=\(namespace)", "--"]
    }

    private func resolve(_ family: IPFamily) throws(ProxyInitFailure) -> FirewallBinaries {
        let configured = settings.binaries(for: family)
        do throws(FirewallBinaryLookupError) {
            let (binaries, isFallback) = try FirewallBinarySelection.select(
                configured: configured, family: family, locate: locator.locate)
            if isFallback {
                logger.warning("\(configured) not found; falling back to \(binaries)")
            }
            return binaries
        } catch {
            throw ProxyInitFailure(.unavailable, error.description)
        }
    }

    private func setCloseWaitTimeout(prefix: [String]) throws(ProxyInitFailure) {
        guard settings.closeWaitTimeoutSeconds > 0 else { return }
        guard let sysctl = locator.locate("sysctl") else {
            throw ProxyInitFailure(.unavailable, "--timeout-close-wait-secs needs sysctl, which is not in PATH")
        }
        let setting = closeWaitSetting
        let result = runner.run(prefix + [sysctl, "-w", setting])
        guard result.succeeded else {
            throw ProxyInitFailure(
                .failedAndRolledBack, "sysctl -w \(setting) failed (\(result.summary)); no rules were changed")
        }
        logger.info("sysctl -w \(setting)")
    }

    private func read(_ binaries: FirewallBinaries, prefix: [String]) throws(ProxyInitFailure) -> NATTable {
        let result = runner.run(prefix + [binaries.save, "-t", "nat"])
        guard result.succeeded else {
            throw ProxyInitFailure(.unavailable, "\(binaries.save) -t nat failed (\(result.summary))")
        }
        do throws(ParseError) {
            return try NATTable(parsingSave: result.standardOutput)
        } catch {
            throw ProxyInitFailure(.unreadableRules, "\(binaries.save) -t nat printed an unreadable table: \(error)")
        }
    }

    private func execute(_ command: IPTablesCommand, with binaries: FirewallBinaries, prefix: [String]) -> CommandResult
    {
        logger.info("\(binaries.command) \(command)")
        return runner.run(prefix + [binaries.command] + command.arguments + (settings.useWaitFlag ? ["-w"] : []))
    }

    /// Undoes this run's changes to every family it touched, latest first, and returns the failure to report.
    private func rollBack(
        _ touched: ArraySlice<Touched>, prefix: [String], after failure: String
    ) -> ProxyInitFailure {
        var problems: [String] = []
        for family in touched.reversed() {
            let current: NATTable
            do throws(ProxyInitFailure) {
                current = try read(family.binaries, prefix: prefix)
            } catch {
                problems.append(error.message)
                continue
            }
            for command in FirewallPlanner.rollback(current: current, before: family.before) {
                let result = execute(command, with: family.binaries, prefix: prefix)
                if !result.succeeded {
                    problems.append("\(family.binaries.command) \(command) failed (\(result.summary))")
                }
            }
        }
        guard problems.isEmpty else {
            return ProxyInitFailure(
                .rollbackIncomplete,
                "\(failure); rolling back failed too, so some proxy-init rules may remain: "
                    + problems.joined(separator: "; "))
        }
        return ProxyInitFailure(.failedAndRolledBack, "\(failure); the nat table was restored to how it was before")
    }
}
