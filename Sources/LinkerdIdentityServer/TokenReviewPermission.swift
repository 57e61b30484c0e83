import KubeModel
import LinkerdCore
import Logging

/// The startup check upstream makes (reference §4.3): a SelfSubjectAccessReview asking whether this process may
/// `create` `tokenreviews.authentication.k8s.io`. Without that permission every Certify call would fail, so the
/// service refuses to start instead, naming the ClusterRole to fix.
///
/// A denied review fails at once (`TokenReviewPermissionError.denied`). A review that cannot be made (the API
/// server errors or cannot be reached) is retried `attempts` times in all, waiting `initialDelay`, then twice as
/// long each time, on the injected clock, before failing (`unreachable`).
public struct TokenReviewPermission: Sendable {
    public struct Retry: Sendable {
        /// How many reviews to try before giving up; at least 1.
        public var attempts: Int
        /// The wait after the first failure; it doubles after each further one.
        public var initialDelay: Duration

        public init(attempts: Int = 5, initialDelay: Duration = .seconds(1)) {
            self.attempts = max(1, attempts)
            self.initialDelay = initialDelay
        }
    }

    private let api: any KubeAPI
    private let retry: Retry
    private let clock: any WallClock
    private let logger: Logger

    public init(api: any KubeAPI, retry: Retry = Retry(), clock: any WallClock, logger: Logger) {
        self.api = api
        self.retry = retry
        self.clock = clock
        self.logger = logger
    }

    /// Returns when the review allows the permission.
    ///
    /// - Throws: `TokenReviewPermissionError`, or `CancellationError` when cancelled while waiting to retry.
    public func verify() async throws {
        let review = SelfSubjectAccessReview(
            resourceAttributes: .init(verb: "create", group: "authentication.k8s.io", resource: "tokenreviews"))
        var delay = retry.initialDelay
        for attempt in 1...retry.attempts {
            let answer: SelfSubjectAccessReview
            do {
                answer = try await api.create(review)
            } catch {
                guard attempt < retry.attempts else {
                    throw TokenReviewPermissionError.unreachable(attempts: attempt, lastError: "\(error)")
                }
                logger.warning(
                    "cannot check the TokenReview permission; retrying",
                    metadata: ["attempt": "\(attempt)", "retryIn": "\(delay)", "error": "\(error)"])
                try await clock.sleep(for: delay)
                delay *= 2
                continue
            }
            guard answer.status?.allowed == true else {
                throw TokenReviewPermissionError.denied(reason: answer.status?.reason)
            }
            return
        }
    }
}

/// Why the identity service may not start: it cannot validate tokens.
public enum TokenReviewPermissionError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The SelfSubjectAccessReview answered not allowed (with the authorizer's reason, if any).
    case denied(reason: String?)
    /// No review could be made.
    case unreachable(attempts: Int, lastError: String)

    public var description: String {
        switch self {
        case .denied(let reason):
            "linkerd-identity may not create tokenreviews.authentication.k8s.io: check its ClusterRole"
                + (reason.map { $0.isEmpty ? "" : " (\($0))" } ?? "")
        case .unreachable(let attempts, let lastError):
            "cannot check whether linkerd-identity may create tokenreviews.authentication.k8s.io: "
                + "\(attempts) SelfSubjectAccessReviews failed, the last with: \(lastError)"
        }
    }
}
