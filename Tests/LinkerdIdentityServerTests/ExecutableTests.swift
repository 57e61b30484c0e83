import Foundation
import Testing

@Suite("The linkerd-identity executable")
struct ExecutableTests {
    static let executable = packageRoot.appendingPathComponent(".build/debug/linkerd-identity").path

    @Test("A bad issuer directory makes it exit non-zero, naming the file")
    func badIssuer() throws {
        let root = try MintedCA.root()
        let files = try IdentityFiles(anchor: root)
        try files.writeIssuer(["crt.pem": "not a certificate", "key.pem": root.keyPEM])
        let kubeconfig = files.root.appendingPathComponent("kubeconfig").path
        try """
        apiVersion: v1
        kind: Config
        clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
        users: [{name: u, user: {token: t}}]
        contexts: [{name: x, context: {cluster: c, user: u}}]
        current-context: x
        """.write(toFile: kubeconfig, atomically: true, encoding: .utf8)
        let result = try runProcess(
            Self.executable,
            [
                "--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--issuer", files.issuerDirectory,
                "--trust-anchors", files.anchorsPath, "--kubeconfig", kubeconfig,
            ])
        #expect(result.status != 0)
        #expect(result.output.contains(files.issuerDirectory + "/crt.pem"), "\(result.output)")
    }

    @Test("Plaintext on a non-loopback address is refused with a clear error")
    func plaintextRefused() throws {
        let root = try MintedCA.root()
        let files = try IdentityFiles(anchor: root)
        try files.writeIssuer(try root.sign())
        let kubeconfig = files.root.appendingPathComponent("kubeconfig").path
        try """
        apiVersion: v1
        kind: Config
        clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
        users: [{name: u, user: {token: t}}]
        contexts: [{name: x, context: {cluster: c, user: u}}]
        current-context: x
        """.write(toFile: kubeconfig, atomically: true, encoding: .utf8)
        let result = try runProcess(
            Self.executable,
            [
                "--addr", "0.0.0.0:0", "--plaintext", "--issuer", files.issuerDirectory, "--trust-anchors",
                files.anchorsPath, "--kubeconfig", kubeconfig,
            ])
        #expect(result.status != 0)
        #expect(result.output.contains("refusing to serve plaintext"), "\(result.output)")
    }
}
