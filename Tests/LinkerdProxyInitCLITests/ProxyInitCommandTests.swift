import Foundation
import LinkerdProxyInit
import LinkerdProxyInitCLI
import LinkerdTestSupport
import Testing

/// The command without root: flag checking, `--simulate`, program lookup and fallback, and the order of reads,
/// changes and rollback, with a scripted runner standing in for iptables. The real rules in real namespaces are
/// tested in LinkerdNetworkTests.
@Suite("linkerd-proxy-init command")
struct ProxyInitCommandTests {
    /// The injector's linkerd-init arguments (control-plane.md §2.6).
    static let injectorArguments = [
        "--firewall-bin-path", "iptables-nft", "--firewall-save-bin-path", "iptables-nft-save", "--ipv6=false",
        "--incoming-proxy-port", "4143", "--outgoing-proxy-port", "4140", "--proxy-uid", "2102",
        "--inbound-ports-to-ignore", "4190,4191,4567,4568", "--outbound-ports-to-ignore", "4567,4568",
    ]

    @Test(
        "invalid flags exit 64 naming the flag and the value",
        arguments: [
            (["--incoming-proxy-port", "4143"], "--outgoing-proxy-port is required: the proxy's outbound port (4140)"),
            (["-p", "4143", "-o", "4143"], "--incoming-proxy-port and --outgoing-proxy-port are both 4143"),
            (["-p", "4143", "-o", "4140", "--netns", "pods/a"], "must be an absolute path or the name of a namespace"),
            (
                [
                    "-p", "4143", "-o", "4140", "--firewall-bin-path", "iptables-nft", "--firewall-save-bin-path",
                    "iptables-legacy-save",
                ], "use different iptables back ends"
            ),
            (["-p", "4143", "-o", "4140", "--firewall-bin-path", "/opt/bin/xt"], "cannot tell the ip6tables programs"),
            (["-p", "4143", "-o", "4140", "-w=maybe"], "invalid value \"maybe\" for --use-wait-flag"),
            (["-p", "70000", "-o", "4140"], "invalid value \"70000\" for --incoming-proxy-port"),
            (
                ["-p", "4143", "-o", "4140", "--inbound-ports-to-ignore", "80-70"],
                "the start 80 is greater than the end 70"
            ),
            (["-p", "4143", "-o", "4140", "--outbound-ports-to-ignore", "http"], "\"http\" is not a decimal number"),
            (
                ["-p", "4143", "-o", "4140", "--subnets-to-ignore", "10.0.0.0/33"],
                "the prefix length 33 is greater than 32"
            ),
            (["-p", "4143", "-o", "4140", "--subnets-to-ignore", "10.0.0.0/8,bogus"], "\"bogus\" is not a valid CIDR"),
            (["-p", "4143", "-o", "4140", "--iptables-mode", "iptables"], "must be one of nft, plain, legacy"),
            (["-p", "4143", "-o", "4140", "--ipv6=maybe"], "invalid value \"maybe\" for --ipv6"),
            (["-p", "4143", "-o", "4140", "--proxy-uid", "-5"], "invalid value \"-5\" for --proxy-uid"),
            (["-p", "4143", "-o", "4140", "-r", "80,0"], "invalid value \"0\" for --ports-to-redirect"),
            (["-p", "4143", "-o", "4140", "--log-level", "loud"], "invalid value \"loud\" for --log-level"),
            (["-p", "4143", "-o", "4140", "--log-format", "xml"], "must be one of plain, json"),
            (["-p", "4143", "-o", "4140", "--timeout-close-wait-secs", "-1"], "for --timeout-close-wait-secs"),
        ])
    func invalidFlags(arguments: [String], message: String) {
        let run = Run(arguments)
        #expect(run.status == 64)
        #expect(run.standardError.contains(message), "\(run.standardError)")
        #expect(run.runner.calls.isEmpty, "nothing may run after invalid flags")
    }

