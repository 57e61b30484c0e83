import Crypto
import Foundation
import KubeModel
import LinkerdController
import LinkerdCore
import LinkerdIdentity
import Logging
import Metrics
import ServiceLifecycle
import Synchronization
import X509

/// Loads the trust anchors and the issuer into an `IdentityAuthority`, then keeps the issuer current as its mounted
/// Secret changes (reference §4.5).
///
/// At start (`load()`), the anchors file and the issuer directory (`crt.pem`/`key.pem` or `tls.crt`/`tls.key`) must
/// load and verify, or `run()` throws the `CredentialsError` naming the file at fault. The anchors are read once, as
/// upstream does. Then every `pollInterval` on the injected clock the issuer directory is fingerprinted — the
/// kubelet's `..data` symlink target and a SHA-256 of the files' bytes — so both the kubelet's atomic symlink swap
/// and an in-place rewrite are noticed (upstream's fsnotify-only reload can miss one, issue #15109). A poll during
/// which `..data` moved is skipped. A changed issuer that verifies replaces the old one (`IdentityAuthority/update`),
/// `onUpdate` is called and the Normal event `IssuerUpdated` recorded; one that does not keeps the old issuer and
/// records the Warning event `IssuerUpdateSkipped` with the reason, once per distinct content.
///
/// The gauge `issuer_cert_ttl_seconds` (seconds until the issuer chain's earliest expiry) is set at every poll.
public final class IssuerWatcher: ServiceLifecycle.Service, Sendable {
    /// What one `poll()` found.
    public enum PollResult: Hashable, Sendable {
        case unchanged
        /// The new issuer is in use.
        case reloaded
        /// The changed files are not a valid issuer; the previous one stays in use.
        case rejected(CredentialsError)
        /// `..data` moved while the files were read; the next poll looks again.
        case inTransition
    }

    private struct Fingerprint: Hashable, Sendable {
        var dataTarget: String?
        var digest: [UInt8]
    }

    public let issuerDirectory: String
    public let trustAnchorsPath: String
    public let pollInterval: Duration
    private let authority: IdentityAuthority
    private let events: EventRecorder?
    private let eventTarget: ObjectReference
    private let clock: any WallClock
    private let onUpdate: @Sendable (IssuerCredentials) -> Void
    private let ttlGauge: Gauge
    private let logger: Logger
    private let state = Mutex<State>(State())

    private struct State: Sendable {
        var anchors: TrustAnchors?
        /// The fingerprint of the issuer in use.
        var current: Fingerprint?
        /// The last rejected fingerprint, so a bad issuer is reported once.
        var rejected: Fingerprint?
    }

    /// - Parameters:
    ///   - events: where `IssuerUpdated`/`IssuerUpdateSkipped` go; nil records none.
    ///   - eventTarget: the object events are about (the `linkerd-identity` Deployment).
    ///   - onUpdate: called with every issuer put in use, the first included (the server renews its own certificate).
    public init(
        issuerDirectory: String, trustAnchorsPath: String, authority: IdentityAuthority,
        pollInterval: Duration = .seconds(10), events: EventRecorder?, eventTarget: ObjectReference,
        clock: any WallClock, metricsFactory: any MetricsFactory, logger: Logger,
        onUpdate: @escaping @Sendable (IssuerCredentials) -> Void = { _ in }
    ) {
        self.issuerDirectory = issuerDirectory
        self.trustAnchorsPath = trustAnchorsPath
        self.authority = authority
        self.pollInterval = pollInterval
        self.events = events
        self.eventTarget = eventTarget
        self.clock = clock
        self.onUpdate = onUpdate
        self.ttlGauge = Gauge(label: "issuer_cert_ttl_seconds", factory: metricsFactory)
        self.logger = logger
    }

    /// Loads, then polls until cancelled or shut down gracefully.
    ///
    /// - Throws: `CredentialsError` when the first load fails.
    public func run() async throws {
        try await load()
        do {
            try await cancelWhenGracefulShutdown {
                while !Task.isCancelled {
                    try await self.clock.sleep(for: self.pollInterval)
                    await self.poll()
                }
            }
        } catch is CancellationError {
            return
        }
    }

