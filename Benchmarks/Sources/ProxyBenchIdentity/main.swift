import Foundation
import KubeClient
import KubeModel
import KubeTestServer
import LinkerdIdentityServer
import LinkerdTestSupport
import Logging
import NIOPosix
import ServiceLifecycle

// The identity service of `proxy-bench.sh`: `ProxyBenchIdentity DIR LIFETIME SERVICEACCOUNT...`.
//
// Writes a throw-away trust anchor (also the issuer, as `linkerd install` makes when given no certificates) to
// DIR/ca-bundle.crt and DIR/issuer/, and for each ServiceAccount NAME of namespace `emojivoto` a token in
// DIR/token-NAME that a loopback API server's TokenReview accepts. Then serves Certify over TLS on 127.0.0.1 with
// `linkerd-identity` as its executable assembles it, prints `port N`, and exits after LIFETIME seconds (or when
// killed).

let arguments = CommandLine.arguments
guard arguments.count >= 4, let lifetime = Int(arguments[2]) else {
    FileHandle.standardError.write(Data("usage: ProxyBenchIdentity DIR LIFETIME SERVICEACCOUNT...\n".utf8))
    exit(64)
}
let directory = URL(fileURLWithPath: arguments[1])
let serviceAccounts = arguments[3...]
var logger = Logger(label: "proxy-bench-identity")
logger.logLevel = .error

let issuerDirectory = directory.appendingPathComponent("issuer")
try FileManager.default.createDirectory(at: issuerDirectory, withIntermediateDirectories: true)
let root = try TestCertificateAuthority(commonName: "identity.linkerd.cluster.local")
try root.certificatePEM.write(
    to: issuerDirectory.appendingPathComponent("crt.pem"), atomically: true, encoding: .utf8)
try root.privateKey.pemRepresentation.write(
    to: issuerDirectory.appendingPathComponent("key.pem"), atomically: true, encoding: .utf8)
let anchors = directory.appendingPathComponent("ca-bundle.crt")
try root.certificatePEM.write(to: anchors, atomically: true, encoding: .utf8)

let api = try await KubeTestServer.start()
try api.put(Namespace(metadata: ObjectMeta(name: "linkerd")))
for name in serviceAccounts {
    let token = "token-\(name)-\(UUID().uuidString)"
    api.registerServiceAccountToken(
        token, user: UserInfo(username: "system:serviceaccount:emojivoto:\(name)"), audiences: ["identity.l5d.io"])
    try token.write(to: directory.appendingPathComponent("token-\(name)"), atomically: true, encoding: .utf8)
}
let client = try KubeClient(
    configuration: KubeClientConfiguration(
        server: api.baseURL, certificateAuthorityPEM: Array(api.caCertificatePEM.utf8)))
let controller = try IdentityController(
    settings: .loopback(issuerDirectory: issuerDirectory.path, trustAnchorsPath: anchors.path), api: client,
    logger: logger)
let group = ServiceGroup(services: controller.services, logger: logger)
try await withThrowingTaskGroup(of: Void.self) { tasks in
    tasks.addTask { try await group.run() }
    let port = try await controller.server.waitUntilBound()
    FileHandle.standardOutput.write(Data("port \(port)\n".utf8))
    try await Task.sleep(for: .seconds(lifetime))
    await group.triggerGracefulShutdown()
    try await tasks.waitForAll()
}
try await client.shutdown()
try await api.shutdown()
