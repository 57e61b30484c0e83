import Crypto
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import KubeClient
import KubeModel
import KubeTestServer
import LinkerdIdentityServer
import LinkerdProxyAPI
import LinkerdTestSupport
import Logging
import NIOPosix
import ServiceLifecycle
import SwiftASN1
import X509

/// Measures Certify as a proxy calls it: `linkerd-identity` (as its executable assembles it) on ONE event-loop
/// thread, TokenReviews answered by a loopback API server, and a grpc-swift-2 client over TLS with `CONCURRENCY`
/// calls in flight for `DURATION` seconds, each a distinct ServiceAccount token and CSR, as different pods send.
/// Prints calls per second and the latency distribution. Client, server and API server share the machine's cores.
@main
struct CertifyLoad {
    static func main() async throws {
        let environment = ProcessInfo.processInfo.environment
        let seconds = Int(environment["DURATION"] ?? "") ?? 10
        let concurrency = Int(environment["CONCURRENCY"] ?? "") ?? 16
        var logger = Logger(label: "certify-load")
        logger.logLevel = .error

        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("certify-load-\(getpid())")
        let issuerDirectory = directory.appendingPathComponent("issuer")
        try FileManager.default.createDirectory(at: issuerDirectory, withIntermediateDirectories: true)
        // One root as trust anchor and issuer, as `linkerd install` generates when given no certificates.
        let root = try TestCertificateAuthority(commonName: "identity.linkerd.cluster.local")
        try root.certificatePEM.write(
            to: issuerDirectory.appendingPathComponent("crt.pem"), atomically: true, encoding: .utf8)
        try root.privateKey.pemRepresentation.write(
            to: issuerDirectory.appendingPathComponent("key.pem"), atomically: true, encoding: .utf8)
        let anchors = directory.appendingPathComponent("ca-bundle.crt")
        try root.certificatePEM.write(to: anchors, atomically: true, encoding: .utf8)

        let api = try await KubeTestServer.start()
        try api.put(Namespace(metadata: ObjectMeta(name: "linkerd")))
        let pods = 256
        var prepared: [Io_Linkerd_Proxy_Identity_CertifyRequest] = []
        for index in 0..<pods {
            let name = "sa-\(index)"
            let identity = "\(name).emojivoto.serviceaccount.identity.linkerd.cluster.local"
            api.registerServiceAccountToken(
                "token-\(index)", user: UserInfo(username: "system:serviceaccount:emojivoto:\(name)"),
                audiences: ["identity.l5d.io"])
            var request = Io_Linkerd_Proxy_Identity_CertifyRequest()
            request.identity = identity
            request.token = Data("token-\(index)".utf8)
            request.certificateSigningRequest = Data(try csr(for: identity))
            prepared.append(request)
        }
        let requests = prepared
        let client = try KubeClient(
            configuration: KubeClientConfiguration(
                server: api.baseURL, certificateAuthorityPEM: Array(api.caCertificatePEM.utf8)))

        let settings = IdentityController.Settings.loopback(
            issuerDirectory: issuerDirectory.path, trustAnchorsPath: anchors.path)
        let oneCore = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let controller = try IdentityController(
            settings: settings, api: client, logger: logger, eventLoopGroup: oneCore)
        let group = ServiceGroup(services: controller.services, logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            let port = try await controller.server.waitUntilBound()
            let transport = try HTTP2ClientTransport.Posix(
                target: .ipv4(address: "127.0.0.1", port: port),
                transportSecurity: .tls { tls in
                    tls.trustRoots = .certificates([.bytes(Array(root.certificatePEM.utf8), format: .pem)])
                    tls.serverCertificateVerification = .fullVerification
                },
                config: .defaults {
                    $0.http2.authority = "linkerd-identity.linkerd.serviceaccount.identity.linkerd.cluster.local"
                })
            try await withGRPCClient(transport: transport) { grpc in
                let identity = Io_Linkerd_Proxy_Identity_Identity.Client(wrapping: grpc)
                // Warm up (connection, TLS, the first TokenReviews).
                for request in requests.prefix(32) { _ = try await identity.certify(request) }
                let deadline = ContinuousClock.now.advanced(by: .seconds(seconds))
                let started = ContinuousClock.now
                let latencies = try await withThrowingTaskGroup(of: [Duration].self) { callers in
                    for caller in 0..<concurrency {
                        callers.addTask {
                            var measured: [Duration] = []
                            var next = caller
                            while ContinuousClock.now < deadline {
                                let begin = ContinuousClock.now
                                _ = try await identity.certify(requests[next % requests.count])
                                measured.append(begin.duration(to: .now))
                                next += concurrency
                            }
                            return measured
                        }
                    }
                    var all: [Duration] = []
                    for try await measured in callers { all += measured }
                    return all.sorted()
                }
                let elapsed = started.duration(to: .now)
                func percentile(_ p: Double) -> String {
                    let index = min(latencies.count - 1, Int(Double(latencies.count) * p))
                    let value = latencies[index]
                    return String(
                        format: "%.2f ms",
                        Double(value.components.attoseconds) / 1e15
                            + Double(value.components.seconds) * 1000)
                }
                let rate =
                    Double(latencies.count)
                    / (Double(elapsed.components.seconds)
                        + Double(elapsed.components.attoseconds) / 1e18)
                print(
                    "Certify: \(latencies.count) calls in \(elapsed), \(String(format: "%.0f", rate))/s with "
                        + "\(concurrency) in flight; p50 \(percentile(0.5)), p90 \(percentile(0.9)), "
                        + "p99 \(percentile(0.99)), max \(percentile(1.0))")
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        try await client.shutdown()
        try await api.shutdown()
        try? FileManager.default.removeItem(at: directory)
    }

    /// A DER CSR for `identity`, as `linkerd2-proxy-identity` writes `csr.der`: CN and one DNS SAN, P-256.
    static func csr(for identity: String) throws -> [UInt8] {
        let key = Certificate.PrivateKey(P256.Signing.PrivateKey())
        let extensions = try Certificate.Extensions { SubjectAlternativeNames([.dnsName(identity)]) }
        var attributes = CertificateSigningRequest.Attributes()
        attributes.insert(try CertificateSigningRequest.Attribute(ExtensionRequest(extensions: extensions)))
        let request = try CertificateSigningRequest(
            version: .v1, subject: try DistinguishedName { CommonName(identity) }, privateKey: key,
            attributes: attributes)
        var serializer = DER.Serializer()
        try serializer.serialize(request)
        return serializer.serializedBytes
    }
}