    /// Reads the trust anchors and the issuer and puts the issuer in use.
    ///
    /// - Throws: `CredentialsError` naming the file that is missing, unreadable or invalid.
    public func load() async throws(CredentialsError) {
        let anchors = try TrustAnchors.load(fromFile: trustAnchorsPath)
        let (fingerprint, files) = try read()
        let issuer = try await IssuerCredentials(
            directoryContents: files, directory: issuerDirectory, trustAnchors: anchors, now: clock.now())
        state.withLock {
            $0.anchors = anchors
            $0.current = fingerprint
            $0.rejected = nil
        }
        install(issuer)
        logger.info(
            "loaded the identity issuer",
            metadata: ["subject": "\(issuer.certificate.subject)", "notAfter": "\(issuer.notValidAfter)"])
    }

    /// Looks at the issuer directory once and reloads the issuer when it changed; never throws.
    @discardableResult
    public func poll() async -> PollResult {
        updateGauge()
        guard let anchors = state.withLock({ $0.anchors }) else {
            return .rejected(CredentialsError(source: trustAnchorsPath, reason: "not loaded yet"))
        }
        let snapshot: (Fingerprint, [String: [UInt8]])
        do {
            snapshot = try read()
        } catch {
            return await reject(error, fingerprint: nil)
        }
        let (fingerprint, files) = snapshot
        guard fingerprint.dataTarget == dataTarget() else { return .inTransition }
        guard state.withLock({ $0.current }) != fingerprint else { return .unchanged }
        let issuer: IssuerCredentials
        do {
            issuer = try await IssuerCredentials(
                directoryContents: files, directory: issuerDirectory, trustAnchors: anchors, now: clock.now())
        } catch {
            return await reject(error, fingerprint: fingerprint)
        }
        state.withLock {
            $0.current = fingerprint
            $0.rejected = nil
        }
        install(issuer)
        logger.info(
            "updated the identity issuer",
            metadata: ["subject": "\(issuer.certificate.subject)", "notAfter": "\(issuer.notValidAfter)"])
        await events?.record(.normal, reason: "IssuerUpdated", message: "Updated identity issuer", about: eventTarget)
        return .reloaded
    }

    private func install(_ issuer: IssuerCredentials) {
        authority.update(issuer: issuer)
        updateGauge()
        onUpdate(issuer)
    }

    private func updateGauge() {
        guard let issuer = authority.issuer else { return }
        ttlGauge.record(issuer.notValidAfter.timeIntervalSince(clock.now()))
    }

    private func reject(_ error: CredentialsError, fingerprint: Fingerprint?) async -> PollResult {
        let isNew = state.withLock { state in
            // An unreadable directory has no fingerprint; it is reported once until something else happens.
            let key = fingerprint ?? Fingerprint(dataTarget: nil, digest: Array(error.description.utf8))
            defer { state.rejected = key }
            return state.rejected != key
        }
        if isNew {
            logger.error(
                "cannot use the new identity issuer; still using the previous one", metadata: ["error": "\(error)"])
            await events?.record(
                .warning, reason: "IssuerUpdateSkipped",
                message: "Skipped identity issuer update: \(error)", about: eventTarget)
        }
        return .rejected(error)
    }

    /// The fingerprint and bytes of the issuer files that exist (both layouts' names).
    private func read() throws(CredentialsError) -> (Fingerprint, [String: [UInt8]]) {
        let target = dataTarget()
        var files: [String: [UInt8]] = [:]
        var hash = SHA256()
        for name in ["crt.pem", "key.pem", "tls.crt", "tls.key"] {
            let path = URL(fileURLWithPath: issuerDirectory).appendingPathComponent(name).path
            guard FileManager.default.fileExists(atPath: path) else { continue }
            let bytes: [UInt8]
            do {
                bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
            } catch {
                throw CredentialsError(source: path, reason: "cannot be read: \(error.localizedDescription)")
            }
            files[name] = bytes
            hash.update(data: Array(name.utf8) + [0] + bytes + [0])
        }
        return (Fingerprint(dataTarget: target, digest: Array(hash.finalize())), files)
    }

    /// The `..data` symlink's target, nil when the directory was not written by the kubelet.
    private func dataTarget() -> String? {
        try? FileManager.default.destinationOfSymbolicLink(
            atPath: URL(fileURLWithPath: issuerDirectory).appendingPathComponent("..data").path)
    }
}
