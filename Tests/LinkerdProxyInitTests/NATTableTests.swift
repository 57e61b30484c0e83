import LinkerdCore
import LinkerdProxyInit
import Testing

@Suite("NATTable parsing")
struct NATTableTests {
    static let builtIns = ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"]

    @Test(
        "a real full installation parses into both chains and their rules",
        arguments: ["full-install-nft", "full-install-legacy", "full-install-ipv6-nft", "all-tables-nft"]
    )
    func fullInstallation(fixture: String) throws {
        let table = try Fixtures.table(fixture)
        #expect(table.chains == Self.builtIns + ["PROXY_INIT_OUTPUT", "PROXY_INIT_REDIRECT"])
        #expect(table.rules.count == 8)
        #expect(table.rules(in: "PREROUTING").map(\.target) == ["PROXY_INIT_REDIRECT"])
        #expect(table.rules(in: "OUTPUT").map(\.target) == ["PROXY_INIT_OUTPUT"])
        #expect(table.rules(in: "PROXY_INIT_OUTPUT").map(\.target) == ["RETURN", "RETURN", "RETURN", "REDIRECT"])
        #expect(table.rules(in: "PROXY_INIT_REDIRECT").map(\.target) == ["RETURN", "REDIRECT"])
        #expect(table.rules(in: "INPUT").isEmpty)
        #expect(
            table.rules(in: "PROXY_INIT_OUTPUT").first?.arguments == [
                "-m", "owner", "--uid-owner", "2102", "-m", "comment", "--comment", "proxy-init/ignore-proxy-user-id",
                "-j", "RETURN",
            ])
        #expect(table.hasChain("PROXY_INIT_REDIRECT"))
        #expect(!table.hasChain("FORWARD"), "the filter table's chains are not the nat table's")
    }

    @Test("quoted comments are unquoted, backslash escapes included")
    func quotedComments() throws {
        let table = try Fixtures.table("duplicated-jumps-nft")
        let comments = table.rules(in: "OUTPUT").compactMap { rule in
            rule.arguments.firstIndex(of: "--comment").map { rule.arguments[$0 + 1] }
        }
        #expect(comments == ["proxy-init/install-proxy-init-output", #"old proxy-init "v1""#])
        #expect(table.chains.contains("OTHER"))
        #expect(
            table.rules(in: "OTHER") == [NATRule(chain: "OTHER", arguments: ["-p", "tcp", "-j", "PROXY_INIT_OUTPUT"])])

        let backslash = try NATTable(
            parsingSave: #"""
                *nat
                :OUTPUT ACCEPT [0:0]
                -A OUTPUT -m comment --comment "a \"b\" c\\d" -j RETURN
                -A OUTPUT -m comment --comment "" -j RETURN
                -A OUTPUT	-p	udp   -m comment --comment x" y "z -j RETURN
                -A OUTPUT -m comment --comment back\slash -j RETURN
                COMMIT
                """#)
        #expect(
            backslash.rules.map(Self.comment) == [#"a "b" c\d"#, "", "x y z", #"back\slash"#],
            "a quoted part joins its token; outside quotes a backslash is kept")
        #expect(backslash.rules[2].arguments.prefix(2) == ["-p", "udp"], "tabs and runs of spaces separate tokens")
    }

    @Test("the target is the value after -j, --jump, -g or --goto, or nil")
    func targets() {
        #expect(NATRule(chain: "A", arguments: ["-p", "tcp", "-j", "RETURN"]).target == "RETURN")
        #expect(NATRule(chain: "A", arguments: ["-g", "PROXY_INIT_OUTPUT"]).target == "PROXY_INIT_OUTPUT")
        #expect(NATRule(chain: "A", arguments: ["--goto", "PROXY_INIT_REDIRECT"]).target == "PROXY_INIT_REDIRECT")
        #expect(
            NATRule(chain: "A", arguments: ["--jump", "PROXY_INIT_OUTPUT", "-m", "comment"]).target
                == "PROXY_INIT_OUTPUT")
        #expect(NATRule(chain: "A", arguments: ["-p", "tcp"]).target == nil)
        #expect(
            NATRule(chain: "A", arguments: ["-p", "tcp", "-j"]).target == nil, "a -j without a value has no target")
        #expect(NATRule(chain: "A", arguments: []).target == nil)
    }

    @Test("empty output, comments only and a clean table")
    func emptyTables() throws {
        #expect(try NATTable(parsingSave: "") == .empty)
        #expect(try NATTable(parsingSave: "\n# Warning: nothing here\n\n") == .empty)
        #expect(NATTable.empty.chains.isEmpty && NATTable.empty.rules.isEmpty)
        let clean = try Fixtures.table("clean-nft")
        #expect(clean.chains == Self.builtIns)
        #expect(clean.rules.isEmpty)
    }

    @Test("CRLF line ends, counters omitted, and other tables before and after nat")
    func tolerance() throws {
        let table = try NATTable(
            parsingSave: "*filter\r\n:INPUT ACCEPT [3:180]\r\n-A INPUT -j DROP\r\nnot a rule in a skipped section\r\n"
                + "COMMIT\r\n*nat\r\n:OUTPUT ACCEPT\r\n:MINE - [12:345]\r\n-A MINE -j RETURN\r\nCOMMIT\r\n"
                + "*mangle\r\n:PREROUTING ACCEPT [0:0]\r\nCOMMIT")
        #expect(table.chains == ["OUTPUT", "MINE"])
        #expect(table.rules == [NATRule(chain: "MINE", arguments: ["-j", "RETURN"])])
    }

    /// The rules of a plan that installs into an empty table, as the comment and target of each rule in each chain.
    static func plannedRules(_ commands: [IPTablesCommand]) -> [String: [String]] {
        var rules: [String: [String]] = [:]
        for command in commands where command.arguments.count > 3 && command.arguments[2] == "-A" {
            let rule = NATRule(chain: command.arguments[3], arguments: Array(command.arguments.dropFirst(4)))
            rules[rule.chain, default: []].append(comment(of: rule) + " -> " + (rule.target ?? "none"))
        }
        return rules
    }

    static func comment(of rule: NATRule) -> String {
        rule.arguments.firstIndex(of: "--comment").map { rule.arguments[$0 + 1] } ?? "no comment"
    }

    @Test(
        "what iptables saved after running an install plan has the plan's rules, in order",
        arguments: [
            ("full-install-nft", PlanGoldenTests.defaultConfiguration, IPFamily.ipv4),
            ("full-install-legacy", PlanGoldenTests.defaultConfiguration, .ipv4),
            ("full-install-ipv6-nft", PlanGoldenTests.defaultConfiguration, .ipv6),
            ("skip-ports-nft", PlanGoldenTests.skipPortsConfiguration, .ipv4),
            ("skip-subnets-nft", PlanGoldenTests.skipSubnetsConfiguration, .ipv4),
            ("skip-subnets-ipv6-nft", PlanGoldenTests.skipSubnetsConfiguration, .ipv6),
            ("redirect-listed-nft", PlanGoldenTests.redirectListed, .ipv4),
            ("proxy-gid-nft", PlanGoldenTests.proxyGIDConfiguration, .ipv4),
        ]
    )
    func savedInstallation(fixture: String, configuration: FirewallConfiguration, family: IPFamily) throws {
        let table = try Fixtures.table(fixture)
        let plan = FirewallPlanner.install(configuration, family: family, existing: .empty)
        var saved: [String: [String]] = [:]
        for rule in table.rules {
            saved[rule.chain, default: []].append(Self.comment(of: rule) + " -> " + (rule.target ?? "none"))
        }
        #expect(saved == Self.plannedRules(plan))
        #expect(FirewallPlanner.install(configuration, family: family, existing: table).filter(\.isJump).isEmpty)
    }

    /// Parses `text`, expecting a ParseError about it with `reason`.
    func expectFailure(_ text: String, reason: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(
            throws: ParseError(value: text, expected: "iptables-save output", reason: reason),
            sourceLocation: sourceLocation
        ) {
            try NATTable(parsingSave: text)
        }
    }

    @Test("an unterminated quote is refused, naming the line")
    func unterminatedQuote() {
        let text = "*nat\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -m comment --comment \"open -j RETURN\nCOMMIT\n"
        expectFailure(
            text, reason: #"line 3 "-A OUTPUT -m comment --comment \"open -j RETURN" has a quote that is not closed"#)
        let escapedClose = "*nat\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT --comment \"ends with \\\"\nCOMMIT\n"
        expectFailure(
            escapedClose, reason: #"line 3 "-A OUTPUT --comment \"ends with \\\"" has a quote that is not closed"#)
    }

    @Test("a rule for an undeclared chain is refused")
    func undeclaredChain() {
        let text = "*nat\n:PREROUTING ACCEPT [0:0]\n-A PROXY_INIT_REDIRECT -j RETURN\nCOMMIT\n"
        expectFailure(
            text,
            reason: #"line 3 "-A PROXY_INIT_REDIRECT -j RETURN" appends to the chain "PROXY_INIT_REDIRECT", "#
                + "which is not declared before it")
        expectFailure(
            "*nat\n-A OUTPUT -j RETURN\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n",
            reason: #"line 2 "-A OUTPUT -j RETURN" appends to the chain "OUTPUT", which is not declared before it"#)
    }

    @Test("an unknown line in the nat section is refused")
    func unknownLine() {
        expectFailure(
            "*nat\n:OUTPUT ACCEPT [0:0]\n-I OUTPUT 1 -j RETURN\nCOMMIT\n",
            reason: #"line 3 "-I OUTPUT 1 -j RETURN" is not a chain declaration (:NAME POLICY [packets:bytes]), "#
                + "a rule (-A CHAIN ...) or COMMIT")
        expectFailure(
            "*nat\n:OUTPUT ACCEPT [0:0]\n[0:0] -A OUTPUT -j RETURN\nCOMMIT\n",
            reason: #"line 3 "[0:0] -A OUTPUT -j RETURN" is not a chain declaration (:NAME POLICY [packets:bytes]), "#
                + "a rule (-A CHAIN ...) or COMMIT")
    }

    @Test(
        "other malformed input is refused with the reason",
        arguments: [
            (
                "-A OUTPUT -j RETURN\n",
                #"line 1 "-A OUTPUT -j RETURN" is outside a table section; expected a line such as *nat"#
            ),
            (
                "*nat\n:OUTPUT\nCOMMIT\n",
                #"line 2 ":OUTPUT" is not a chain declaration: expected :NAME POLICY [packets:bytes]"#
            ),
            ("*nat\n:\nCOMMIT\n", #"line 2 ":" is not a chain declaration: expected :NAME POLICY [packets:bytes]"#),
            (
                "*nat\n:OUTPUT ACCEPT [0:0] x\nCOMMIT\n",
                #"line 2 ":OUTPUT ACCEPT [0:0] x" is not a chain declaration: expected :NAME POLICY [packets:bytes]"#
            ),
            (
                "*nat\n:OUTPUT ACCEPT [0-0]\nCOMMIT\n",
                #"line 2 ":OUTPUT ACCEPT [0-0]" has counters "[0-0]" that are not [packets:bytes]"#
            ),
            (
                "*nat\n:OUTPUT ACCEPT [:0]\nCOMMIT\n",
                #"line 2 ":OUTPUT ACCEPT [:0]" has counters "[:0]" that are not [packets:bytes]"#
            ),
            (
                "*nat\n:OUTPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n",
                #"line 3 ":OUTPUT ACCEPT [0:0]" declares the chain "OUTPUT" a second time"#
            ),
            ("*nat\n-A\nCOMMIT\n", #"line 2 "-A" names no chain after -A"#),
            ("*nat\n-A   \nCOMMIT\n", #"line 2 "-A   " names no chain after -A"#),
            ("*nat\nCOMMIT\n*nat\nCOMMIT\n", #"line 3 "*nat" opens a second nat section"#),
            ("# header\n*nat\n:OUTPUT ACCEPT [0:0]\n", "the section opened on line 2 is not closed by COMMIT"),
            ("*filter\n:INPUT ACCEPT [0:0]\n", "the section opened on line 1 is not closed by COMMIT"),
            (
                "*nat\n*filter\nCOMMIT\n",
                #"line 2 "*filter" is not a chain declaration (:NAME POLICY [packets:bytes]), "#
                    + "a rule (-A CHAIN ...) or COMMIT"
            ),
        ]
    )
    func malformed(text: String, reason: String) {
        expectFailure(text, reason: reason)
    }

    @Test("the message has the ParseError shape")
    func message() throws {
        let error = try #require(throws: ParseError.self) { try NATTable(parsingSave: "*nat\n-A X\nCOMMIT\n") }
        #expect(
            error.description
                == #""*nat\n-A X\nCOMMIT\n" is not a valid iptables-save output: line 2 "-A X" appends to the chain "#
                + #""X", which is not declared before it"#)
    }
}

extension IPTablesCommand {
    /// Whether this command appends a jump from a built-in chain to one of proxy-init's chains.
    var isJump: Bool {
        arguments.count > 3 && ["PREROUTING", "OUTPUT"].contains(arguments[3])
    }
}
