import KubeModel
import LinkerdCore
import Synchronization

/// The bearer token of each request. A token file is read at most once per cache lifetime, and again whenever
/// ``refresh()`` is called after the server rejected the token, so a rotated projected token is picked up.
final class BearerTokenSource: Sendable {
    private enum Kind {
        case none
        case fixed(String)
        case file(path: String, lifetime: Duration)
    }

    private struct Cached {
        var token: String
        var readAt: ContinuousClock.Instant
    }

    private let kind: Kind
    private let cache = Mutex<Cached?>(nil)

    init(_ authentication: KubeClientConfiguration.Authentication, cacheLifetime: Duration) {
        switch authentication {
        case .none: kind = .none
        case .bearerToken(let token): kind = .fixed(token)
        case .bearerTokenFile(let path): kind = .file(path: path, lifetime: cacheLifetime)
        }
    }

    /// Whether ``refresh()`` can produce a different token.
    var isRefreshable: Bool {
        if case .file = kind { true } else { false }
    }

    /// The token to send, or nil for no `Authorization` header.
    ///
    /// - Throws: `KubeError` code `.configuration` when the token file cannot be read or is empty.
    func token() throws(KubeError) -> String? {
        switch kind {
        case .none:
            return nil
        case .fixed(let token):
            return token
        case .file(let path, let lifetime):
            let now = ContinuousClock.now
            if let cached = cache.withLock({ $0 }), cached.readAt.duration(to: now) < lifetime {
                return cached.token
            }
            return try read(path, at: now)
        }
    }

    /// Reads the token file again, bypassing the cache; returns the token read (nil without a token file).
    ///
    /// - Throws: `KubeError` code `.configuration` when the token file cannot be read or is empty.
    func refresh() throws(KubeError) -> String? {
        guard case .file(let path, _) = kind else {
            return try token()
        }
        return try read(path, at: ContinuousClock.now)
    }

    private func read(_ path: String, at now: ContinuousClock.Instant) throws(KubeError) -> String {
        let token = try ConfigurationFile.readText(path, what: "bearer token").trimmingWhitespace
        guard !token.isEmpty else {
            throw KubeError(code: .configuration, message: "bearer token file \(path) is empty")
        }
        cache.withLock { $0 = Cached(token: token, readAt: now) }
        return token
    }
}
