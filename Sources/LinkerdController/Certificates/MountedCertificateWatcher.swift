import Crypto
import Foundation
import LinkerdCore
import Logging
import ServiceLifecycle
import Synchronization

/// Serves a certificate mounted from a Secret (Helm or cert-manager): loads `tls.crt` and `tls.key` from a directory
/// into a `TLSCredentialStore` and reloads them when they change.
///
/// The kubelet updates a Secret volume atomically: it writes the new files into a fresh `..<timestamp>` directory,
/// points a temporary symlink at it and renames that over the `..data` symlink; `tls.crt` and `tls.key` are
/// symlinks through `..data`. Each poll compares a fingerprint — the `..data` symlink's target (when there is one)
/// and a SHA-256 of both files' bytes — with the last one seen, so both a symlink swap and a plain in-place rewrite
/// are noticed. A poll during which the `..data` target moved is skipped (the files may come from two versions).
/// A changed pair that fails validation is logged once and the previous credentials stay served; it is retried
/// only when the files change again.
///
/// The Go injector reloads on fsnotify CREATE of `..data`; polling (every `pollInterval` on the injected clock)
/// is simpler, portable, and bounded in delay just the same.
public final class MountedCertificateWatcher: ServiceLifecycle.Service, Sendable {
    /// Where the injector's chart mounts the Secret.
    public static let defaultDirectory = "/var/run/linkerd/tls"

    /// What a poll saw, to tell whether anything changed.
    private struct Fingerprint: Equatable, Sendable {
        var dataTarget: String?
        /// SHA-256 of the certificate, a zero byte, and the key.
        var digest: [UInt8]
    }

    /// What one `poll()` found.
    public enum PollResult: Hashable, Sendable {
        /// Nothing changed since the last poll.
        case unchanged
        /// A changed pair was loaded into the store.
        case reloaded
        /// A changed pair was rejected; the store keeps the previous credentials.
        case rejected(MountedCertificateError)
        /// The `..data` symlink moved while the files were read; the next poll will look again.
        case inTransition
    }

    public let directory: String
    public let pollInterval: Duration
    private let store: TLSCredentialStore
    private let clock: any WallClock
    private let logger: Logger
    /// The fingerprint of the pair in the store.
    private let lastSeen = Mutex<Fingerprint?>(nil)
    /// The last rejected fingerprint and error, so a rejection is logged once, not at every poll.
    private let lastRejection = Mutex<(Fingerprint?, MountedCertificateError)?>(nil)

    /// - Parameters:
    ///   - directory: holds `tls.crt` and `tls.key` (and, from the kubelet, `..data`).
    ///   - pollInterval: time between two looks at the files.
    public init(
        directory: String = MountedCertificateWatcher.defaultDirectory,
        store: TLSCredentialStore,
        pollInterval: Duration = .seconds(10),
        clock: any WallClock = SystemWallClock(),
        logger: Logger = Logger(label: "linkerd.proxy-injector.mounted-certificate")
    ) {
        self.directory = directory
        self.store = store
        self.pollInterval = pollInterval
        self.clock = clock
        var logger = logger
        logger[metadataKey: "directory"] = "\(directory)"
        self.logger = logger
    }

    private var certificatePath: String { directory + "/tls.crt" }
    private var keyPath: String { directory + "/tls.key" }
    private var dataLinkPath: String { directory + "/..data" }

    /// Loads the pair into the store, then polls until cancelled or shut down gracefully.
    ///
    /// - Throws: `MountedCertificateError` when the first load fails: the webhook cannot serve without it.
    public func run() async throws {
        try load()
        do {
            try await cancelWhenGracefulShutdown {
                while !Task.isCancelled {
                    try await self.clock.sleep(for: self.pollInterval)
                    self.poll()
                }
            }
        } catch is CancellationError {
            return
        }
    }

    /// Reads and loads the pair now, whether or not it changed.
    ///
    /// - Throws: `MountedCertificateError` naming the file that cannot be read or is invalid; the store is left as
    ///   it was.
    public func load() throws(MountedCertificateError) {
        let (fingerprint, certificate, key) = try read()
        try install(certificate: certificate, key: key)
        lastSeen.withLock { $0 = fingerprint }
        logger.info("loaded the mounted webhook certificate", metadata: ["notAfter": "\(notAfterText)"])
    }

