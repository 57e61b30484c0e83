import ArgumentParser
import LinkerdCore
import LinkerdInject

/// A flag value that `linkerd inject` refuses, naming the flag and the value.
public struct InvalidFlagValue: Error, Hashable, Sendable, CustomStringConvertible {
    /// The flag as typed, such as `--proxy-uid`.
    public var flag: String
    public var value: String
    public var reason: String

    public init(flag: String, value: String, reason: String) {
        self.flag = flag
        self.value = value
        self.reason = reason
    }

    /// `invalid value "<value>" for <flag>: <reason>`.
    public var description: String {
        "invalid value \(value.quoted) for \(flag): \(reason)"
    }
}

/// The proxy settings of `linkerd inject`: each flag becomes the `config.linkerd.io/*` annotation of the same name
/// (control-plane.md §2.5), written only when the flag is given.
///
/// Values are checked here as strictly as the injector reads the annotations, so that a typo fails the command
/// instead of becoming an annotation the injector ignores with a warning.
struct ProxyOptions: ParsableArguments {
    @Flag(help: "Inject in ingress mode (linkerd.io/inject: ingress).")
    var ingress = false

    @Flag(
        name: .customLong("native-sidecar"), inversion: .prefixedNo,
        help: "Run the proxy as a native sidecar (an init container that keeps running).")
    var nativeSidecar: Bool?

    @Option(
        name: .customLong("opaque-ports"),
        help: "Ports, port ranges and container port names whose protocol is not detected, comma-separated.")
    var opaquePorts: String?

    @Option(name: .customLong("skip-inbound-ports"), help: "Ports and ranges the proxy does not intercept inbound.")
    var skipInboundPorts: String?

    @Option(name: .customLong("skip-outbound-ports"), help: "Ports and ranges the proxy does not intercept outbound.")
    var skipOutboundPorts: String?

    @Option(name: .customLong("skip-subnets"), help: "CIDRs the proxy does not intercept, comma-separated.")
    var skipSubnets: String?

    @Option(name: .customLong("proxy-uid"), help: "User ID the proxy runs as.")
    var proxyUID: String?

    @Option(name: .customLong("proxy-gid"), help: "Group ID the proxy runs as (--proxy-gid=-1: none).")
    var proxyGID: String?

    @Option(name: .customLong("proxy-version"), help: "Tag of the proxy image.")
    var proxyVersion: String?

    @Option(name: .customLong("proxy-image"), help: "Name of the proxy image, without tag.")
    var proxyImage: String?

    @Option(name: .customLong("proxy-log-level"), help: "Log filter of the proxy, such as warn,linkerd=info.")
    var proxyLogLevel: String?

    @Option(name: .customLong("proxy-cpu-request"), help: "CPU request of the proxy container (a quantity).")
    var proxyCPURequest: String?

    @Option(name: .customLong("proxy-cpu-limit"), help: "CPU limit of the proxy container (a quantity).")
    var proxyCPULimit: String?

    @Option(name: .customLong("proxy-memory-request"), help: "Memory request of the proxy container (a quantity).")
    var proxyMemoryRequest: String?

    @Option(name: .customLong("proxy-memory-limit"), help: "Memory limit of the proxy container (a quantity).")
    var proxyMemoryLimit: String?

    @Option(name: .customLong("admin-port"), help: "Port of the proxy's admin server.")
    var adminPort: String?

    @Option(name: .customLong("inbound-port"), help: "Port of the proxy's inbound listener.")
    var inboundPort: String?

    @Option(name: .customLong("outbound-port"), help: "Port of the proxy's outbound listener.")
    var outboundPort: String?

    @Option(name: .customLong("control-port"), help: "Port of the proxy's control listener.")
    var controlPort: String?

    @Option(
        name: .customLong("default-inbound-policy"),
        help: "Inbound policy when no Server applies: \(Self.policyNames).")
    var defaultInboundPolicy: String?

    @Flag(
        name: .customLong("await"), inversion: .prefixedNo,
        help: "Hold the application containers until the proxy is ready.")
    var awaitProxy: Bool?

    func validate() throws {
        do {
            _ = try annotations()
        } catch {
            throw ValidationError(error.description)
        }
    }

