import Foundation
import LinkerdProxy
import LinkerdProxyCore
import Logging
import NIOCore
import NIOPosix

// One proxy of `proxy-bench.sh`, alone in its process so that its resident memory and CPU time can be read from
// /proc, on ONE event-loop thread (the proxy's default of one core):
//
//   ProxyPair inbound  DIR IDENTITY_PORT LIFETIME BACKEND_PORT...   identity `emoji`: one inbound listener per
//       backend port, forwarding to 127.0.0.1:BACKEND_PORT (the application's port), terminating mTLS;
//   ProxyPair outbound DIR IDENTITY_PORT LIFETIME INBOUND_PORT...   identity `web`: one outbound listener per
//       inbound listener, every connection resolved to 127.0.0.1:INBOUND_PORT with identity `emoji` and the
//       HTTP/2 hint, so HTTP/1 requests travel over one multiplexed mTLS HTTP/2 connection (`l5d-orig-proto`);
//   ProxyPair single   DIR LIFETIME BACKEND_PORT...                  one outbound listener per backend port,
//       plaintext to 127.0.0.1:BACKEND_PORT with no identity (what HAProxy does), for the one-core throughput.
//
// DIR is what `ProxyBenchIdentity` wrote (ca-bundle.crt, token-web, token-emoji); the proxy certifies with the
// identity service on 127.0.0.1:IDENTITY_PORT before listening, as `linkerd-proxy` does. Prints `port N` per listener
// (in argument order), then `ready`, and exits after LIFETIME seconds. Request and TCP metrics are recorded as in
// `linkerd-proxy`.

let identityServiceName = "linkerd-identity.linkerd.serviceaccount.identity.linkerd.cluster.local"
func meshIdentity(_ serviceAccount: String) -> String {
    "\(serviceAccount).emojivoto.serviceaccount.identity.linkerd.cluster.local"
}

/// Writes a line to standard output at once (the bench script waits for it).
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

func usage() -> Never {
    FileHandle.standardError.write(
        Data(
            ("usage: ProxyPair inbound|outbound DIR IDENTITY_PORT LIFETIME PORT...\n"
                + "       ProxyPair single DIR LIFETIME BACKEND_PORT...\n").utf8))
    exit(64)
}

/// Every connection of an outbound listener goes to one meshed endpoint.
struct MeshedEndpointResolver: OutboundEndpointResolver {
    let endpoint: OutboundEndpoint

    func endpoint(for originalDestination: SocketAddress) async -> OutboundEndpoint { endpoint }
    func immediateEndpoint(for originalDestination: SocketAddress) -> OutboundEndpoint? { endpoint }
}

let arguments = Array(CommandLine.arguments.dropFirst())
guard let role = arguments.first, ["inbound", "outbound", "single"].contains(role) else { usage() }
guard arguments.count > 1 else { usage() }
let directory = arguments[1]
var rest = arguments.dropFirst(2)
var identityPort: Int?
if role != "single" {
    guard let port = rest.first.flatMap({ Int($0) }) else { usage() }
    identityPort = port
    rest = rest.dropFirst()
}
guard let lifetime = rest.first.flatMap({ Int($0) }) else { usage() }
let ports = rest.dropFirst().compactMap { Int($0) }
guard !ports.isEmpty, ports.count == rest.count - 1 else { usage() }

var logger = Logger(label: "proxy-pair.\(role)")
logger.logLevel = .warning
let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let serviceAccount = role == "inbound" ? "emoji" : "web"
let localName = meshIdentity(serviceAccount)
let trustAnchors = try IdentityTrustAnchors(
    pemBundle: String(contentsOfFile: "\(directory)/ca-bundle.crt", encoding: .utf8))
let identityDirectory = "\(directory)/\(role)-identity"
try FileManager.default.createDirectory(atPath: identityDirectory, withIntermediateDirectories: true)
let files = try IdentityFiles.prepare(directory: identityDirectory, localName: localName)
let credentials = ProxyCredentials(files: files, trustAnchors: trustAnchors)
if let identityPort {
    let client = try IdentityClient(
        configuration: .init(
            host: "127.0.0.1", port: identityPort, serverIdentity: identityServiceName,
            tokenPath: "\(directory)/token-\(serviceAccount)"),
        files: files, trustAnchors: trustAnchors, eventLoopGroup: group)
    try credentials.install(try await client.certify())
}

let metrics = ProxyMetricsRegistry()
let localhost = { (port: Int) in try SocketAddress(ipAddress: "127.0.0.1", port: port) }
let listen = try localhost(0)
/// A listener: how to run it, and its port once bound.
struct Listener: Sendable {
    let run: @Sendable () async throws -> Void
    let bound: @Sendable () async throws -> Int

    init(_ proxy: InboundProxy) {
        run = proxy.run
        bound = proxy.waitUntilBound
    }

    init(_ proxy: OutboundProxy) {
        run = proxy.run
        bound = proxy.waitUntilBound
    }
}

let listeners: [Listener] = try ports.map { port in
    switch role {
    case "inbound":
        return Listener(
            InboundProxy(
                settings: .init(listenAddress: listen, originalDestination: .fixed(try localhost(port))),
                credentials: credentials, metrics: metrics, logger: logger, eventLoopGroup: group))
    case "outbound":
        let inbound = try localhost(port)
        return Listener(
            OutboundProxy(
                settings: .init(listenAddress: listen, originalDestination: .fixed(inbound)),
                resolver: MeshedEndpointResolver(
                    endpoint: OutboundEndpoint(
                        address: inbound, identity: meshIdentity("emoji"), protocolHint: .http2)),
                credentials: credentials, metrics: metrics, logger: logger, eventLoopGroup: group))
    default:
        return Listener(
            OutboundProxy(
                settings: .init(listenAddress: listen, originalDestination: .fixed(try localhost(port))),
                resolver: OriginalDestinationResolver(), credentials: credentials, metrics: metrics,
                logger: logger, eventLoopGroup: group))
    }
}

try await withThrowingTaskGroup(of: Void.self) { tasks in
    for listener in listeners {
        tasks.addTask { try await listener.run() }
    }
    for listener in listeners {
        say("port \(try await listener.bound())")
    }
    say("ready")
    try await Task.sleep(for: .seconds(lifetime))
    tasks.cancelAll()
}
exit(0)