    @Test("--simulate prints the plan with nsenter, -w and both families, and runs nothing")
    func simulate() {
        let run = Run(
            [
                "--simulate", "--netns", "pod-a", "-w", "--iptables-mode", "nft", "-p", "4143", "-o", "4140", "-u",
                "2102",
            ])
        #expect(run.status == 0, "\(run.standardError)")
        #expect(run.runner.calls.isEmpty)
        let lines = run.standardOutput.split(separator: "\n").map(String.init)
        let ipv4 = FirewallPlanner.install(
            FirewallConfiguration(incomingProxyPort: 4143, outgoingProxyPort: 4140, proxyUID: 2102), family: .ipv4,
            existing: .empty)
        let prefix = "nsenter --net=/run/netns/pod-a -- "
        #expect(lines.first == prefix + "iptables-nft-save -t nat")
        #expect(Array(lines.dropFirst().prefix(ipv4.count)) == ipv4.map { prefix + "iptables-nft \($0) -w" })
        #expect(lines.contains(prefix + "ip6tables-nft-save -t nat"))
        #expect(lines.count == 2 + 2 * ipv4.count)
    }

    @Test("a missing network namespace exits 69 before anything runs")
    func missingNamespace() throws {
        let tools = try ToolDirectory(["iptables-nft", "iptables-nft-save", "nsenter"])
        let run = Run(Self.injectorArguments + ["--netns", "/run/netns/l5d-no-such-namespace"], tools: tools)
        #expect(run.status == 69)
        // The message is a log line's quoted `msg`, hence the escaped quotes.
        #expect(
            run.standardError.contains(
                #"the network namespace \"/run/netns/l5d-no-such-namespace\" (--netns) does not exist"#),
            "\(run.standardError)")
        #expect(run.runner.calls.isEmpty)
    }