    /// Looks at the files once and reloads them when they changed; never throws, logs what it rejects.
    @discardableResult
    public func poll() -> PollResult {
        let snapshot: (Fingerprint, Data, Data)
        do {
            snapshot = try read()
        } catch {
            // Unreadable is not a new pair: keep serving, look again next time, and say so once per kind of error.
            return reject(error, fingerprint: nil)
        }
        let (fingerprint, certificate, key) = snapshot
        guard fingerprint.dataTarget == currentDataTarget() else { return .inTransition }
        guard lastSeen.withLock({ $0 }) != fingerprint else {
            lastRejection.withLock { $0 = nil }
            return .unchanged
        }
        do {
            try install(certificate: certificate, key: key)
        } catch {
            return reject(error, fingerprint: fingerprint)
        }
        lastSeen.withLock { $0 = fingerprint }
        lastRejection.withLock { $0 = nil }
        logger.info("reloaded the mounted webhook certificate", metadata: ["notAfter": "\(notAfterText)"])
        return .reloaded
    }

    private func reject(_ error: MountedCertificateError, fingerprint: Fingerprint?) -> PollResult {
        let isNew = lastRejection.withLock { last in
            defer { last = (fingerprint, error) }
            return last.map { $0.0 != fingerprint || $0.1 != error } ?? true
        }
        if isNew {
            logger.error(
                "cannot use the mounted certificate; still serving the previous one",
                metadata: ["error": "\(error)"])
        }
        return .rejected(error)
    }

    private var notAfterText: String {
        store.notAfter?.description ?? "-"
    }

    private func read() throws(MountedCertificateError) -> (Fingerprint, Data, Data) {
        let target = currentDataTarget()
        let certificate = try readFile(certificatePath)
        let key = try readFile(keyPath)
        var hash = SHA256()
        hash.update(data: certificate)
        hash.update(data: Data([0]))
        hash.update(data: key)
        return (Fingerprint(dataTarget: target, digest: Array(hash.finalize())), certificate, key)
    }

    private func readFile(_ path: String) throws(MountedCertificateError) -> Data {
        do {
            return try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw .unreadable(path: path, reason: String(describing: error))
        }
    }

    /// The `..data` symlink's target, or nil when there is no such symlink (files not written by the kubelet).
    private func currentDataTarget() -> String? {
        try? FileManager.default.destinationOfSymbolicLink(atPath: dataLinkPath)
    }

    private func install(certificate: Data, key: Data) throws(MountedCertificateError) {
        guard let certificateText = String(data: certificate, encoding: .utf8) else {
            throw .invalid(path: certificatePath, reason: "not UTF-8 text")
        }
        guard let keyText = String(data: key, encoding: .utf8) else {
            throw .invalid(path: keyPath, reason: "not UTF-8 text")
        }
        do {
            try store.update(certificateChainPEM: certificateText, privateKeyPEM: keyText)
        } catch {
            switch error {
            case .invalidPrivateKey:
                throw .invalid(path: keyPath, reason: error.description)
            case .privateKeyDoesNotMatchCertificate, .tlsContextRejected:
                throw .invalid(path: "\(certificatePath) and \(keyPath)", reason: error.description)
            case .noCertificate, .invalidCertificatePEM, .unexpectedPEMBlock, .invalidCertificate:
                throw .invalid(path: certificatePath, reason: error.description)
            }
        }
    }
}

/// Why the mounted certificate could not be loaded.
public enum MountedCertificateError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The file cannot be read (missing, permissions).
    case unreadable(path: String, reason: String)
    /// The file (or the pair) was read but is not a usable certificate or key.
    case invalid(path: String, reason: String)

    public var description: String {
        switch self {
        case .unreadable(let path, let reason): "cannot read \(path): \(reason)"
        case .invalid(let path, let reason): "\(path): \(reason)"
        }
    }
}