    /// The `config.linkerd.io/*` annotations of the given flags.
    ///
    /// - Throws: ``InvalidFlagValue`` for the first flag whose value the injector would not accept.
    func annotations() throws(InvalidFlagValue) -> [String: String] {
        var annotations: [String: String] = [:]
        func set(_ key: String, _ flag: String, _ value: String?, _ check: (String) throws(ParseError) -> Void)
            throws(InvalidFlagValue)
        {
            guard let value else { return }
            do throws(ParseError) {
                try check(value)
            } catch {
                throw InvalidFlagValue(flag: flag, value: value, reason: error.description)
            }
            annotations[key] = value
        }
        try set(MeshKeys.opaquePorts, "--opaque-ports", opaquePorts, Self.checkOpaquePorts)
        try set(MeshKeys.skipInboundPorts, "--skip-inbound-ports", skipInboundPorts, Self.checkPortList)
        try set(MeshKeys.skipOutboundPorts, "--skip-outbound-ports", skipOutboundPorts, Self.checkPortList)
        try set(MeshKeys.skipSubnets, "--skip-subnets", skipSubnets, Self.checkCIDRList)
        try set(MeshKeys.proxyUID, "--proxy-uid", proxyUID, Self.checkUserID)
        try set(MeshKeys.proxyGID, "--proxy-gid", proxyGID, Self.checkGroupID)
        try set(MeshKeys.proxyVersionOverride, "--proxy-version", proxyVersion, Self.checkWord("image tag"))
        try set(MeshKeys.proxyImage, "--proxy-image", proxyImage, Self.checkWord("image name"))
        try set(MeshKeys.proxyLogLevel, "--proxy-log-level", proxyLogLevel, Self.checkWord("log filter"))
        let cpuRequest = try quantity("--proxy-cpu-request", proxyCPURequest)
        let cpuLimit = try quantity("--proxy-cpu-limit", proxyCPULimit)
        let memoryRequest = try quantity("--proxy-memory-request", proxyMemoryRequest)
        let memoryLimit = try quantity("--proxy-memory-limit", proxyMemoryLimit)
        try checkOrder("--proxy-cpu-request", cpuRequest, "--proxy-cpu-limit", cpuLimit)
        try checkOrder("--proxy-memory-request", memoryRequest, "--proxy-memory-limit", memoryLimit)
        annotations[MeshKeys.proxyCPURequest] = cpuRequest?.description
        annotations[MeshKeys.proxyCPULimit] = cpuLimit?.description
        annotations[MeshKeys.proxyMemoryRequest] = memoryRequest?.description
        annotations[MeshKeys.proxyMemoryLimit] = memoryLimit?.description
        try set(MeshKeys.adminPort, "--admin-port", adminPort, Self.checkPort)
        try set(MeshKeys.inboundPort, "--inbound-port", inboundPort, Self.checkPort)
        try set(MeshKeys.outboundPort, "--outbound-port", outboundPort, Self.checkPort)
        try set(MeshKeys.controlPort, "--control-port", controlPort, Self.checkPort)
        try set(MeshKeys.defaultInboundPolicy, "--default-inbound-policy", defaultInboundPolicy, Self.checkPolicy)
        if let nativeSidecar {
            annotations[MeshKeys.nativeSidecar] = nativeSidecar ? "true" : "false"
        }
        if let awaitProxy {
            annotations[MeshKeys.proxyAwait] = awaitProxy ? "enabled" : "disabled"
        }
        return annotations
    }

    private func quantity(_ flag: String, _ value: String?) throws(InvalidFlagValue) -> Quantity? {
        guard let value else { return nil }
        let quantity: Quantity
        do throws(ParseError) {
            quantity = try Quantity(parsing: value)
        } catch {
            throw InvalidFlagValue(flag: flag, value: value, reason: error.description)
        }
        guard quantity.milliValue >= 0 else {
            throw InvalidFlagValue(flag: flag, value: value, reason: "a resource amount cannot be negative")
        }
        return quantity
    }

    private func checkOrder(
        _ requestFlag: String, _ request: Quantity?, _ limitFlag: String, _ limit: Quantity?
    ) throws(InvalidFlagValue) {
        guard let request, let limit, request.milliValue > limit.milliValue else { return }
        throw InvalidFlagValue(
            flag: requestFlag, value: request.description,
            reason: "the request is greater than \(limitFlag) \(limit.description)")
    }

