import ArgumentParser
import LinkerdCore
import LinkerdProxyInit
import Logging

/// Everything a run of proxy-init needs, validated.
public struct ProxyInitSettings: Sendable, Hashable {
    /// The rules to install.
    public var firewall: FirewallConfiguration
    /// The iptables programs asked for.
    public var binaries: FirewallBinaries
    /// The ip6tables programs asked for, or nil when the rules are installed for IPv4 only (`--ipv6=false`).
    public var ipv6Binaries: FirewallBinaries?
    /// Print the commands instead of running them.
    public var simulate: Bool
    /// The network namespace to run in (a path such as `/run/netns/pod` or `/proc/<pid>/ns/net`), or nil for the
    /// current one.
    public var networkNamespace: String?
    /// Append `-w` to every changing command, so iptables waits for the xtables lock instead of failing.
    public var useWaitFlag: Bool
    /// When positive, `nf_conntrack_tcp_timeout_close_wait` is set to this many seconds first.
    public var closeWaitTimeoutSeconds: Int
    /// How log lines are written.
    public var logFormat: LogFormat
    /// The least severe level logged.
    public var logLevel: Logger.Level

    /// The families whose rules are installed, IPv4 first.
    public var families: [IPFamily] { ipv6Binaries == nil ? [.ipv4] : [.ipv4, .ipv6] }

    /// The programs asked for `family`.
    public func binaries(for family: IPFamily) -> FirewallBinaries {
        family == .ipv6 ? ipv6Binaries ?? binaries : binaries
    }
}

/// How log lines are written: `plain` (`time=… level=info msg="…"`) or `json` (one object per line).
public enum LogFormat: String, Sendable, Hashable, CaseIterable {
    case plain
    case json
}

/// The flags of upstream's proxy-init (control-plane.md §3.1), shared by installing and cleaning up. Values are
/// strings here and checked in ``settings(requirePorts:)``, so every refusal names the flag and the value.
struct FirewallOptions: ParsableArguments {
    @Option(
        name: [.customShort("p"), .customLong("incoming-proxy-port")], parsing: .unconditional,
        help: "Port inbound TCP traffic is redirected to (the proxy's inbound port, 4143).")
    var incomingProxyPort: String = "-1"

    @Option(
        name: [.customShort("o"), .customLong("outgoing-proxy-port")], parsing: .unconditional,
        help: "Port outbound TCP traffic is redirected to (the proxy's outbound port, 4140).")
    var outgoingProxyPort: String = "-1"

    @Option(
        name: [.customShort("u"), .customLong("proxy-uid")], parsing: .unconditional,
        help: "User ID the proxy runs as; its traffic is never redirected (-1: none).")
    var proxyUID: String = "-1"

    @Option(
        name: [.customShort("g"), .customLong("proxy-gid")], parsing: .unconditional,
        help: "Group ID the proxy runs as; its traffic is never redirected (-1: none).")
    var proxyGID: String = "-1"

    @Option(
        name: [.customShort("r"), .customLong("ports-to-redirect")],
        help: "Inbound ports to redirect, comma-separated; without any, every inbound port is redirected.")
    var portsToRedirect: [String] = []

    @Option(
        name: .customLong("inbound-ports-to-ignore"),
        help: "Inbound ports and ranges (a-b) that are not redirected, comma-separated.")
    var inboundPortsToIgnore: [String] = []

    @Option(
        name: .customLong("outbound-ports-to-ignore"),
        help: "Outbound ports and ranges (a-b) that are not redirected, comma-separated.")
    var outboundPortsToIgnore: [String] = []

    @Option(
        name: .customLong("subnets-to-ignore"),
        help: "Source CIDRs whose inbound traffic is not redirected, comma-separated.")
    var subnetsToIgnore: [String] = []

    @Option(
        name: .customLong("iptables-mode"),
        help: "iptables back end: nft, plain or legacy; overrides the binary paths.")
    var iptablesMode: String = ""

    @Option(
        name: .customLong("firewall-bin-path"),
        help: "The iptables program (default iptables-legacy); the ip6tables one is named after it.")
    var firewallBinPath: String = ""

    @Option(
        name: .customLong("firewall-save-bin-path"),
        help: "The iptables-save program (default: the iptables program's name with -save).")
    var firewallSaveBinPath: String = ""

    @Option(name: .customLong("ipv6"), help: "Also install the rules with ip6tables (--ipv6=false: do not).")
    var ipv6: String = "true"

    @Option(name: .customLong("simulate"), help: "Print the commands instead of running them.")
    var simulate: String = "false"

    @Option(
        name: .customLong("netns"),
        help: "Network namespace to run in: a path (/proc/<pid>/ns/net) or a name under /run/netns.")
    var netns: String = ""

