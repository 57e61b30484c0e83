import Foundation
import LinkerdCLI
import SwiftASN1
import X509

/// A fixed time for the identity tests that do not involve OpenSSL (which checks validity against the real clock):
/// 2025-06-15T16:26:40Z, a whole second, so certificate times (whole seconds) hold it exactly.
let identityTestTime = Date(timeIntervalSince1970: 1_750_004_800)

/// Runs the command line at `now`, with `standardInput` as standard input.
func linkerd(_ arguments: [String], at now: Date, standardInput: String = "") -> CommandOutcome {
    LinkerdCommand.run(arguments, context: .standardInput(standardInput), now: now)
}

/// The first certificate of the PEM file at `path`.
func certificate(at path: URL) throws -> Certificate {
    try Certificate(pemEncoded: String(contentsOf: path, encoding: .utf8))
}

/// The permission bits of the file at `path`.
func permissions(of path: URL) throws -> Int {
    let attributes = try FileManager.default.attributesOfItem(atPath: path.path)
    return (attributes[.posixPermissions] as? NSNumber)?.intValue ?? -1
}

/// The names in `directory`, sorted: to check that a failed command left nothing behind, temporary files included.
func contents(of directory: URL) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
}

/// Runs `openssl` with `arguments` in `directory` and returns its combined output and exit status.
func openssl(_ arguments: [String], in directory: URL) throws -> (output: String, status: Int32) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["openssl"] + arguments
    process.currentDirectoryURL = directory
    // One pipe for both streams, read to its end before waiting: OpenSSL's output here is a few kilobytes.
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (String(decoding: data, as: UTF8.self), process.terminationStatus)
}

/// A trust anchor and issuer created with the command line in `directory` (`ca.crt`, `ca.key`, `issuer.crt`,
/// `issuer.key`) at `now`.
@discardableResult
func createAnchorAndIssuer(
    in directory: URL, at now: Date, anchorArguments: [String] = [], issuerArguments: [String] = []
) throws -> (anchor: CommandOutcome, issuer: CommandOutcome) {
    let anchor = linkerd(
        [
            "identity", "create-trust-anchor", "--cert-out", directory.appendingPathComponent("ca.crt").path,
            "--key-out", directory.appendingPathComponent("ca.key").path,
        ] + anchorArguments,
        at: now)
    let issuer = linkerd(
        [
            "identity", "create-issuer",
            "--ca-cert", directory.appendingPathComponent("ca.crt").path,
            "--ca-key", directory.appendingPathComponent("ca.key").path,
            "--cert-out", directory.appendingPathComponent("issuer.crt").path,
            "--key-out", directory.appendingPathComponent("issuer.key").path,
        ] + issuerArguments,
        at: now)
    return (anchor, issuer)
}
