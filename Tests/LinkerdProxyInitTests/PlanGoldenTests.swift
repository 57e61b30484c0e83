import Foundation
import LinkerdCore
import LinkerdProxyInit
import LinkerdTestSupport
import Testing

/// Golden files for whole plans: `Fixtures/<case>.plan.golden` holds the commands of one install, cleanup or rollback
/// plan, one per line as an operator would run them (`iptables <arguments>`, or `ip6tables` for IPv6 cases). The
/// tables the plans start from are `Fixtures/*.save` files, each what `iptables-nft-save -t nat` (or
/// `iptables-legacy-save`, `ip6tables-nft-save`) really printed in a scratch network namespace after running earlier
/// golden plans there (see `Fixtures/README.md`).
///
/// Run with `UPDATE_GOLDEN=1` to rewrite the golden files from the current output, then review the diff.
@Suite("Firewall plan golden files")
struct PlanGoldenTests {
    /// One golden case: what to plan, and with which binary the commands are printed.
    struct Case: Sendable, CustomTestStringConvertible {
        enum Plan: Sendable {
            case install(FirewallConfiguration, IPFamily, existing: String?)
            case cleanup(existing: String)
            case rollback(current: String, before: String)
        }

        let name: String
        let binary: String
        let plan: Plan

        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "default", binary: "iptables", plan: .install(defaultConfiguration, .ipv4, existing: nil)),
        Case(name: "default-ipv6", binary: "ip6tables", plan: .install(defaultConfiguration, .ipv6, existing: nil)),
        Case(name: "skip-ports", binary: "iptables", plan: .install(skipPortsConfiguration, .ipv4, existing: nil)),
        Case(name: "skip-subnets", binary: "iptables", plan: .install(skipSubnetsConfiguration, .ipv4, existing: nil)),
        Case(
            name: "skip-subnets-ipv6", binary: "ip6tables",
            plan: .install(skipSubnetsConfiguration, .ipv6, existing: nil)),
        Case(name: "redirect-listed", binary: "iptables", plan: .install(redirectListed, .ipv4, existing: nil)),
        Case(name: "proxy-gid", binary: "iptables", plan: .install(proxyGIDConfiguration, .ipv4, existing: nil)),
        Case(
            name: "rerun-complete", binary: "iptables",
            plan: .install(defaultConfiguration, .ipv4, existing: "full-install-nft")),
        Case(
            name: "rerun-complete-legacy", binary: "iptables",
            plan: .install(defaultConfiguration, .ipv4, existing: "full-install-legacy")),
        Case(
            name: "rerun-complete-ipv6", binary: "ip6tables",
            plan: .install(defaultConfiguration, .ipv6, existing: "full-install-ipv6-nft")),
        Case(
            name: "partial-install", binary: "iptables",
            plan: .install(defaultConfiguration, .ipv4, existing: "partial-install-nft")),
        Case(name: "cleanup-full", binary: "iptables", plan: .cleanup(existing: "full-install-nft")),
        Case(name: "cleanup-full-legacy", binary: "iptables", plan: .cleanup(existing: "full-install-legacy")),
        Case(name: "cleanup-duplicated-jumps", binary: "iptables", plan: .cleanup(existing: "duplicated-jumps-nft")),
        Case(name: "cleanup-clean", binary: "iptables", plan: .cleanup(existing: "clean-nft")),
        Case(
            name: "rollback-partial-install", binary: "iptables",
            plan: .rollback(current: "partial-install-nft", before: "clean-nft")),
        Case(
            name: "rollback-partial-reinstall", binary: "iptables",
            plan: .rollback(current: "partial-reinstall-nft", before: "existing-install-nft")),
        Case(
            name: "rollback-partial-cleanup", binary: "iptables",
            plan: .rollback(current: "partial-cleanup-nft", before: "existing-install-nft")),
    ]

    /// The arguments the injector gives proxy-init by default.
    static let defaultConfiguration = FirewallConfiguration(
        incomingProxyPort: 4143,
        outgoingProxyPort: 4140,
        proxyUID: 2102,
        inboundPortsToIgnore: [PortRange(4190), PortRange(4191), PortRange(4567), PortRange(4568)],
        outboundPortsToIgnore: [PortRange(4567), PortRange(4568)]
    )

    /// Enough ignored ports and ranges for three inbound rules (5 ranges and 5 ports fill the first with exactly 15
    /// references; the range after the 14th reference of the second starts the third) and two outbound ones.
    static let skipPortsConfiguration: FirewallConfiguration = {
        var configuration = defaultConfiguration
        configuration.inboundPortsToIgnore = PortList(
            (1000...1004).map { PortRange(($0 * 10)...($0 * 10 + 5)) } + (20...24).map(PortRange.init)
                + (30...33).map { PortRange(($0 * 100)...($0 * 100 + 9)) } + (40...45).map(PortRange.init)
                + [PortRange(6000...6010), PortRange(7000)]
        )
        configuration.outboundPortsToIgnore = PortList(
            (1...14).map(PortRange.init) + [PortRange(25000...25100), PortRange(443)]
        )
        return configuration
    }()

    static let skipSubnetsConfiguration: FirewallConfiguration = {
        var configuration = defaultConfiguration
        configuration.subnetsToIgnore = ["10.96.0.0/12", "fd00::/8", "192.168.1.5/32", "2001:db8:0:0::/64"].compactMap {
            try? CIDR(parsing: $0)
        }
        return configuration
    }()

    static let redirectListed: FirewallConfiguration = {
        var configuration = defaultConfiguration
        configuration.portsToRedirect = [8080, 443, 9090]
        return configuration
    }()

    static let proxyGIDConfiguration: FirewallConfiguration = {
        var configuration = defaultConfiguration
        configuration.proxyGID = 2103
        return configuration
    }()

    @Test("every fixture subnet parses")
    func subnetsParse() {
        #expect(Self.skipSubnetsConfiguration.subnetsToIgnore.count == 4)
    }

    @Test("plans match the golden files", arguments: cases)
    func golden(_ testCase: Case) throws {
        let commands: [IPTablesCommand]
        switch testCase.plan {
        case .install(let configuration, let family, let existing):
            let table = try existing.map(Fixtures.table) ?? .empty
            commands = FirewallPlanner.install(configuration, family: family, existing: table)
        case .cleanup(let existing):
            commands = FirewallPlanner.cleanup(existing: try Fixtures.table(existing))
        case .rollback(let current, let before):
            commands = FirewallPlanner.rollback(
                current: try Fixtures.table(current), before: try Fixtures.table(before))
        }
        let text = commands.map { "\(testCase.binary) \($0)\n" }.joined()
        try Self.compare(text, file: Fixtures.directory.appendingPathComponent("\(testCase.name).plan.golden"))
    }

    /// Compares `actual` with the golden file, or rewrites the file when updating.
    static func compare(_ actual: String, file: URL, sourceLocation: SourceLocation = #_sourceLocation) throws {
        if let mismatch = try GoldenFile.mismatch(actual, file: file) {
            Issue.record(Comment(rawValue: mismatch), sourceLocation: sourceLocation)
        }
    }
}

/// The fixture files next to this source file.
enum Fixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
        "Fixtures")

    /// The text of `Fixtures/<name>.save`.
    static func save(_ name: String) throws -> String {
        try String(contentsOf: directory.appendingPathComponent("\(name).save"), encoding: .utf8)
    }

    /// The table of `Fixtures/<name>.save`.
    static func table(_ name: String) throws -> NATTable {
        try NATTable(parsingSave: try save(name))
    }
}
