import Foundation
import LinkerdCore
import NIOCore
import Synchronization

/// A throw-away network of "pods" for data-plane tests: one Linux network namespace per pod, all joined to one
/// bridge, each with its own loopback, addresses and firewall tables, as pods on a node are.
///
/// ``run(pods:ipv6:isolation:_:)`` builds the lab, runs the body and always tears the lab down. Inside:
/// - A bridge in the root namespace, up, without addresses (IPv6 link-local generation is turned off on it and on
///   the host ends of the pods' links), so the root namespace cannot reach the pods.
/// - Per pod, in the order given, a named namespace (`ip netns`) with `lo` up and `eth0`, one end of a veth pair
///   whose other end is on the bridge; pod `i` (from 0) has `198.18.0.(i+1)/24` (the RFC 2544 benchmarking range)
///   and, with `ipv6`, `2001:db8::(i+1)/64` (the documentation range), added without duplicate address detection
///   so that it is usable at once. There are no default routes: pods reach each other and nothing else.
/// - Names unique across concurrent labs and test processes, within Linux's 15-character limit: the bridge
///   `l5b<pid><lab>`, a pod's host-side link `l5v<pid><lab><pod index>` (pid in 6 hex digits, the process's lab
///   counter in 4, the index in 2), a pod's namespace `l5d-<pid>-<lab>-<pod name>` (decimal).
///
/// Teardown closes the channels that ``LabPod/bind(_:host:port:)`` and ``LabPod/connect(_:to:timeout:)`` made,
/// kills every process in the pods' namespaces (the ones the lab started and any they left behind), deletes the
/// host-side links, the namespaces and the bridge. Channels accepted by a pod's server stay the test's to close.
/// Every lab first removes what labs of dead processes left (a test run that crashed).
///
/// Needs root with `CAP_NET_ADMIN` and `CAP_SYS_ADMIN` and iproute2's `ip`; running processes as another user needs
/// util-linux's `setpriv`. Check ``unavailableReason`` first, so that tests skip visibly where it cannot run:
///
///     @Test(.enabled(if: NetworkLab.unavailableReason == nil, "needs root and iproute2"))
public final class NetworkLab: Sendable {
    /// The bridge joining the pods, in the root namespace.
    public let bridgeName: String
    /// The pods, in the order given to ``run(pods:ipv6:isolation:_:)``.
    public let pods: [LabPod]
    private let names: LabNames
    private let resources: LabResources

    private init(names: LabNames, pods: [LabPod], resources: LabResources) {
        bridgeName = names.bridge
        self.names = names
        self.pods = pods
        self.resources = resources
    }

    /// The pod named `name`.
    ///
    /// - Throws: ``NetworkLabError/unknownPod(name:known:)`` when the lab has no such pod.
    public func pod(_ name: String) throws(NetworkLabError) -> LabPod {
        guard let pod = pods.first(where: { $0.name == name }) else {
            throw .unknownPod(name: name, known: pods.map(\.name))
        }
        return pod
    }

    // MARK: - Availability

    /// Nil when labs can run here; otherwise a sentence saying why not, for a test's skip message.
    public static var unavailableReason: String? {
        #if os(Linux)
            let uid = geteuid()
            guard uid == 0 else {
                return "network-namespace tests need root (running as uid \(uid))"
            }
            guard ipExecutable != nil else {
                return "network-namespace tests need iproute2's `ip`, which is not installed (looked in PATH, "
                    + "/usr/sbin and /sbin)"
            }
            guard hasNetworkCapabilities else {
                return "network-namespace tests need CAP_NET_ADMIN and CAP_SYS_ADMIN, which this root process lacks "
                    + "(an unprivileged container?)"
            }
            return nil
        #else
            return "network-namespace tests need Linux"
        #endif
    }

    /// The path of `ip`, from `PATH` or the usual system directories.
    static let ipExecutable: String? = {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let directories = path.split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        return directories.map { $0 + "/ip" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    /// Whether the effective capabilities include `CAP_NET_ADMIN` (12) and `CAP_SYS_ADMIN` (21).
    private static var hasNetworkCapabilities: Bool {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("CapEff:") }),
            let mask = UInt64(line.dropFirst("CapEff:".count).trimmingCharacters(in: .whitespaces), radix: 16)
        else {
            return false
        }
        let needed: UInt64 = 1 << 12 | 1 << 21
        return mask & needed == needed
    }

