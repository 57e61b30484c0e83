import LinkerdCore
import LinkerdProxyInit
import Testing

@Suite("FirewallPlanner")
struct FirewallPlannerTests {
    /// Every captured table, installed or not.
    static let fixtures = [
        "clean-nft", "full-install-nft", "full-install-legacy", "full-install-ipv6-nft", "partial-install-nft",
        "duplicated-jumps-nft", "existing-install-nft", "partial-reinstall-nft", "partial-cleanup-nft",
        "skip-ports-nft",
        "skip-subnets-nft", "skip-subnets-ipv6-nft", "redirect-listed-nft", "proxy-gid-nft", "all-tables-nft",
    ]

    static let configurations = [
        PlanGoldenTests.defaultConfiguration, PlanGoldenTests.skipPortsConfiguration,
        PlanGoldenTests.skipSubnetsConfiguration, PlanGoldenTests.redirectListed, PlanGoldenTests.proxyGIDConfiguration,
    ]

    static let ourChains = [FirewallPlanner.redirectChain, FirewallPlanner.outputChain]

    static func ports(_ entries: [PortRange]) -> PortList {
        PortList(entries)
    }

    // MARK: - Multiport chunks

    @Test("15 port references make one rule, 16 make two")
    func chunkLimit() {
        let fifteen = Self.ports((1...15).map(PortRange.init))
        #expect(FirewallPlanner.multiportDestinations(fifteen) == [(1...15).map(String.init).joined(separator: ",")])
        let sixteen = Self.ports((1...16).map(PortRange.init))
        #expect(
            FirewallPlanner.multiportDestinations(sixteen) == [(1...15).map(String.init).joined(separator: ","), "16"])

