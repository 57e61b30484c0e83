import LinkerdCore

/// The iptables commands that install, remove and restore proxy-init's nat rules, planned from a snapshot of the
/// table without running anything.
///
/// proxy-init owns two chains: ``redirectChain``, jumped to from `PREROUTING`, redirects inbound TCP to the proxy's
/// inbound port, and ``outputChain``, jumped to from `OUTPUT`, redirects outbound TCP to its outbound port. Every
/// rule carries a `proxy-init/<what it does>` comment, and the arguments keep the order upstream linkerd2-proxy-init
/// uses, so operators recognise the commands and the saved rules.
public enum FirewallPlanner {
    /// The chain that redirects inbound traffic, jumped to from `PREROUTING`.
    public static let redirectChain = "PROXY_INIT_REDIRECT"
    /// The chain that redirects outbound traffic, jumped to from `OUTPUT`.
    public static let outputChain = "PROXY_INIT_OUTPUT"

    /// The most ports one `multiport` match takes: a single port counts 1 and a range 2.
    public static let multiportLimit = 15

    /// The commands that install the rules, given the table as it is now (from `<save> -t nat`).
    ///
    /// Each chain is created, or flushed when it exists, then filled; the jump to it is appended only when its
    /// built-in chain has no jump to it yet. Running the plan again on the result changes nothing but the counters.
    /// Only the subnets of `family` are ignored.
    public static func install(
        _ configuration: FirewallConfiguration,
        family: IPFamily,
        existing: NATTable
    ) -> [IPTablesCommand] {
        var commands: [IPTablesCommand] = []
        func nat(_ arguments: String...) {
            commands.append(IPTablesCommand(["-t", "nat"] + arguments))
        }
        func rule(_ chain: String, _ arguments: [String], comment: String) {
            commands.append(
                IPTablesCommand(
                    ["-t", "nat", "-A", chain] + arguments + ["-m", "comment", "--comment", "proxy-init/" + comment])
            )
        }
        func ignorePorts(_ ports: PortList, in chain: String) {
            for destinations in multiportDestinations(ports) {
                rule(
                    chain,
                    ["-p", "tcp", "--match", "multiport", "--dports", destinations, "-j", "RETURN"],
                    comment: "ignore-port-" + destinations
                )
            }
        }
        let incoming = String(configuration.incomingProxyPort)

        nat(existing.hasChain(redirectChain) ? "-F" : "-N", redirectChain)
        ignorePorts(configuration.inboundPortsToIgnore, in: redirectChain)
        for subnet in configuration.subnetsToIgnore(for: family) {
            rule(redirectChain, ["-p", "all", "-j", "RETURN", "-s", "\(subnet)"], comment: "ignore-subnet-\(subnet)")
        }
        if configuration.portsToRedirect.isEmpty {
            rule(
                redirectChain,
                ["-p", "tcp", "-j", "REDIRECT", "--to-port", incoming],
                comment: "redirect-all-incoming-to-proxy-port"
            )
        } else {
            for port in configuration.portsToRedirect {
                rule(
                    redirectChain,
                    ["-p", "tcp", "--destination-port", String(port), "-j", "REDIRECT", "--to-port", incoming],
                    comment: "redirect-port-\(port)-to-proxy-port"
                )
            }
        }
        if !hasJump(in: existing, from: "PREROUTING", to: redirectChain) {
            rule("PREROUTING", ["-j", redirectChain], comment: "install-proxy-init-prerouting")
        }

        nat(existing.hasChain(outputChain) ? "-F" : "-N", outputChain)
        if let uid = configuration.proxyUID, uid > 0 {
            rule(
                outputChain, ["-m", "owner", "--uid-owner", String(uid), "-j", "RETURN"],
                comment: "ignore-proxy-user-id")
        }
        if let gid = configuration.proxyGID, gid > 0 {
            rule(
                outputChain, ["-m", "owner", "--gid-owner", String(gid), "-j", "RETURN"],
                comment: "ignore-proxy-group-id")
        }
        rule(outputChain, ["-o", "lo", "-j", "RETURN"], comment: "ignore-loopback")
        ignorePorts(configuration.outboundPortsToIgnore, in: outputChain)
        rule(
            outputChain,
            ["-p", "tcp", "-j", "REDIRECT", "--to-port", String(configuration.outgoingProxyPort)],
            comment: "redirect-all-outgoing-to-proxy-port"
        )
        if !hasJump(in: existing, from: "OUTPUT", to: outputChain) {
            rule("OUTPUT", ["-j", outputChain], comment: "install-proxy-init-output")
        }
        return commands
    }

    /// The commands that remove everything install adds: every rule in any chain that jumps to one of our chains
    /// (deleted with `-D <chain> <its arguments>`, so duplicates left by older versions go too), then flush, then
    /// delete whichever of our chains exist. A clean table gives no commands.
    ///
    /// The jumps go first, `PREROUTING`'s, then `OUTPUT`'s, then any other chain's, each in table order, since a
    /// chain still jumped to cannot be deleted; both chains are flushed before either is deleted for the same reason.
    /// Rules inside our own chains are not deleted one by one: the flush removes them.
    public static func cleanup(existing: NATTable) -> [IPTablesCommand] {
        let jumpDeletions = jumpsToOurChains(in: existing).map(delete)
        let present = ownChains.filter(existing.hasChain)
        return jumpDeletions + present.map(flush) + present.map { IPTablesCommand(["-t", "nat", "-X", $0]) }
    }

