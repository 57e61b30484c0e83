import Foundation
import LinkerdInject
import Logging
import Metrics
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// The mesh configuration as mounted into the controller's pod, re-read whenever the files change, so an upgrade
/// (a new `linkerd-config` ConfigMap or new trust roots) takes effect without a restart.
///
/// The files are the `values` key of ConfigMap `linkerd-config` and the `ca-bundle.crt` key of ConfigMap
/// `linkerd-identity-trust-roots`, mounted by the kubelet. The kubelet replaces a ConfigMap volume atomically by
/// writing a new timestamped directory and re-pointing the `..data` symlink, so the file names are symlinks through
/// `..data`.
///
/// `current()` is cheap enough to call on every admission request: it resolves both paths (following `..data`) and
/// compares each file's resolved path, device, inode, size and modification and change times with what it last
/// read. Only a difference re-reads and re-parses. A new configuration that cannot be used (unreadable file, values
/// that do not parse, empty trust roots) is logged as an error and counted in
/// `mesh_configuration_load_errors_total`, once per change, and the last good configuration stays in use.
///
/// - An absent values file means the defaults (`MeshConfiguration.defaults` with the trust roots).
/// - An absent or empty trust-roots file is an error: a proxy without trust anchors cannot join the mesh.
///
/// Thread-safety: every member may be called from any thread. Reads and parsing happen outside the lock, so two
/// callers racing on a change may both parse; the first to finish records the result.
public final class MeshConfigurationSource: Sendable {
    /// Where the proxy injector's pod mounts the `values` key of ConfigMap `linkerd-config`.
    public static let defaultValuesPath = "/var/run/linkerd/config/values"
    /// Where the proxy injector's pod mounts ConfigMap `linkerd-identity-trust-roots`'s `ca-bundle.crt`.
    public static let defaultTrustRootsPath = "/var/run/linkerd/identity/trust-roots/ca-bundle.crt"

    private struct State {
        /// The files as they were when last read (whether or not that read gave a good configuration).
        var seen: Snapshot?
        var good: MeshConfiguration?
        /// Why the last read failed, when it did.
        var failure: MeshConfigurationSourceError?
    }

    /// The two files' identities at one moment.
    private struct Snapshot: Hashable {
        var values: FileIdentity
        var trustRoots: FileIdentity
    }

    private let valuesPath: String
    private let trustRootsPath: String
    private let logger: Logger
    private let loadErrors: Counter
    private let state = Mutex(State())

    /// - Parameters:
    ///   - valuesPath: the Helm values (YAML or JSON); usually ``defaultValuesPath``.
    ///   - trustRootsPath: the trust anchors PEM bundle; usually ``defaultTrustRootsPath``.
    ///   - metricsFactory: where `mesh_configuration_load_errors_total` is registered.
    public init(
        valuesPath: String, trustRootsPath: String, logger: Logger,
        metricsFactory: any MetricsFactory = MetricsSystem.factory
    ) {
        self.valuesPath = valuesPath
        self.trustRootsPath = trustRootsPath
        self.logger = logger
        loadErrors = Counter(label: "mesh_configuration_load_errors_total", factory: metricsFactory)
    }

    /// The configuration from the files as they are now, or the last good one when they now hold an unusable one.
    ///
    /// - Throws: `MeshConfigurationSourceError` only when no good configuration has ever been read; it names the
    ///   file and what is wrong with it.
    public func current() throws(MeshConfigurationSourceError) -> MeshConfiguration {
        // A change while reading (the kubelet swapping `..data` between the stat and the read) is detected by
        // identifying the files again afterwards; the read is then repeated, a few times at most.
        var attempt = 0
        while true {
            let before = snapshot()
            if let known = cached(for: before) {
                return try known.get()
            }
            let loaded = load(before)
            attempt += 1
            if attempt < 3, snapshot() != before {
                continue
            }
            return try record(loaded, for: before).get()
        }
    }

    /// The answer for `snapshot` if the files have not changed since they were last read.
    private func cached(for snapshot: Snapshot) -> Result<MeshConfiguration, MeshConfigurationSourceError>? {
        state.withLock { state in
            guard state.seen == snapshot else { return nil }
            return Self.answer(state)
        }
    }

    private func record(
        _ loaded: Result<MeshConfiguration, MeshConfigurationSourceError>, for snapshot: Snapshot
    ) -> Result<MeshConfiguration, MeshConfigurationSourceError> {
        let (answer, isNew, previous) = state.withLock { state in
            guard state.seen != snapshot else { return (Self.answer(state), false, state.good) }
            let previous = state.good
            state.seen = snapshot
            switch loaded {
            case .success(let configuration):
                state.good = configuration
                state.failure = nil
            case .failure(let error):
                state.failure = error
            }
            return (Self.answer(state), true, previous)
        }
        guard isNew else { return answer }
        switch loaded {
        case .success(let configuration):
            if configuration != previous {
                logger.info(
                    "loaded the mesh configuration",
                    metadata: [
                        "linkerd-version": "\(configuration.linkerdVersion)",
                        "proxy-version": "\(configuration.proxyVersion)",
                        "trust-root-sha256": "\(configuration.trustRootSHA256)",
                    ])
            }
        case .failure(let error):
            loadErrors.increment()
            logger.error(
                previous == nil
                    ? "cannot load the mesh configuration"
                    : "cannot load the new mesh configuration; keeping the previous one",
                metadata: ["error": "\(error)"])
        }
        return answer
    }