    // MARK: - Running a lab

    /// Builds a lab with one pod per name, runs `body` with it, and tears the lab down whether `body` returns or
    /// throws.
    ///
    /// - Parameters:
    ///   - pods: 1 to 254 distinct names of lowercase letters, digits and `-` (starting with a letter or digit, at
    ///     most 32 characters), such as `["client", "server"]`.
    ///   - ipv6: whether pods also get an IPv6 address.
    /// - Returns: what `body` returns.
    /// - Throws: ``NetworkLabError/unavailable(reason:)`` where labs cannot run, `invalidArgument` for a bad pod
    ///   list, `commandFailed` when building the lab fails, what `body` throws, and `teardownFailed` when `body`
    ///   returned but teardown left something behind (when `body` threw, its error wins).
    public static func run<Value>(
        pods podNames: [String],
        ipv6: Bool = true,
        isolation: isolated (any Actor)? = #isolation,
        _ body: (NetworkLab) async throws -> Value
    ) async throws -> Value {
        if let reason = unavailableReason {
            throw NetworkLabError.unavailable(reason: reason)
        }
        guard let ip = ipExecutable else {
            throw NetworkLabError.unavailable(reason: "iproute2's `ip` is not installed")
        }
        try validate(podNames)
        await LabSweeper.sweep(ip: ip)
        let lab = try await build(podNames: podNames, ipv6: ipv6, ip: ip)
        let outcome: Result<Value, any Error>
        do {
            outcome = .success(try await body(lab))
        } catch {
            outcome = .failure(error)
        }
        let problems = await lab.tearDown()
        let value = try outcome.get()
        guard problems.isEmpty else {
            throw NetworkLabError.teardownFailed(problems: problems)
        }
        return value
    }

    private static let labCounter = Atomic<UInt32>(0)