    @Test("no iptables programs at all exits 69 listing every pair tried")
    func missingPrograms() throws {
        let tools = try ToolDirectory([])
        let run = Run(Self.injectorArguments, tools: tools)
        #expect(run.status == 69)
        #expect(
            run.standardError.contains(
                "no usable iptables programs for IPv4: tried iptables-nft/iptables-nft-save (iptables-nft and "
                    + "iptables-nft-save not found), iptables/iptables-save"),
            "\(run.standardError)")
        #expect(run.standardError.contains("iptables-legacy/iptables-legacy-save"))
        #expect(run.runner.calls.isEmpty)
    }

    @Test("a missing ip6tables stops the run before the IPv4 rules are touched")
    func missingIPv6Programs() throws {
        let tools = try ToolDirectory(["iptables-nft", "iptables-nft-save"])
        let run = Run(Self.injectorArguments.filter { $0 != "--ipv6=false" }, tools: tools)
        #expect(run.status == 69)
        #expect(run.standardError.contains("no usable iptables programs for IPv6"))
        #expect(run.runner.calls.isEmpty)
    }

    @Test("the configured programs missing, it falls back to nft first and says so")
    func fallback() throws {
        let tools = try ToolDirectory(["iptables", "iptables-save", "iptables-nft", "iptables-nft-save"])
        let run = Run(["-p", "4143", "-o", "4140", "--ipv6=false"], tools: tools)
        #expect(run.status == 0, "\(run.standardError)")
        #expect(run.standardError.contains("iptables-legacy/iptables-legacy-save not found; falling back to"))
        #expect(run.runner.calls.first == [tools.path + "/iptables-nft-save", "-t", "nat"])
        #expect(run.runner.calls.allSatisfy { $0.first?.hasPrefix(tools.path + "/iptables-nft") == true })
        #expect(run.runner.calls.count > 2)
    }

    @Test("a failing command rolls the table back to its state before the run and exits 1")
    func rollbackAfterFailure() throws {
        let tools = try ToolDirectory(["iptables-nft", "iptables-nft-save"])
        let partial = """
            *nat
            :PREROUTING ACCEPT [0:0]
            :INPUT ACCEPT [0:0]
            :OUTPUT ACCEPT [0:0]
            :POSTROUTING ACCEPT [0:0]
            :PROXY_INIT_REDIRECT - [0:0]
            -A PREROUTING -m comment --comment "proxy-init/install-proxy-init-prerouting" -j PROXY_INIT_REDIRECT
            -A PROXY_INIT_REDIRECT -p tcp -j REDIRECT --to-ports 4143
            COMMIT

            """
        let runner = ScriptedRunner(saves: [Self.emptyTable, partial, partial]) { arguments in
            arguments.contains("PROXY_INIT_OUTPUT") && arguments.contains("-N")
        }
        let run = Run(Self.injectorArguments, tools: tools, runner: runner)
        #expect(run.status == 1, "\(run.standardError)")
        #expect(
            run.standardError.contains("-N PROXY_INIT_OUTPUT failed (exit status 1: iptables: refused by the test)"))
        #expect(run.standardError.contains("the nat table was restored to how it was before"))
        let expectedRollback = FirewallPlanner.rollback(
            current: try NATTable(parsingSave: partial), before: try NATTable(parsingSave: Self.emptyTable))
        #expect(!expectedRollback.isEmpty)
        let changes = runner.calls.filter { $0.first == tools.path + "/iptables-nft" }.map { Array($0.dropFirst()) }
        #expect(Array(changes.suffix(expectedRollback.count)) == expectedRollback.map(\.arguments))
    }

    @Test("a rollback that fails too exits 2 and says rules may remain")
    func rollbackFailure() throws {
        let tools = try ToolDirectory(["iptables-nft", "iptables-nft-save"])
        let partial = Self.emptyTable.replacingOccurrences(
            of: "COMMIT", with: ":PROXY_INIT_REDIRECT - [0:0]\nCOMMIT")
        let runner = ScriptedRunner(saves: [Self.emptyTable, partial]) { arguments in
            arguments.contains("-X") || (arguments.contains("-A") && arguments.contains("PROXY_INIT_REDIRECT"))
        }
        let run = Run(Self.injectorArguments, tools: tools, runner: runner)
        #expect(run.status == 2, "\(run.standardError)")
        #expect(run.standardError.contains("rolling back failed too, so some proxy-init rules may remain"))
    }

    @Test("an unreadable iptables-save output exits 65 before any change")
    func unreadableTable() throws {
        let tools = try ToolDirectory(["iptables-nft", "iptables-nft-save"])
        let runner = ScriptedRunner(saves: ["*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j \"unterminated\n"])
        let run = Run(Self.injectorArguments, tools: tools, runner: runner)
        #expect(run.status == 65)
        #expect(run.standardError.contains("printed an unreadable table"))
        #expect(runner.calls.count == 1)
    }

    @Test("cleanup needs no proxy ports and deletes what the table holds")
    func cleanup() throws {
        let tools = try ToolDirectory(["iptables-nft", "iptables-nft-save"])
        let installed = Self.emptyTable.replacingOccurrences(
            of: "COMMIT",
            with: """
                :PROXY_INIT_OUTPUT - [0:0]
                -A OUTPUT -m comment --comment "proxy-init/install-proxy-init-output" -j PROXY_INIT_OUTPUT
                COMMIT
                """)
        let runner = ScriptedRunner(saves: [installed, Self.emptyTable])
        let run = Run(
            ["cleanup", "--iptables-mode", "nft", "--ipv6=false", "--log-format", "json"], tools: tools,
            runner: runner)
        #expect(run.status == 0, "\(run.standardError)")
        let changes = runner.calls.filter { $0.first == tools.path + "/iptables-nft" }.map { Array($0.dropFirst()) }
        #expect(changes == FirewallPlanner.cleanup(existing: try NATTable(parsingSave: installed)).map(\.arguments))
        for line in run.standardError.split(separator: "\n") {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(object?["level"] != nil && object?["msg"] != nil && object?["time"] != nil, "\(line)")
        }
    }

    @Test("a failing ip6tables-save stops the run before the IPv4 rules are touched")
    func unreadableIPv6Table() throws {
        let tools = try ToolDirectory(["iptables-nft", "iptables-nft-save", "ip6tables-nft", "ip6tables-nft-save"])
        let runner = ScriptedRunner(saves: []) { $0.first?.hasSuffix("ip6tables-nft-save") == true }
        let run = Run(["--iptables-mode", "nft", "-p", "4143", "-o", "4140"], tools: tools, runner: runner)
        #expect(run.status == 69, "\(run.standardError)")
        #expect(run.standardError.contains("ip6tables-nft-save -t nat failed"))
        #expect(runner.calls.map { $0[0] } == [tools.path + "/iptables-nft-save", tools.path + "/ip6tables-nft-save"])
    }

    @Test("--firewall-bin-path alone names the save program after it; a custom name works with --ipv6=false")
    func binaryPaths() throws {
        let tools = try ToolDirectory([
            "iptables-nft", "iptables-nft-save", "ip6tables-nft", "ip6tables-nft-save", "xt", "xt-save",
        ])
        let nft = Run(["--firewall-bin-path", "iptables-nft", "-p", "4143", "-o", "4140"], tools: tools)
        #expect(nft.status == 0, "\(nft.standardError)")
        #expect(nft.runner.calls.first == [tools.path + "/iptables-nft-save", "-t", "nat"])
        #expect(nft.runner.calls.contains([tools.path + "/ip6tables-nft-save", "-t", "nat"]))
        let custom = Run(["--firewall-bin-path", "xt", "--ipv6=false", "-p", "4143", "-o", "4140"], tools: tools)
        #expect(custom.status == 0, "\(custom.standardError)")
        #expect(custom.runner.calls.first == [tools.path + "/xt-save", "-t", "nat"])
    }

    @Test("-w is appended to every changing command, not to iptables-save")
    func waitFlag() throws {
        let tools = try ToolDirectory(["iptables-nft", "iptables-nft-save"])
        let run = Run(Self.injectorArguments + ["-w"], tools: tools)
        #expect(run.status == 0, "\(run.standardError)")
        let changes = run.runner.calls.filter { $0[0].hasSuffix("/iptables-nft") }
        #expect(!changes.isEmpty && changes.allSatisfy { $0.last == "-w" })
        #expect(run.runner.calls.filter { $0[0].hasSuffix("-save") }.allSatisfy { $0.last == "nat" })
    }

    @Test("--timeout-close-wait-secs runs sysctl before the rules; its failure changes nothing and exits 1")
    func closeWaitTimeout() throws {
        let tools = try ToolDirectory(["iptables-nft", "iptables-nft-save", "sysctl"])
        let setting = "net.netfilter.nf_conntrack_tcp_timeout_close_wait=30"
        let simulated = Run(Self.injectorArguments + ["--simulate", "--timeout-close-wait-secs", "30"])
        #expect(simulated.standardOutput.hasPrefix("sysctl -w \(setting)\n"), "\(simulated.standardOutput)")

        let run = Run(Self.injectorArguments + ["--timeout-close-wait-secs", "30"], tools: tools)
        #expect(run.status == 0, "\(run.standardError)")
        let sysctlCall = try #require(run.runner.calls.firstIndex { $0[0].hasSuffix("/sysctl") })
        #expect(run.runner.calls[sysctlCall] == [tools.path + "/sysctl", "-w", setting])
        #expect(run.runner.calls[..<sysctlCall].allSatisfy { $0[0].hasSuffix("/iptables-nft-save") })
        #expect(run.runner.calls[(sysctlCall + 1)...].allSatisfy { $0[0].hasPrefix(tools.path + "/iptables-nft") })

        let refused = Run(
            Self.injectorArguments + ["--timeout-close-wait-secs", "30"], tools: tools,
            runner: ScriptedRunner(saves: []) { $0[0].hasSuffix("/sysctl") })
        #expect(refused.status == 1)
        #expect(refused.standardError.contains("no rules were changed"))
        #expect(!refused.runner.calls.contains { $0[0].hasSuffix("/iptables-nft") })

        let cleanup = Run(
            ["cleanup", "--iptables-mode", "nft", "--ipv6=false", "--timeout-close-wait-secs", "30"], tools: tools)
        #expect(cleanup.status == 0)
        #expect(!cleanup.runner.calls.contains { $0[0].hasSuffix("/sysctl") })
    }

    @Test("--netns naming a directory or a plain file is refused before anything runs")
    func notANamespace() throws {
        let tools = try ToolDirectory(["iptables-nft", "iptables-nft-save", "nsenter"])
        for path in [tools.path, tools.path + "/nsenter"] {
            let run = Run(Self.injectorArguments + ["--netns", path], tools: tools)
            #expect(run.status == 69)
            #expect(run.standardError.contains("(--netns) is not a namespace"), "\(run.standardError)")
            #expect(run.runner.calls.isEmpty)
        }
    }

    @Test("a program that runs past the timeout is stopped and its run fails")
    func runnerTimeout() {
        let started = ContinuousClock.now
        let result = ProcessCommandRunner(timeout: .milliseconds(200)).run(["/bin/sleep", "10"])
        #expect(!result.succeeded)
        #expect(result.launchFailure == "/bin/sleep was still running after 0.2 seconds and was stopped")
        #expect(started.duration(to: .now) < .seconds(5))
        #expect(
            ProcessCommandRunner().run(["/bin/sh", "-c", "echo out; echo err >&2; exit 3"])
                == CommandResult(status: 3, standardOutput: "out\n", standardError: "err\n"))
    }

    @Test("help prints the exit statuses and succeeds")
    func help() {
        let run = Run(["--help"])
        #expect(run.status == 0)
        #expect(run.standardOutput.contains("Exit status: 0 done; 1 a command failed (or timed out)"))
    }

    static let emptyTable = """
        # Generated by iptables-nft-save v1.8.9 (nf_tables)
        *nat
        :PREROUTING ACCEPT [0:0]
        :INPUT ACCEPT [0:0]
        :OUTPUT ACCEPT [0:0]
        :POSTROUTING ACCEPT [0:0]
        COMMIT

        """
}