    @Option(
        name: [.customShort("w"), .customLong("use-wait-flag")],
        help: "Make iptables wait for the xtables lock (-w).")
    var useWaitFlag: String = "false"

    @Option(
        name: .customLong("timeout-close-wait-secs"), parsing: .unconditional,
        help: "Set net.netfilter.nf_conntrack_tcp_timeout_close_wait to this many seconds (0: leave it).")
    var timeoutCloseWaitSecs: String = "0"

    @Option(name: .customLong("log-format"), help: "Log format: plain or json.")
    var logFormat: String = "plain"

    @Option(name: .customLong("log-level"), help: "Log level: trace, debug, info, warn, error.")
    var logLevel: String = "info"

    /// The validated settings; `requirePorts` is false for cleanup, which needs no proxy ports.
    func settings(requirePorts: Bool) throws(ValidationError) -> ProxyInitSettings {
        let incoming = try port(incomingProxyPort, flag: "--incoming-proxy-port", required: requirePorts)
        let outgoing = try port(outgoingProxyPort, flag: "--outgoing-proxy-port", required: requirePorts)
        let firewall = FirewallConfiguration(
            incomingProxyPort: incoming,
            outgoingProxyPort: outgoing,
            proxyUID: try id(proxyUID, flag: "--proxy-uid"),
            proxyGID: try id(proxyGID, flag: "--proxy-gid"),
            portsToRedirect: try redirectedPorts(),
            inboundPortsToIgnore: try ports(inboundPortsToIgnore, flag: "--inbound-ports-to-ignore"),
            outboundPortsToIgnore: try ports(outboundPortsToIgnore, flag: "--outbound-ports-to-ignore"),
            subnetsToIgnore: try subnets())
        guard incoming == 0 || incoming != outgoing else {
            throw ValidationError(
                "--incoming-proxy-port and --outgoing-proxy-port are both \(incoming): the proxy listens on two ports")
        }
        let binaries = try binaries()
        var ipv6Binaries: FirewallBinaries?
        if try boolean(ipv6, flag: "--ipv6") {
            guard let counterpart = iptablesMode.isEmpty ? binaries.forIPv6 : .named(try mode(), family: .ipv6) else {
                throw ValidationError(
                    "cannot tell the ip6tables programs from \(binaries.command.quoted) and \(binaries.save.quoted) "
                        + "(their names do not start with iptables): pass --ipv6=false or --iptables-mode")
            }
            ipv6Binaries = counterpart
        }
        return ProxyInitSettings(
            firewall: firewall,
            binaries: binaries,
            ipv6Binaries: ipv6Binaries,
            simulate: try boolean(simulate, flag: "--simulate"),
            networkNamespace: try networkNamespace(),
            useWaitFlag: try boolean(useWaitFlag, flag: "--use-wait-flag"),
            closeWaitTimeoutSeconds: try closeWaitTimeout(),
            logFormat: try choice(logFormat, flag: "--log-format"),
            logLevel: try level())
    }

    private func invalid(_ flag: String, _ value: String, _ reason: String) -> ValidationError {
        ValidationError("invalid value \(value.quoted) for \(flag): \(reason)")
    }

    private func port(_ value: String, flag: String, required: Bool) throws(ValidationError) -> UInt16 {
        if value == "-1" {
            guard required else { return 0 }
            let role = flag.contains("incoming") ? "inbound port (4143)" : "outbound port (4140)"
            throw ValidationError("\(flag) is required: the proxy's \(role)")
        }
        guard let port = UInt16(value.trimmingWhitespace), port > 0 else {
            throw invalid(flag, value, "must be a TCP port from 1 to 65535")
        }
        return port
    }

    private func id(_ value: String, flag: String) throws(ValidationError) -> UInt32? {
        let text = value.trimmingWhitespace
        if text == "-1" { return nil }
        guard let id = UInt32(text) else {
            throw invalid(flag, value, "must be a numeric ID from 0 to \(UInt32.max), or -1 for none")
        }
        return id
    }