    /// The good configuration if there is one, else the failure.
    private static func answer(_ state: State) -> Result<MeshConfiguration, MeshConfigurationSourceError> {
        if let good = state.good { return .success(good) }
        return .failure(
            state.failure ?? MeshConfigurationSourceError(path: "", reason: "no configuration has been read"))
    }

    private func snapshot() -> Snapshot {
        Snapshot(values: FileIdentity(path: valuesPath), trustRoots: FileIdentity(path: trustRootsPath))
    }

    private func load(_ snapshot: Snapshot) -> Result<MeshConfiguration, MeshConfigurationSourceError> {
        let trustRoots: String
        switch Self.read(snapshot.trustRoots, path: trustRootsPath) {
        case .failure(let error): return .failure(error)
        case .success(nil):
            return .failure(MeshConfigurationSourceError(path: trustRootsPath, reason: "the file does not exist"))
        case .success(let text?):
            trustRoots = text
        }
        guard trustRoots.contains("-----BEGIN CERTIFICATE-----") else {
            return .failure(
                MeshConfigurationSourceError(path: trustRootsPath, reason: "the file holds no PEM certificate"))
        }
        switch Self.read(snapshot.values, path: valuesPath) {
        case .failure(let error):
            return .failure(error)
        case .success(nil):
            var configuration = MeshConfiguration.defaults
            configuration.trustAnchorsPEM = trustRoots
            return .success(configuration)
        case .success(let values?):
            do {
                return .success(try MeshConfiguration(valuesYAML: values, trustAnchorsPEM: trustRoots))
            } catch {
                return .failure(MeshConfigurationSourceError(path: valuesPath, reason: error.description))
            }
        }
    }

    /// The file's text; nil when it does not exist.
    private static func read(
        _ identity: FileIdentity, path: String
    ) -> Result<String?, MeshConfigurationSourceError> {
        switch identity {
        case .absent:
            return .success(nil)
        case .unavailable(let reason):
            return .failure(MeshConfigurationSourceError(path: path, reason: reason))
        case .present(let resolvedPath, _):
            // Read the resolved file, so the text belongs to the identity that was recorded.
            guard let data = FileManager.default.contents(atPath: resolvedPath) else {
                return .failure(MeshConfigurationSourceError(path: path, reason: "cannot read \(resolvedPath)"))
            }
            guard let text = String(data: data, encoding: .utf8) else {
                return .failure(MeshConfigurationSourceError(path: path, reason: "the file is not UTF-8 text"))
            }
            return .success(text)
        }
    }
}

/// Why the mesh configuration could not be read: the file and the reason.
public struct MeshConfigurationSourceError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The file that could not be used (as configured, before resolving symlinks).
    public var path: String
    public var reason: String

    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }

    public var description: String {
        path.isEmpty ? reason : "cannot use \(path): \(reason)"
    }
}

/// Which file a path names right now, precisely enough to notice any replacement or rewrite.
enum FileIdentity: Hashable {
    case absent
    /// The path (or a symlink on it) cannot be resolved or examined for another reason than absence.
    case unavailable(reason: String)
    /// The file at the end of every symlink, and its stat identity.
    case present(resolvedPath: String, stat: StatIdentity)

    struct StatIdentity: Hashable {
        var device: UInt64
        var inode: UInt64
        var size: Int64
        var modified: Int64
        var modifiedNanoseconds: Int
        var changed: Int64
        var changedNanoseconds: Int
    }

    init(path: String) {
        guard let resolvedPointer = realpath(path, nil) else {
            let code = errno
            self = code == ENOENT ? .absent : .unavailable(reason: String(cString: strerror(code)))
            return
        }
        let resolved = String(cString: resolvedPointer)
        free(resolvedPointer)
        var info = stat()
        guard stat(resolved, &info) == 0 else {
            let code = errno
            self = code == ENOENT ? .absent : .unavailable(reason: String(cString: strerror(code)))
            return
        }
        #if canImport(Darwin)
            let modified = info.st_mtimespec
            let changed = info.st_ctimespec
        #else
            let modified = info.st_mtim
            let changed = info.st_ctim
        #endif
        self = .present(
            resolvedPath: resolved,
            stat: StatIdentity(
                device: UInt64(info.st_dev), inode: UInt64(info.st_ino), size: Int64(info.st_size),
                modified: Int64(modified.tv_sec), modifiedNanoseconds: Int(modified.tv_nsec),
                changed: Int64(changed.tv_sec), changedNanoseconds: Int(changed.tv_nsec)))
    }
}
