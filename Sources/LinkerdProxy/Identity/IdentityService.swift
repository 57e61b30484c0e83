import Foundation
import LinkerdCore
import LinkerdProxyCore
import Logging
import ServiceLifecycle

/// The proxy's identity task (reference proxy §4.3): Certify, install the certificate in the ``ProxyCredentials``,
/// sleep as the ``IdentityRefreshSchedule`` says, and again, until graceful shutdown or cancellation.
///
/// A failed call (or a certificate that cannot be installed) keeps the credentials in use and is retried per the
/// schedule: at 70% of what remains of the current certificate, or after the minimum refresh when there is none or it
/// has expired. Time comes from the injected `WallClock`, so tests drive the schedule.
///
/// Logs `Certified identity` (info) with the identity and expiry, and `Failed to obtain identity` (error) with the
/// error and the time until the next attempt, as upstream's messages.
public final class IdentityService: ServiceLifecycle.Service, Sendable {
    public let client: IdentityClient
    public let credentials: ProxyCredentials
    public let schedule: IdentityRefreshSchedule
    private let clock: any WallClock
    private let logger: Logger

    public init(
        client: IdentityClient, credentials: ProxyCredentials, schedule: IdentityRefreshSchedule = .standard,
        clock: any WallClock, logger: Logger
    ) {
        self.client = client
        self.credentials = credentials
        self.schedule = schedule
        self.clock = clock
        self.logger = logger
    }

    /// Runs the refresh loop; returns on graceful shutdown or cancellation.
    public func run() async throws {
        do {
            try await cancelWhenGracefulShutdown { try await self.refreshForever() }
        } catch is CancellationError {
            return
        }
    }

    private func refreshForever() async throws {
        var state = IdentityRefreshState(schedule: schedule, expiry: credentials.expiry)
        while !Task.isCancelled {
            let delay: Duration
            do {
                let identity = try await client.certify()
                try credentials.install(identity)
                delay = state.certified(validUntil: identity.validUntil, now: clock.now())
                logger.info(
                    "Certified identity",
                    metadata: [
                        "id": "\(identity.localName)", "expiry": "\(identity.validUntil.ISO8601Format())",
                        "refreshIn": "\(delay)",
                    ])
            } catch {
                delay = state.failed(now: clock.now())
                logger.error(
                    "Failed to obtain identity", metadata: ["error": "\(error)", "retryIn": "\(delay)"])
            }
            try await clock.sleep(for: delay)
        }
    }
}
