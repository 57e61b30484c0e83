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
/// Values are checked by the injector's own check of the annotations, so that a typo fails the command instead of
/// becoming an annotation the injector ignores with a warning.
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
    /// - Throws: ``InvalidFlagValue`` for the first flag whose value the injector would not accept, as
    ///   ``ProxyAnnotations/validate(_:mesh:)`` (the webhook's own check) says, or that is empty (an empty
    ///   annotation counts as absent, so the flag would do nothing).
    func annotations() throws(InvalidFlagValue) -> [String: String] {
        var flags: [String: (flag: String, value: String)] = [:]
        func set(_ key: String, _ flag: String, _ value: String?) {
            if let value {
                flags[key] = (flag, value)
            }
        }
        set(MeshKeys.opaquePorts, "--opaque-ports", opaquePorts)
        set(MeshKeys.skipInboundPorts, "--skip-inbound-ports", skipInboundPorts)
        set(MeshKeys.skipOutboundPorts, "--skip-outbound-ports", skipOutboundPorts)
        set(MeshKeys.skipSubnets, "--skip-subnets", skipSubnets)
        set(MeshKeys.proxyUID, "--proxy-uid", proxyUID)
        set(MeshKeys.proxyGID, "--proxy-gid", proxyGID)
        set(MeshKeys.proxyVersionOverride, "--proxy-version", proxyVersion)
        set(MeshKeys.proxyImage, "--proxy-image", proxyImage)
        set(MeshKeys.proxyLogLevel, "--proxy-log-level", proxyLogLevel)
        set(MeshKeys.proxyCPURequest, "--proxy-cpu-request", proxyCPURequest)
        set(MeshKeys.proxyCPULimit, "--proxy-cpu-limit", proxyCPULimit)
        set(MeshKeys.proxyMemoryRequest, "--proxy-memory-request", proxyMemoryRequest)
        set(MeshKeys.proxyMemoryLimit, "--proxy-memory-limit", proxyMemoryLimit)
        set(MeshKeys.adminPort, "--admin-port", adminPort)
        set(MeshKeys.inboundPort, "--inbound-port", inboundPort)
        set(MeshKeys.outboundPort, "--outbound-port", outboundPort)
        set(MeshKeys.controlPort, "--control-port", controlPort)
        set(MeshKeys.defaultInboundPolicy, "--default-inbound-policy", defaultInboundPolicy)
        if let empty = flags.values.sorted(by: { $0.flag < $1.flag }).first(where: {
            $0.value.trimmingWhitespace.isEmpty
        }) {
            throw InvalidFlagValue(flag: empty.flag, value: empty.value, reason: "it is empty")
        }
        var annotations = flags.mapValues(\.value)
        if let nativeSidecar {
            annotations[MeshKeys.nativeSidecar] = nativeSidecar ? "true" : "false"
        }
        if let awaitProxy {
            annotations[MeshKeys.proxyAwait] = awaitProxy ? "enabled" : "disabled"
        }
        if let warning = ProxyAnnotations.validate(annotations).first {
            throw InvalidFlagValue(
                flag: flags[warning.key]?.flag ?? warning.key, value: warning.value, reason: warning.reason)
        }
        return annotations
    }

    private static let policyNames = DefaultInboundPolicy.allCases.map(\.rawValue).joined(separator: ", ")
}
