import Foundation
import LinkerdController
import LinkerdTestSupport
import Testing
import X509

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

@Suite("MountedCertificateWatcher")
struct CertificateMountedWatcherTests {
    @Test("loads at start, reloads after the kubelet swaps ..data, ignores an invalid swap, then takes a valid one")
    func symlinkSwap() throws {
        let volume = try SecretVolume()
        defer { volume.remove() }
        let ca = try TestCertificateAuthority()
        let first = try ca.issue(commonName: injectorHost, dnsNames: [injectorHost])
        try volume.publish(certificate: first.certificatePEM, key: first.privateKeyPEM)

        let store = TLSCredentialStore()
        let watcher = MountedCertificateWatcher(directory: volume.path, store: store)
        try watcher.load()
        #expect(store.current?.leaf == first.certificate)
        #expect(watcher.poll() == .unchanged)

        let second = try ca.issue(commonName: injectorHost, dnsNames: [injectorHost])
        try volume.publish(certificate: second.certificatePEM, key: second.privateKeyPEM)
        #expect(watcher.poll() == .reloaded)
        #expect(store.current?.leaf == second.certificate)
        #expect(watcher.poll() == .unchanged)

        // A key that does not match: rejected, the second pair stays, and the error names both files.
        let third = try ca.issue(commonName: injectorHost, dnsNames: [injectorHost])
        try volume.publish(certificate: third.certificatePEM, key: first.privateKeyPEM)
        let result = watcher.poll()
        guard case .rejected(.invalid(let path, let reason)) = result else {
            Issue.record("expected a rejection, got \(result)")
            return
        }
        #expect(path == "\(volume.path)/tls.crt and \(volume.path)/tls.key")
        #expect(reason.hasPrefix("the private key does not match the leaf certificate"))
        #expect(store.current?.leaf == second.certificate)

        // Garbage key: the error names tls.key.
        try volume.publish(certificate: third.certificatePEM, key: "not a key")
        guard case .rejected(.invalid(path: "\(volume.path)/tls.key", _)) = watcher.poll() else {
            Issue.record("expected tls.key to be named")
            return
        }
        #expect(store.current?.leaf == second.certificate)

        try volume.publish(certificate: third.certificatePEM, key: third.privateKeyPEM)
        #expect(watcher.poll() == .reloaded)
        #expect(store.current?.leaf == third.certificate)
    }

    @Test("plain files rewritten in place are reloaded too")
    func inPlaceRewrite() throws {
        let volume = try SecretVolume()
        defer { volume.remove() }
        let ca = try TestCertificateAuthority()
        let first = try ca.issue(commonName: injectorHost, dnsNames: [injectorHost])
        try volume.writePlain(certificate: first.certificatePEM, key: first.privateKeyPEM)
        let store = TLSCredentialStore()
        let watcher = MountedCertificateWatcher(directory: volume.path, store: store)
        try watcher.load()

        let second = try ca.issue(commonName: injectorHost, dnsNames: [injectorHost])
        try volume.writePlain(certificate: second.certificatePEM, key: second.privateKeyPEM)
        #expect(watcher.poll() == .reloaded)
        #expect(store.current?.leaf == second.certificate)
    }

    @Test("a failed first load names the file and leaves the store empty")
    func startFailure() throws {
        let volume = try SecretVolume()
        defer { volume.remove() }
        let store = TLSCredentialStore()
        let watcher = MountedCertificateWatcher(directory: volume.path, store: store)
        let missing = #expect(throws: MountedCertificateError.self) { try watcher.load() }
        guard case .unreadable(path: "\(volume.path)/tls.crt", _) = missing else {
            Issue.record("expected tls.crt unreadable, got \(String(describing: missing))")
            return
        }
        #expect(missing?.description.hasPrefix("cannot read \(volume.path)/tls.crt:") == true)

        let ca = try TestCertificateAuthority()
        let leaf = try ca.issue(commonName: injectorHost, dnsNames: [injectorHost])
        try volume.publish(certificate: "garbage", key: leaf.privateKeyPEM)
        let invalid = #expect(throws: MountedCertificateError.self) { try watcher.load() }
        #expect(invalid?.description == "\(volume.path)/tls.crt: the certificate chain contains no PEM block")
        #expect(store.sslContext == nil)
    }

    @Test("run() loads, then picks up a swap on the next poll of the injected clock")
    func runLoop() async throws {
        let volume = try SecretVolume()
        defer { volume.remove() }
        let ca = try TestCertificateAuthority()
        let first = try ca.issue(commonName: injectorHost, dnsNames: [injectorHost])
        try volume.publish(certificate: first.certificatePEM, key: first.privateKeyPEM)
        let clock = ManualClock()
        let store = TLSCredentialStore()
        let watcher = MountedCertificateWatcher(
            directory: volume.path, store: store, pollInterval: .seconds(5), clock: clock)

        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await watcher.run() }
            try await clock.waitForSleepers(atLeast: 1)
            #expect(store.current?.leaf == first.certificate)

            let second = try ca.issue(commonName: injectorHost, dnsNames: [injectorHost])
            try volume.publish(certificate: second.certificatePEM, key: second.privateKeyPEM)
            #expect(store.current?.leaf == first.certificate, "nothing happens before the poll")
            clock.advance(by: .seconds(5))
            try await eventually("the swap picked up") { store.current?.leaf == second.certificate }
            group.cancelAll()
            try await group.waitForAll()
        }
    }
}

/// A temporary directory laid out like a kubelet Secret volume: `..<timestamp>/` directories with the files,
/// `..data` a symlink to the current one, and `tls.crt`/`tls.key` symlinks through `..data`.
private struct SecretVolume {
    let path: String
    private static let generation = Counter()

    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("linkerd-tls-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    /// Publishes a new version as the kubelet's atomic writer does: new timestamped directory, a temporary
    /// symlink to it renamed over `..data`, then the old directory removed.
    func publish(certificate: String, key: String) throws {
        let fileManager = FileManager.default
        let previous = try? fileManager.destinationOfSymbolicLink(atPath: "\(path)/..data")
        let version = "..2026_01_01_00_00_00.\(Self.generation.next())"
        try fileManager.createDirectory(atPath: "\(path)/\(version)", withIntermediateDirectories: false)
        try Data(certificate.utf8).write(to: URL(fileURLWithPath: "\(path)/\(version)/tls.crt"))
        try Data(key.utf8).write(to: URL(fileURLWithPath: "\(path)/\(version)/tls.key"))
        try fileManager.createSymbolicLink(atPath: "\(path)/..data_tmp", withDestinationPath: version)
        guard rename("\(path)/..data_tmp", "\(path)/..data") == 0 else {
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
        }
        for name in ["tls.crt", "tls.key"] where !fileManager.fileExists(atPath: "\(path)/\(name)") {
            try fileManager.createSymbolicLink(atPath: "\(path)/\(name)", withDestinationPath: "..data/\(name)")
        }
        if let previous {
            try fileManager.removeItem(atPath: "\(path)/\(previous)")
        }
    }

    /// Writes regular files in place (no symlinks), as a hand-managed directory would.
    func writePlain(certificate: String, key: String) throws {
        try Data(certificate.utf8).write(to: URL(fileURLWithPath: "\(path)/tls.crt"))
        try Data(key.utf8).write(to: URL(fileURLWithPath: "\(path)/tls.key"))
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// Distinct version numbers across tests running in parallel.
    final class Counter: Sendable {
        private let value = Locked(0)

        func next() -> Int {
            value.withLock { value in
                value += 1
                return value
            }
        }
    }
}