    /// Flag values split at commas, as cobra's slice flags do, so `--x a,b` and `--x a --x b` mean the same.
    private func entries(_ values: [String]) -> [String] {
        values.flatMap { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
    }

    /// The listed ports in the order given, each once: a port listed twice would get two identical rules.
    private func redirectedPorts() throws(ValidationError) -> [UInt16] {
        var ports: [UInt16] = []
        for entry in entries(portsToRedirect) {
            guard let port = UInt16(entry.trimmingWhitespace), port > 0 else {
                throw invalid("--ports-to-redirect", entry, "must be a TCP port from 1 to 65535")
            }
            if !ports.contains(port) {
                ports.append(port)
            }
        }
        return ports
    }

    private func ports(_ values: [String], flag: String) throws(ValidationError) -> PortList {
        var ranges: [PortRange] = []
        for value in values {
            do throws(ParseError) {
                ranges += try PortList(parsing: value).ranges
            } catch {
                throw ValidationError("invalid value for \(flag): \(error)")
            }
        }
        return PortList(ranges)
    }

    private func subnets() throws(ValidationError) -> [CIDR] {
        var subnets: [CIDR] = []
        for entry in entries(subnetsToIgnore) {
            do throws(ParseError) {
                subnets.append(try CIDR(parsing: entry.trimmingWhitespace))
            } catch {
                throw ValidationError("invalid value for --subnets-to-ignore: \(error)")
            }
        }
        return subnets
    }

    /// The iptables programs: `--iptables-mode`'s names when given; otherwise `--firewall-bin-path` (default
    /// `iptables-legacy`) and `--firewall-save-bin-path` (default: the first with `-save`), which must not mix the
    /// nft and legacy back ends.
    private func binaries() throws(ValidationError) -> FirewallBinaries {
        guard iptablesMode.isEmpty else {
            return .named(try mode(), family: .ipv4)
        }
        let command = firewallBinPath.isEmpty ? "iptables-legacy" : firewallBinPath
        let binaries = FirewallBinaries(
            command: command, save: firewallSaveBinPath.isEmpty ? command + "-save" : firewallSaveBinPath)
        guard !binaries.mixesBackEnds else {
            throw ValidationError(
                "--firewall-bin-path \(binaries.command.quoted) and --firewall-save-bin-path \(binaries.save.quoted) "
                    + "use different iptables back ends: the rules written would not be the rules read back")
        }
        return binaries
    }

    private func mode() throws(ValidationError) -> IPTablesMode {
        try choice(iptablesMode, flag: "--iptables-mode")
    }

    /// A boolean the way cobra reads one: `true`, `false`, `1`, `0`, `t`, `f` in any case.
    private func boolean(_ value: String, flag: String) throws(ValidationError) -> Bool {
        switch value.lowercased() {
        case "true", "t", "1": return true
        case "false", "f", "0": return false
        default: throw invalid(flag, value, "must be true or false")
        }
    }

    /// `--netns` as a path: absolute as given, or a bare name under `/run/netns` (where `ip netns` keeps them).
    private func networkNamespace() throws(ValidationError) -> String? {
        if netns.isEmpty { return nil }
        if netns.hasPrefix("/") { return netns }
        guard !netns.contains("/"), netns != ".", netns != ".." else {
            throw invalid("--netns", netns, "must be an absolute path or the name of a namespace in /run/netns")
        }
        return "/run/netns/\(netns)"
    }

    private func closeWaitTimeout() throws(ValidationError) -> Int {
        guard let seconds = Int(timeoutCloseWaitSecs.trimmingWhitespace), seconds >= 0 else {
            throw invalid(
                "--timeout-close-wait-secs", timeoutCloseWaitSecs, "must be a whole number of seconds, 0 or more")
        }
        return seconds
    }

    private func choice<Choice: RawRepresentable & CaseIterable>(
        _ value: String, flag: String
    ) throws(ValidationError) -> Choice where Choice.RawValue == String {
        guard let choice = Choice(rawValue: value) else {
            let allowed = Choice.allCases.map(\.rawValue).joined(separator: ", ")
            throw invalid(flag, value, "must be one of \(allowed)")
        }
        return choice
    }

    /// logrus's level names, which upstream's `--log-level` takes, mapped onto swift-log's.
    private func level() throws(ValidationError) -> Logger.Level {
        let levels: [String: Logger.Level] = [
            "trace": .trace, "debug": .debug, "info": .info, "warn": .warning, "warning": .warning,
            "error": .error, "fatal": .critical, "panic": .critical,
        ]
        guard let level = levels[logLevel.lowercased()] else {
            throw invalid("--log-level", logLevel, "must be one of trace, debug, info, warn, error, fatal, panic")
        }
        return level
    }
}

/// cobra's boolean flags take no separate value: `--ipv6` means true and `--ipv6=false` false, while
/// `--ipv6 false` leaves `false` as an argument. ArgumentParser options need a value, so a bare boolean flag is
/// given the value `true` before parsing (`--ipv6=true`, `-w true`), which keeps every form the injector and users
/// write working.
enum BooleanFlags {
    static let longNames: Set<String> = ["--ipv6", "--simulate", "--use-wait-flag"]
    static let shortName = "-w"

    static func normalize(_ arguments: [String]) -> [String] {
        arguments.flatMap { argument -> [String] in
            if longNames.contains(argument) { return ["\(argument)=true"] }
            if argument == shortName { return [argument, "true"] }
            // ArgumentParser takes no `=` after a short option.
            if argument.hasPrefix(shortName + "=") { return [shortName, String(argument.dropFirst(3))] }
            return [argument]
        }
    }
}