    /// The commands that bring our chains and the jumps to them from `current` back to how they were in `before`
    /// (used when an install or cleanup failed part-way): delete jumps to our chains that `current` has beyond
    /// `before` (count duplicates), flush our chains that exist in `current`, delete those absent from `before`,
    /// create those of `before` missing from `current`, re-append `before`'s rules of our chains, and re-insert jumps
    /// that `before` had and `current` lacks with `-I <chain> <1-based position it had in before>`. Equal tables
    /// give no commands.
    ///
    /// A chain of ours whose rules are the same in both tables is left alone (not flushed and refilled). An insertion
    /// position past the end of the chain as it will be (when rules other than our jumps differ between the tables)
    /// is lowered to one past its last rule, which iptables accepts.
    public static func rollback(current: NATTable, before: NATTable) -> [IPTablesCommand] {
        var unmatchedInBefore = occurrences(of: jumpsToOurChains(in: before))
        var extraJumps: [NATRule] = []
        for jump in jumpsToOurChains(in: current) {
            if unmatchedInBefore[jump, default: 0] > 0 {
                unmatchedInBefore[jump, default: 0] -= 1
            } else {
                extraJumps.append(jump)
            }
        }

        let changed = ownChains.filter {
            current.hasChain($0) != before.hasChain($0) || current.rules(in: $0) != before.rules(in: $0)
        }
        let stale = changed.filter { current.hasChain($0) && !before.hasChain($0) }
        let missing = changed.filter { before.hasChain($0) && !current.hasChain($0) }
        var commands = extraJumps.map(delete)
        commands += changed.filter(current.hasChain).map(flush)
        commands += stale.map { IPTablesCommand(["-t", "nat", "-X", $0]) }
        commands += missing.reversed().map { IPTablesCommand(["-t", "nat", "-N", $0]) }
        for chain in changed.reversed() where before.hasChain(chain) {
            commands += before.rules(in: chain).map { IPTablesCommand(["-t", "nat", "-A", chain] + $0.arguments) }
        }
        commands += missingJumps(current: current, before: before, deleted: extraJumps)
        return commands
    }

    /// The `-I` commands that put back the jumps to our chains that `before` had and `current` lacks, each at the
    /// position it had in `before`, in table order so that each insertion's position counts the ones before it.
    /// A position is lowered to one past the chain's last rule, as the chain will be once `deleted` are gone and the
    /// earlier insertions are made, so that iptables accepts it.
    private static func missingJumps(current: NATTable, before: NATTable, deleted: [NATRule]) -> [IPTablesCommand] {
        var length: [String: Int] = [:]
        for rule in current.rules {
            length[rule.chain, default: 0] += 1
        }
        for rule in deleted {
            length[rule.chain, default: 0] -= 1
        }
        var unmatchedInCurrent = occurrences(of: jumpsToOurChains(in: current))
        var position: [String: Int] = [:]
        var commands: [IPTablesCommand] = []
        for rule in before.rules {
            let rulePosition = position[rule.chain, default: 0] + 1
            position[rule.chain] = rulePosition
            guard isJumpToOurChain(rule) else { continue }
            if unmatchedInCurrent[rule, default: 0] > 0 {
                unmatchedInCurrent[rule, default: 0] -= 1
                continue
            }
            let insertAt = min(rulePosition, length[rule.chain, default: 0] + 1)
            length[rule.chain, default: 0] += 1
            commands.append(IPTablesCommand(["-t", "nat", "-I", rule.chain, String(insertAt)] + rule.arguments))
        }
        return commands
    }

    /// The `--dports` values for `ports`, one per rule, in list order: `80` for a port, `1000:2000` for a range
    /// (iptables' multiport syntax), comma-separated, each value holding at most ``multiportLimit`` port references
    /// (a range counts 2). A new value starts when the next entry would exceed the limit, so no range is split.
    public static func multiportDestinations(_ ports: PortList) -> [String] {
        var chunks: [[String]] = []
        var references = 0
        for range in ports.ranges {
            let (destination, weight) =
                range.lowerBound == range.upperBound
                ? ("\(range.lowerBound)", 1) : ("\(range.lowerBound):\(range.upperBound)", 2)
            if chunks.isEmpty || references + weight > multiportLimit {
                chunks.append([])
                references = 0
            }
            chunks[chunks.count - 1].append(destination)
            references += weight
        }
        return chunks.map { $0.joined(separator: ",") }
    }

    /// Our chains in the order cleanup flushes and deletes them; install creates them in the reverse order.
    private static let ownChains = [outputChain, redirectChain]

    private static func hasJump(in table: NATTable, from chain: String, to target: String) -> Bool {
        table.rules(in: chain).contains { $0.target == target }
    }

    private static func isJumpToOurChain(_ rule: NATRule) -> Bool {
        !ownChains.contains(rule.chain) && rule.target.map(ownChains.contains) == true
    }

    /// The rules outside our chains that jump to them: `PREROUTING`'s, then `OUTPUT`'s, then the other chains',
    /// each in table order.
    private static func jumpsToOurChains(in table: NATTable) -> [NATRule] {
        let jumps = table.rules.filter(isJumpToOurChain)
        let builtIns = ["PREROUTING", "OUTPUT"]
        return builtIns.flatMap { chain in jumps.filter { $0.chain == chain } }
            + jumps.filter { !builtIns.contains($0.chain) }
    }

    private static func occurrences(of rules: [NATRule]) -> [NATRule: Int] {
        rules.reduce(into: [:]) { $0[$1, default: 0] += 1 }
    }

    private static func delete(_ rule: NATRule) -> IPTablesCommand {
        IPTablesCommand(["-t", "nat", "-D", rule.chain] + rule.arguments)
    }

    private static func flush(_ chain: String) -> IPTablesCommand {
        IPTablesCommand(["-t", "nat", "-F", chain])
    }
}
