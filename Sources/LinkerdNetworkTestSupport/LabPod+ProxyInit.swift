import Foundation
import LinkerdProxyInitCLI
import Synchronization

/// What a run of linkerd-proxy-init for a pod ended with.
public struct ProxyInitRunResult: Sendable, Hashable, CustomStringConvertible {
    /// The arguments, `--netns` included.
    public var arguments: [String]
    /// The exit status.
    public var status: Int32
    /// Standard output and standard error (its log lines), interleaved as written.
    public var output: String

    public var description: String {
        "linkerd-proxy-init \(arguments.joined(separator: " ")) exited \(status):\n\(output)"
    }
}

extension LabPod {
    /// linkerd-init's arguments as the injector writes them for a pod with the default values and IPv6 on
    /// (control-plane.md §2.6): nft programs, the proxy's ports and user, and the admin, control and
    /// skip-port defaults left alone.
    public static let injectorProxyInitArguments = [
        "--firewall-bin-path", "iptables-nft", "--firewall-save-bin-path", "iptables-nft-save",
        "--incoming-proxy-port", "4143", "--outgoing-proxy-port", "4140", "--proxy-uid", "2102",
        "--inbound-ports-to-ignore", "4190,4191,4567,4568", "--outbound-ports-to-ignore", "4567,4568",
    ]

    /// Runs linkerd-proxy-init in-process against this pod's namespace (`--netns` is added), as the pod's
    /// `linkerd-init` container would, and returns its status and output.
    ///
    /// The command is synchronous (it waits for each iptables process), so it runs on a thread of its own:
    /// blocking one of the few threads of Swift concurrency's pool would stall every other test meanwhile.
    public func runProxyInit(_ arguments: [String]) async -> ProxyInitRunResult {
        let allArguments = arguments + ["--netns", namespacePath]
        return await withCheckedContinuation { continuation in
            let thread = Thread {
                let output = Mutex("")
                let context = ProxyInitContext(
                    environment: ProcessInfo.processInfo.environment, runner: ProcessCommandRunner(),
                    standardOutput: { text in output.withLock { $0 += text } },
                    standardError: { text in output.withLock { $0 += text } })
                let status = ProxyInitCommand.run(allArguments, context: context)
                continuation.resume(
                    returning: ProxyInitRunResult(
                        arguments: allArguments, status: status, output: output.withLock { $0 }))
            }
            thread.name = "linkerd-proxy-init for pod \(name)"
            thread.start()
        }
    }

    /// Installs the redirect rules in this pod with `arguments` (by default the injector's), so that its TCP
    /// traffic goes to a proxy on ports 4143 (inbound) and 4140 (outbound) and the proxy's user (2102) is exempt.
    ///
    /// - Throws: ``ProxyInitFailed``, with the status and the output, when it exits non-zero.
    public func installProxyInit(_ arguments: [String] = LabPod.injectorProxyInitArguments) async throws {
        let result = await runProxyInit(arguments)
        guard result.status == 0 else {
            throw ProxyInitFailed(result: result)
        }
    }
}

/// linkerd-proxy-init exited non-zero for a lab pod.
public struct ProxyInitFailed: Error, CustomStringConvertible {
    public var result: ProxyInitRunResult
    public var description: String { result.description }
}