/// One in-process run of the command with captured output; `PATH` is `tools`' directory (or a path that does not
/// exist), kept alive until the run is over.
private struct Run {
    let status: Int32
    let standardOutput: String
    let standardError: String
    let runner: ScriptedRunner

    init(_ arguments: [String], tools: ToolDirectory? = nil, runner: ScriptedRunner = ScriptedRunner(saves: [])) {
        let output = Locked("")
        let errors = Locked("")
        let context = ProxyInitContext(
            environment: ["PATH": tools?.path ?? "/nonexistent"], runner: runner,
            standardOutput: { text in output.withLock { $0 += text } },
            standardError: { text in errors.withLock { $0 += text } })
        status = withExtendedLifetime(tools) { ProxyInitCommand.run(arguments, context: context) }
        standardOutput = output.value
        standardError = errors.value
        self.runner = runner
    }
}

/// Stands in for iptables: each `-save` call prints the next of `saves` (then an empty table), and any command fails
/// when `refuses` says so; every call is recorded.
private final class ScriptedRunner: CommandRunner {
    private let state: Locked<(saves: [String], calls: [[String]])>
    private let refuses: @Sendable ([String]) -> Bool

    init(saves: [String], refuses: @escaping @Sendable ([String]) -> Bool = { _ in false }) {
        state = Locked((saves, []))
        self.refuses = refuses
    }

    var calls: [[String]] { state.value.calls }

    func run(_ arguments: [String]) -> CommandResult {
        state.withLock { state -> CommandResult in
            state.calls.append(arguments)
            if arguments.first?.hasSuffix("-save") == true, !refuses(arguments) {
                let text = state.saves.isEmpty ? ProxyInitCommandTests.emptyTable : state.saves.removeFirst()
                return CommandResult(status: 0, standardOutput: text)
            }
            if refuses(arguments) {
                return CommandResult(status: 1, standardError: "iptables: refused by the test\n")
            }
            return CommandResult(status: 0)
        }
    }
}

/// A temporary directory of empty executable files with the given names, to stand for `PATH`.
private final class ToolDirectory {
    let path: String

    init(_ names: [String]) throws {
        path =
            FileManager.default.temporaryDirectory.appendingPathComponent("proxy-init-tools-\(UUID().uuidString)")
            .path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        for name in names {
            let file = "\(path)/\(name)"
            FileManager.default.createFile(atPath: file, contents: Data("#!/bin/sh\nexit 0\n".utf8))
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: file)
        }
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }
}
