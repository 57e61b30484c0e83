import LinkerdProxyInit
import Testing

@Suite("iptables program names and fallback")
struct FirewallBinariesTests {
    @Test("conventional names per mode and family")
    func names() {
        #expect(
            FirewallBinaries.named(.nft, family: .ipv4) == .init(command: "iptables-nft", save: "iptables-nft-save"))
        #expect(FirewallBinaries.named(.plain, family: .ipv6) == .init(command: "ip6tables", save: "ip6tables-save"))
        #expect(
            FirewallBinaries.named(.legacy, family: .ipv6)
                == .init(command: "ip6tables-legacy", save: "ip6tables-legacy-save"))
    }

    @Test("modes read from file names, and back ends that do not mix")
    func modes() {
        #expect(FirewallBinaries(command: "/usr/sbin/iptables-nft", save: "x").mode == .nft)
        #expect(FirewallBinaries(command: "iptables", save: "iptables-legacy-save").saveMode == .legacy)
        #expect(FirewallBinaries(command: "/opt/xt", save: "/opt/xt-save").mode == nil)
        #expect(FirewallBinaries(command: "iptables-nft", save: "iptables-legacy-save").mixesBackEnds)
        #expect(!FirewallBinaries(command: "iptables", save: "iptables-legacy-save").mixesBackEnds)
        #expect(!FirewallBinaries(command: "/opt/xt", save: "iptables-nft-save").mixesBackEnds)
    }

    @Test("the IPv6 counterpart keeps directories, and there is none for other names")
    func ipv6Counterpart() {
        #expect(
            FirewallBinaries(command: "/usr/sbin/iptables-nft", save: "/usr/sbin/iptables-nft-save").forIPv6
                == .init(command: "/usr/sbin/ip6tables-nft", save: "/usr/sbin/ip6tables-nft-save"))
        #expect(FirewallBinaries(command: "/opt/xt", save: "iptables-save").forIPv6 == nil)
        #expect(FirewallBinaries(command: "iptables", save: "/opt/xt-save").forIPv6 == nil)
    }

    @Test("the configured pair when both exist, else nft → plain → legacy, else every attempt listed")
    func selection() throws {
        func select(_ configured: FirewallBinaries, available: Set<String>) throws(FirewallBinaryLookupError)
            -> (FirewallBinaries, Bool)
        {
            let found = try FirewallBinarySelection.select(configured: configured, family: .ipv4) {
                available.contains($0) ? "/sbin/\($0)" : nil
            }
            return (found.binaries, found.isFallback)
        }
        let legacy = FirewallBinaries.named(.legacy, family: .ipv4)
        let all: Set = [
            "iptables-nft", "iptables-nft-save", "iptables", "iptables-save", "iptables-legacy",
            "iptables-legacy-save",
        ]
        #expect(
            try select(legacy, available: all) == (
                .init(command: "/sbin/iptables-legacy", save: "/sbin/iptables-legacy-save"), false
            ))
        #expect(
            try select(legacy, available: ["iptables", "iptables-save", "iptables-nft"])
                == (.init(command: "/sbin/iptables", save: "/sbin/iptables-save"), true))
        #expect(
            try select(.named(.plain, family: .ipv4), available: ["iptables-legacy", "iptables-legacy-save"])
                == (.init(command: "/sbin/iptables-legacy", save: "/sbin/iptables-legacy-save"), true))
        let error = try #require(throws: FirewallBinaryLookupError.self) {
            try select(legacy, available: ["iptables-nft", "iptables-save"])
        }
        #expect(
            error.description
                == "no usable iptables programs for IPv4: tried iptables-legacy/iptables-legacy-save "
                + "(iptables-legacy and iptables-legacy-save not found), iptables-nft/iptables-nft-save "
                + "(iptables-nft-save not found), iptables/iptables-save (iptables not found); install the iptables "
                + "package or pass --firewall-bin-path/--firewall-save-bin-path")
    }
}