    private static func validate(_ podNames: [String]) throws(NetworkLabError) {
        guard (1...254).contains(podNames.count) else {
            throw .invalidArgument(reason: "a lab has 1 to 254 pods, not \(podNames.count)")
        }
        for name in podNames {
            let characters = name.unicodeScalars
            guard let first = characters.first, characters.count <= 32,
                characters.allSatisfy({ ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" }),
                first != "-"
            else {
                throw .invalidArgument(
                    reason: "the pod name \"\(name)\" is not 1 to 32 lowercase letters, digits and \"-\" starting "
                        + "with a letter or digit")
            }
        }
        var seen = Set<String>()
        for name in podNames where !seen.insert(name).inserted {
            throw .invalidArgument(reason: "the pod name \"\(name)\" is given more than once")
        }
    }

    private static func build(podNames: [String], ipv6: Bool, ip: String) async throws -> NetworkLab {
        let counter = labCounter.wrappingAdd(1, ordering: .relaxed).oldValue
        let names = LabNames(processID: getpid(), lab: UInt16(truncatingIfNeeded: counter))
        let resources = LabResources(ip: ip)
        let pods = podNames.enumerated().map { index, name in
            LabPod(
                name: name, namespaceName: names.namespace(name),
                ipv4: .v4(0xC612_0000 | UInt32(index + 1)),
                ipv6: ipv6 ? .v6(0x2001_0DB8 << 96 | UInt128(index + 1)) : nil,
                resources: resources)
        }
        let lab = NetworkLab(names: names, pods: pods, resources: resources)
        do {
            let hasIPv6 = FileManager.default.fileExists(atPath: "/proc/sys/net/ipv6")
            try await lab.buildRootNamespaceSide(turnOffLinkLocal: hasIPv6)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for pod in pods {
                    group.addTask { try await pod.configureInterfaces() }
                }
                try await group.waitForAll()
            }
        } catch {
            _ = await lab.tearDown()
            throw error
        }
        return lab
    }

    /// The bridge, the namespaces and the veth pairs, with one `ip -batch`. With `turnOffLinkLocal`, the bridge and
    /// the host-side links get no IPv6 link-local address (`addrgenmode none`, set while they are still down).
    private func buildRootNamespaceSide(turnOffLinkLocal: Bool) async throws {
        // The host's own firewall must not see frames crossing the bridge: with br_netfilter loaded, a FORWARD policy
        // of DROP (Docker sets one) would otherwise cut the pods off from each other.
        var commands = ["link add \(names.bridge) type bridge nf_call_iptables 0 nf_call_ip6tables 0"]
        if turnOffLinkLocal {
            commands.append("link set \(names.bridge) addrgenmode none")
        }
        commands.append("link set \(names.bridge) up")
        for (index, pod) in pods.enumerated() {
            let hostSide = names.hostLink(podIndex: index)
            commands.append("netns add \(pod.namespaceName)")
            commands.append(
                "link add \(hostSide) type veth peer name \(LabPod.interfaceName) netns \(pod.namespaceName)")
            if turnOffLinkLocal {
                commands.append("link set \(hostSide) addrgenmode none")
            }
            commands.append("link set \(hostSide) master \(names.bridge) up")
        }
        try await resources.ipBatch(commands).requireSuccess()
    }

    /// Closes the lab's channels, kills the processes in its namespaces, deletes its links, namespaces and bridge.
    /// Returns what could not be done.
    private func tearDown() async -> [String] {
        let (processes, channels) = resources.end()
        for channel in channels {
            try? await channel.close()
        }
        for process in processes {
            process.kill()
        }
        for pod in pods {
            NamespaceProcesses.killAll(inNamespaceAt: pod.namespacePath)
        }
        for process in processes {
            _ = await process.waitForExit()
        }
        var commands = pods.indices.map { "link delete \(names.hostLink(podIndex: $0))" }
        commands += pods.map { "netns delete \($0.namespaceName)" }
        commands.append("link delete \(names.bridge)")
        var problems: [String] = []
        do {
            let result = try await resources.ipBatch(commands, force: true)
            if !result.succeeded {
                problems.append(result.description)
            }
        } catch {
            problems.append("\(error)")
        }
        return problems
    }
}

/// What a lab owns while it runs: the processes and channels to end at teardown, and the `ip` to run.
final class LabResources: Sendable {
    let ip: String
    private let state = Mutex<(ended: Bool, processes: [LabProcess], channels: [any Channel])>((false, [], []))

    init(ip: String) {
        self.ip = ip
    }

    /// Records `process` for teardown; false (after killing it) when the lab has ended.
    func adopt(_ process: LabProcess) -> Bool {
        let adopted = state.withLock { state in
            guard !state.ended else {
                return false
            }
            state.processes.append(process)
            return true
        }
        if !adopted {
            process.kill()
        }
        return adopted
    }

    /// Records `channel` for teardown; false when the lab has ended (the caller closes it).
    func adopt(_ channel: any Channel) -> Bool {
        state.withLock { state in
            guard !state.ended else {
                return false
            }
            state.channels.append(channel)
            return true
        }
    }

    /// Marks the lab ended and hands over what it owned.
    func end() -> (processes: [LabProcess], channels: [any Channel]) {
        state.withLock { state in
            defer {
                state = (true, [], [])
            }
            return (state.processes, state.channels)
        }
    }

    /// Runs `ip [-force] -batch -` with `commands`, one per line, on standard input.
    func ipBatch(_ commands: [String], force: Bool = false, namespace: String? = nil) async throws -> LabProcessResult {
        var command = [ip]
        if let namespace {
            command += ["-netns", namespace]
        }
        if force {
            command.append("-force")
        }
        command += ["-batch", "-"]
        return try await LabProcess.launch(command, input: commands.joined(separator: "\n") + "\n").waitForExit()
    }
}

extension LabProcessResult {
    /// Self when the process exited with 0.
    ///
    /// - Throws: ``NetworkLabError/commandFailed(_:)`` otherwise.
    @discardableResult
    func requireSuccess() throws(NetworkLabError) -> LabProcessResult {
        guard succeeded else {
            throw .commandFailed(self)
        }
        return self
    }
}