        let sevenRangesAndAPort = Self.ports((1...7).map { PortRange(($0 * 100)...($0 * 100 + 1)) } + [PortRange(9)])
        #expect(FirewallPlanner.multiportDestinations(sevenRangesAndAPort).count == 1, "7 ranges and a port are 15")
        let eightRanges = Self.ports((1...8).map { PortRange(($0 * 100)...($0 * 100 + 1)) })
        #expect(
            FirewallPlanner.multiportDestinations(eightRanges) == [
                "100:101,200:201,300:301,400:401,500:501,600:601,700:701", "800:801",
            ])
    }

    @Test("a range that would pass the limit starts the next rule whole")
    func rangeNotSplit() {
        let thirteenAndARange = Self.ports((1...13).map(PortRange.init) + [PortRange(2000...3000)])
        #expect(FirewallPlanner.multiportDestinations(thirteenAndARange).count == 1, "13 ports and a range are 15")
        let fourteenAndARange = Self.ports((1...14).map(PortRange.init) + [PortRange(2000...3000), PortRange(80)])
        #expect(
            FirewallPlanner.multiportDestinations(fourteenAndARange) == [
                (1...14).map(String.init).joined(separator: ","), "2000:3000,80",
            ])
    }

    @Test("a one-port range is a single port; the list order and duplicates are kept; an empty list has no rule")
    func destinations() {
        #expect(
            FirewallPlanner.multiportDestinations(Self.ports([PortRange(80...80), PortRange(22), PortRange(22)]))
                == ["80,22,22"])
        #expect(FirewallPlanner.multiportDestinations([]).isEmpty)
        let configuration = FirewallConfiguration(incomingProxyPort: 4143, outgoingProxyPort: 4140)
        let plan = FirewallPlanner.install(configuration, family: .ipv4, existing: .empty)
        #expect(!plan.contains { $0.arguments.contains("multiport") })
    }

    @Test("each chunk is a rule whose comment names its ports")
    func chunkRules() {
        var configuration = FirewallConfiguration(incomingProxyPort: 4143, outgoingProxyPort: 4140)
        configuration.outboundPortsToIgnore = Self.ports((1...16).map(PortRange.init))
        let rules = FirewallPlanner.install(configuration, family: .ipv4, existing: .empty).filter {
            $0.arguments.contains("multiport")
        }
        #expect(rules.map { $0.arguments[3] } == ["PROXY_INIT_OUTPUT", "PROXY_INIT_OUTPUT"])
        #expect(
            rules.last?.arguments.suffix(7) == [
                "16", "-j", "RETURN", "-m", "comment", "--comment", "proxy-init/ignore-port-16",
            ])
    }

    // MARK: - Install

    @Test("the proxy's user and group are ignored only when greater than 0", arguments: [nil, 0, 1, 2102] as [UInt32?])
    func ownerRules(id: UInt32?) {
        var configuration = FirewallConfiguration(incomingProxyPort: 4143, outgoingProxyPort: 4140)
        configuration.proxyUID = id
        configuration.proxyGID = id
        let plan = FirewallPlanner.install(configuration, family: .ipv4, existing: .empty)
        let owners = plan.compactMap { command in
            command.arguments.firstIndex(of: "owner").map {
                command.arguments[$0 + 1] + " " + command.arguments[$0 + 2]
            }
        }
        if let id, id > 0 {
            #expect(owners == ["--uid-owner \(id)", "--gid-owner \(id)"])
        } else {
            #expect(owners.isEmpty)
        }
    }

    @Test("a plan for a family ignores only that family's subnets, in order", arguments: IPFamily.allCases)
    func subnetsByFamily(family: IPFamily) throws {
        var configuration = FirewallConfiguration(incomingProxyPort: 4143, outgoingProxyPort: 4140)
        configuration.subnetsToIgnore = try CIDR.parseList("10.0.0.0/8,fd00::/8,192.168.1.5,::1,100.64.0.0/10")
        let sources = FirewallPlanner.install(configuration, family: family, existing: .empty).compactMap { command in
            command.arguments.firstIndex(of: "-s").map { command.arguments[$0 + 1] }
        }
        #expect(
            sources == (family == .ipv4 ? ["10.0.0.0/8", "192.168.1.5/32", "100.64.0.0/10"] : ["fd00::/8", "::1/128"]))
    }

    @Test("the family changes nothing but the subnets")
    func familiesOtherwiseEqual() {
        for configuration in Self.configurations {
            var withoutSubnets = configuration
            withoutSubnets.subnetsToIgnore = []
            #expect(
                FirewallPlanner.install(withoutSubnets, family: .ipv4, existing: .empty)
                    == FirewallPlanner.install(withoutSubnets, family: .ipv6, existing: .empty))
        }
    }

    @Test("any existing jump by target counts, whatever its comment, but only from its own built-in chain")
    func existingJumps() throws {
        let table = try NATTable(
            parsingSave: """
                *nat
                :PREROUTING ACCEPT [0:0]
                :OUTPUT ACCEPT [0:0]
                :PROXY_INIT_REDIRECT - [0:0]
                :PROXY_INIT_OUTPUT - [0:0]
                -A PREROUTING -j PROXY_INIT_REDIRECT
                -A OUTPUT -j PROXY_INIT_REDIRECT
                COMMIT
                """)
        let plan = FirewallPlanner.install(PlanGoldenTests.defaultConfiguration, family: .ipv4, existing: table)
        let jumps = plan.filter { ["PREROUTING", "OUTPUT"].contains($0.arguments[3]) }
        #expect(
            jumps == [
                IPTablesCommand([
                    "-t", "nat", "-A", "OUTPUT", "-j", "PROXY_INIT_OUTPUT", "-m", "comment", "--comment",
                    "proxy-init/install-proxy-init-output",
                ])
            ])
        #expect(plan.filter { $0.arguments[2] == "-F" }.count == 2)
    }

    @Test("installing, on any captured table, works and leaves a table that a rerun only refills", arguments: fixtures)
    func installAndRerun(fixture: String) throws {
        for configuration in Self.configurations {
            var simulated = SimulatedTable(try Fixtures.table(fixture))
            try simulated.apply(FirewallPlanner.install(configuration, family: .ipv4, existing: simulated.table))
            let installed = simulated.table
            #expect(installed.rules(in: "PREROUTING").filter { $0.target == FirewallPlanner.redirectChain }.count >= 1)
            let rerun = FirewallPlanner.install(configuration, family: .ipv4, existing: installed)
            #expect(!rerun.contains { ["-N", "-X", "-D", "-I"].contains($0.arguments[2]) })
            #expect(!rerun.contains { ["PREROUTING", "OUTPUT"].contains($0.arguments[3]) })
            try simulated.apply(rerun)
            #expect(simulated.table == installed)
        }
    }

    // MARK: - Cleanup

    @Test("cleaning a clean table does nothing")
    func cleanupClean() throws {
        #expect(FirewallPlanner.cleanup(existing: .empty).isEmpty)
        #expect(FirewallPlanner.cleanup(existing: try Fixtures.table("clean-nft")).isEmpty)
        let unrelated = try NATTable(
            parsingSave:
                "*nat\n:PREROUTING ACCEPT [0:0]\n:MINE - [0:0]\n-A PREROUTING -j MINE\n-A MINE -j RETURN\nCOMMIT\n")
        #expect(FirewallPlanner.cleanup(existing: unrelated).isEmpty)
    }

    @Test("cleanup removes every trace of proxy-init and nothing else", arguments: fixtures)
    func cleanupRemovesEverything(fixture: String) throws {
        let table = try Fixtures.table(fixture)
        var simulated = SimulatedTable(table)
        try simulated.apply(FirewallPlanner.cleanup(existing: table))
        let cleaned = simulated.table
        #expect(!cleaned.chains.contains { Self.ourChains.contains($0) })
        #expect(!cleaned.rules.contains { $0.target.map(Self.ourChains.contains) == true })
        let untouched = SimulatedTable(table).table.rules.filter {
            !Self.ourChains.contains($0.chain) && $0.target.map(Self.ourChains.contains) != true
        }
        #expect(cleaned.rules == untouched)
        #expect(FirewallPlanner.cleanup(existing: cleaned).isEmpty)
    }

    // MARK: - Rollback

    @Test("rolling a table back to itself does nothing", arguments: fixtures)
    func rollbackToItself(fixture: String) throws {
        let table = try Fixtures.table(fixture)
        #expect(FirewallPlanner.rollback(current: table, before: table).isEmpty)
        #expect(FirewallPlanner.rollback(current: .empty, before: .empty).isEmpty)
    }

    @Test("after any part of an install or a cleanup, rollback restores the table it started from", arguments: fixtures)
    func rollbackEveryPrefix(fixture: String) throws {
        let before = SimulatedTable(try Fixtures.table(fixture))
        let plans =
            Self.configurations.map { FirewallPlanner.install($0, family: .ipv4, existing: before.table) }
            + [FirewallPlanner.cleanup(existing: before.table)]
        for plan in plans {
            for done in 0...plan.count {
                var simulated = before
                try simulated.apply(Array(plan.prefix(done)))
                let rollback = FirewallPlanner.rollback(current: simulated.table, before: before.table)
                try simulated.apply(rollback)
                #expect(simulated.table == before.table, "after \(done) of \(plan.count) commands: \(rollback)")
            }
        }
    }

    @Test("extra duplicated jumps are deleted as many times as they are extra")
    func rollbackCountsDuplicates() throws {
        let jump = "-A PREROUTING -m comment --comment proxy-init/install-proxy-init-prerouting -j PROXY_INIT_REDIRECT"
        let header = "*nat\n:PREROUTING ACCEPT [0:0]\n:PROXY_INIT_REDIRECT - [0:0]\n"
        let before = try NATTable(parsingSave: header + jump + "\nCOMMIT\n")
        let current = try NATTable(parsingSave: header + [jump, jump, jump].joined(separator: "\n") + "\nCOMMIT\n")
        let delete = IPTablesCommand(
            ["-t", "nat", "-D", "PREROUTING", "-m", "comment", "--comment", "proxy-init/install-proxy-init-prerouting"]
                + ["-j", "PROXY_INIT_REDIRECT"])
        #expect(FirewallPlanner.rollback(current: current, before: before) == [delete, delete])
        let reinserts = ["2", "3"].map { position in
            IPTablesCommand(
                ["-t", "nat", "-I", "PREROUTING", position, "-m", "comment", "--comment"]
                    + ["proxy-init/install-proxy-init-prerouting", "-j", "PROXY_INIT_REDIRECT"])
        }
        #expect(FirewallPlanner.rollback(current: before, before: current) == reinserts)
    }

    @Test("a jump goes back at its old position, lowered to the end of a chain that has since shrunk")
    func rollbackPositions() throws {
        let before = try NATTable(
            parsingSave: """
                *nat
                :PREROUTING ACCEPT [0:0]
                :PROXY_INIT_REDIRECT - [0:0]
                -A PREROUTING -p udp -j RETURN
                -A PREROUTING -p icmp -j RETURN
                -A PREROUTING -j PROXY_INIT_REDIRECT
                COMMIT
                """)
        let lessRules = try NATTable(
            parsingSave:
                "*nat\n:PREROUTING ACCEPT [0:0]\n:PROXY_INIT_REDIRECT - [0:0]\n-A PREROUTING -p udp -j RETURN\nCOMMIT")
        #expect(
            FirewallPlanner.rollback(current: lessRules, before: before) == [
                IPTablesCommand(["-t", "nat", "-I", "PREROUTING", "2", "-j", "PROXY_INIT_REDIRECT"])
            ])
        let sameRules = try NATTable(
            parsingSave:
                "*nat\n:PREROUTING ACCEPT [0:0]\n:PROXY_INIT_REDIRECT - [0:0]\n-A PREROUTING -p udp -j RETURN\n"
                + "-A PREROUTING -p icmp -j RETURN\nCOMMIT")
        #expect(
            FirewallPlanner.rollback(current: sameRules, before: before) == [
                IPTablesCommand(["-t", "nat", "-I", "PREROUTING", "3", "-j", "PROXY_INIT_REDIRECT"])
            ])
    }

    @Test("rollback recreates chains that a cleanup deleted, with their rules, and the jumps to them")
    func rollbackAfterCompleteCleanup() throws {
        let before = try Fixtures.table("full-install-nft")
        let after = try Fixtures.table("clean-nft")
        let plan = FirewallPlanner.rollback(current: after, before: before)
        #expect(plan.map { $0.arguments[2] } == ["-N", "-N"] + Array(repeating: "-A", count: 6) + ["-I", "-I"])
        #expect(plan.prefix(2).map { $0.arguments[3] } == ["PROXY_INIT_REDIRECT", "PROXY_INIT_OUTPUT"])
        #expect(FirewallPlanner.rollback(current: before, before: after) == FirewallPlanner.cleanup(existing: before))
    }
}