    /// A port from 1 to 65535, as the injector reads the port annotations.
    private static func checkPort(_ value: String) throws(ParseError) {
        let range = try PortRange(parsing: value)
        guard range.count == 1, range.lowerBound != 0 else {
            throw ParseError(value: value, expected: "port", reason: "expected a single port from 1 to 65535")
        }
    }

    private static func checkPortList(_ value: String) throws(ParseError) {
        _ = try PortList(parsing: value)
    }

    private static func checkCIDRList(_ value: String) throws(ParseError) {
        _ = try CIDR.parseList(value)
    }

    /// The ranges the injector accepts for `proxy-uid` and `proxy-gid` (-1: no group).
    private static func checkUserID(_ value: String) throws(ParseError) {
        try checkInteger(value, "user ID", 0...Int64(UInt32.max))
    }

    private static func checkGroupID(_ value: String) throws(ParseError) {
        try checkInteger(value, "group ID", -1...Int64(UInt32.max))
    }

    private static func checkInteger(
        _ value: String, _ expected: String, _ range: ClosedRange<Int64>
    ) throws(ParseError) {
        guard let number = Int64(value), range.contains(number) else {
            throw ParseError(
                value: value, expected: expected,
                reason: "expected an integer from \(range.lowerBound) to \(range.upperBound)")
        }
    }

    private static let policyNames = DefaultInboundPolicy.allCases.map(\.rawValue).joined(separator: ", ")

    private static func checkPolicy(_ value: String) throws(ParseError) {
        guard DefaultInboundPolicy(rawValue: value) == nil else { return }
        throw ParseError(value: value, expected: "inbound policy", reason: "expected one of \(policyNames)")
    }

    /// A check for one token of an image reference or a log filter: non-empty, without whitespace or control
    /// characters.
    private static func checkWord(_ expected: String) -> (String) throws(ParseError) -> Void {
        { (value: String) throws(ParseError) in
            guard !value.isEmpty else {
                throw ParseError(value: value, expected: expected, reason: "it is empty")
            }
            let forbidden = value.unicodeScalars.contains {
                $0.properties.isWhitespace || $0.value < 0x20 || $0.value == 0x7F
            }
            guard !forbidden else {
                throw ParseError(
                    value: value, expected: expected, reason: "it contains whitespace or a control character")
            }
        }
    }

    /// Ports and ranges as ``PortRange`` parses them (entries of digits and hyphens only), or container port names
    /// (IANA service names: 1 to 15 lowercase letters, digits and single inner hyphens, so at least one letter),
    /// which the injector resolves to the numbers of the pod's ports so named.
    static func checkOpaquePorts(_ value: String) throws(ParseError) {
        let expected = "list of ports, port ranges and port names"
        guard !value.trimmingWhitespace.isEmpty else {
            throw ParseError(value: value, expected: expected, reason: "it is empty")
        }
        for (offset, rawEntry) in value.split(separator: ",", omittingEmptySubsequences: false).enumerated() {
            let entry = rawEntry.trimmingWhitespace
            func failure(_ reason: String) -> ParseError {
                ParseError(value: value, expected: expected, reason: "entry \(offset + 1) \(entry.quoted): \(reason)")
            }
            guard !entry.isEmpty else {
                throw ParseError(value: value, expected: expected, reason: "entry \(offset + 1) is empty")
            }
            if entry.unicodeScalars.allSatisfy({ ("0"..."9").contains($0) || $0 == "-" }) {
                do throws(ParseError) {
                    _ = try PortRange(parsing: entry)
                } catch {
                    throw failure(error.reason)
                }
                continue
            }
            let allowed = entry.unicodeScalars.allSatisfy {
                ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-"
            }
            guard entry.count <= 15, allowed, !entry.hasPrefix("-"), !entry.hasSuffix("-"), !entry.contains("--")
            else {
                throw failure(
                    "expected a port, a range such as 1000-2000, or a port name of at most 15 lowercase letters, "
                        + "digits and single inner hyphens")
            }
        }
    }
}
