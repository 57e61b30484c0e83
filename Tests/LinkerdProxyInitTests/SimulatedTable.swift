import LinkerdProxyInit

/// A nat table that commands are applied to as iptables would apply them, failing where iptables would fail, so
/// that plans can be checked end to end without a kernel.
///
/// Rules are matched for `-D` by their exact arguments (plans delete rules with the arguments iptables-save printed,
/// which is how iptables itself compares them), and targets that are not built-in must be existing chains.
struct SimulatedTable {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    static let builtInChains = ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"]
    static let builtInTargets: Set = ["RETURN", "ACCEPT", "DROP", "REDIRECT", "DNAT", "SNAT", "MASQUERADE"]

    private(set) var chains: [String]
    private(set) var rules: [String: [[String]]]

    /// The table of `table`, with the built-in chains added when missing (the kernel always has them).
    init(_ table: NATTable) {
        chains = Self.builtInChains.filter { !table.hasChain($0) } + table.chains
        rules = [:]
        for rule in table.rules {
            rules[rule.chain, default: []].append(rule.arguments)
        }
    }

    /// The table as iptables-save would print it: built-in chains first, then the others sorted by name, and the rules
    /// grouped by chain in that order.
    var table: NATTable {
        let ordered =
            Self.builtInChains.filter(chains.contains) + chains.filter { !Self.builtInChains.contains($0) }.sorted()
        return NATTable(
            chains: ordered,
            rules: ordered.flatMap { chain in rules[chain, default: []].map { NATRule(chain: chain, arguments: $0) } })
    }

    mutating func apply(_ commands: [IPTablesCommand]) throws {
        for command in commands {
            try apply(command)
        }
    }

    mutating func apply(_ command: IPTablesCommand) throws {
        func fail(_ reason: String) -> Failure {
            Failure(description: "\(command): \(reason)")
        }
        let arguments = command.arguments
        guard arguments.count >= 4, arguments[0] == "-t", arguments[1] == "nat" else {
            throw fail("not a nat command")
        }
        let chain = arguments[3]
        let rest = Array(arguments.dropFirst(4))
        let exists = chains.contains(chain)
        switch arguments[2] {
        case "-N":
            guard !exists else { throw fail("chain exists") }
            chains.append(chain)
        case "-F":
            guard exists else { throw fail("no such chain") }
            rules[chain] = []
        case "-X":
            guard exists else { throw fail("no such chain") }
            guard rules[chain, default: []].isEmpty else { throw fail("chain is not empty") }
            guard !rules.values.joined().contains(where: { NATRule(chain: "", arguments: $0).target == chain }) else {
                throw fail("chain is referenced")
            }
            chains.removeAll { $0 == chain }
        case "-A":
            guard exists else { throw fail("no such chain") }
            try checkTarget(of: rest, fail: fail)
            rules[chain, default: []].append(rest)
        case "-I":
            guard exists else { throw fail("no such chain") }
            guard let position = rest.first.flatMap({ Int($0) }),
                (1...rules[chain, default: []].count + 1).contains(position)
            else { throw fail("bad position") }
            try checkTarget(of: Array(rest.dropFirst()), fail: fail)
            rules[chain, default: []].insert(Array(rest.dropFirst()), at: position - 1)
        case "-D":
            guard exists else { throw fail("no such chain") }
            guard let index = rules[chain, default: []].firstIndex(of: rest) else { throw fail("no such rule") }
            rules[chain, default: []].remove(at: index)
        default:
            throw fail("unknown operation")
        }
    }

    private func checkTarget(of arguments: [String], fail: (String) -> Failure) throws {
        if let target = NATRule(chain: "", arguments: arguments).target, !Self.builtInTargets.contains(target),
            !chains.contains(target)
        {
            throw fail("no chain or target \(target)")
        }
    }
}
