import Foundation
import GRPCCore
import KubeModel
import LinkerdController
import LinkerdCore
import LinkerdIdentity
import LinkerdProxyAPI
import Logging
import Metrics
import SwiftProtobuf
import Synchronization

/// `io.linkerd.proxy.identity.Identity/Certify` over gRPC: the `IdentityAuthority`'s decision, with its
/// `IdentityError` codes and messages as the gRPC status (reference §4.3).
///
/// Every call runs under a deadline (`callTimeout`, the TokenReview included); a call that exceeds it answers
/// `unavailable`, as a TokenReview that cannot be made does, so the proxy retries. When the loaded issuer is no
/// longer valid (`unknown`), the Warning event `IssuerValidationFailed` is recorded on the `linkerd-identity`
/// Deployment, at most once per `issuerWarningInterval`.
///
/// Metrics (the names go-grpc-prometheus gives upstream's, §4.6): `grpc_server_started_total` and
/// `grpc_server_handled_total` with `grpc_method`, `grpc_service`, `grpc_type` (and `grpc_code` for the latter), and
/// the timer `identity_certify_duration_seconds` (a histogram with the Prometheus factory).
public final class CertifyService: Io_Linkerd_Proxy_Identity_Identity.SimpleServiceProtocol, Sendable {
    public struct Configuration: Sendable {
        /// The longest a call may take, TokenReview included.
        public var callTimeout: Duration
        /// The least time between two `IssuerValidationFailed` events.
        public var issuerWarningInterval: Duration

        public init(callTimeout: Duration = .seconds(10), issuerWarningInterval: Duration = .seconds(60)) {
            self.callTimeout = callTimeout
            self.issuerWarningInterval = issuerWarningInterval
        }
    }

    private let authority: IdentityAuthority
    private let configuration: Configuration
    private let events: EventRecorder?
    private let eventTarget: ObjectReference
    private let clock: any WallClock
    private let metrics: CertifyMetrics
    private let logger: Logger
    /// When the last `IssuerValidationFailed` event was recorded.
    private let lastIssuerWarning = Mutex<Date?>(nil)

    /// - Parameters:
    ///   - events: where `IssuerValidationFailed` goes; nil records none.
    ///   - eventTarget: the object events are about (the `linkerd-identity` Deployment).
    public init(
        authority: IdentityAuthority, configuration: Configuration = Configuration(), events: EventRecorder?,
        eventTarget: ObjectReference, clock: any WallClock, metricsFactory: any MetricsFactory, logger: Logger
    ) {
        self.authority = authority
        self.configuration = configuration
        self.events = events
        self.eventTarget = eventTarget
        self.clock = clock
        self.metrics = CertifyMetrics(factory: metricsFactory)
        self.logger = logger
    }

    public func certify(
        request: Io_Linkerd_Proxy_Identity_CertifyRequest, context: ServerContext
    ) async throws -> Io_Linkerd_Proxy_Identity_CertifyResponse {
        metrics.started.increment()
        let start = ContinuousClock.now
        let outcome = await decide(request)
        let elapsed = (ContinuousClock.now - start).components
        metrics.duration.recordNanoseconds(elapsed.seconds * 1_000_000_000 + elapsed.attoseconds / 1_000_000_000)
        switch outcome {
        case .success(let result):
            metrics.handled(nil)
            var response = Io_Linkerd_Proxy_Identity_CertifyResponse()
            response.leafCertificate = Data(result.leaf.certificateDER)
            response.intermediateCertificates = result.leaf.intermediateCertificatesDER.map { Data($0) }
            response.validUntil = Google_Protobuf_Timestamp(date: result.leaf.validUntil)
            logger.debug(
                "issued a certificate",
                metadata: ["identity": "\(request.identity)", "validUntil": "\(result.leaf.validUntil)"])
            return response
        case .failure(let error):
            let code = Self.rpcCode(error.code)
            metrics.handled(code)
            // Callers have proven nothing yet: their identity is logged quoted and cut short, and at debug level so a
            // misbehaving client cannot flood the log (the refusals are counted in grpc_server_handled_total).
            logger.debug(
                "refused a Certify request",
                metadata: [
                    "identity": "\(String(request.identity.prefix(253)).quoted)", "code": "\(error.code)",
                    "reason": "\(error.message)",
                ])
            if error.code == .unknown {
                await warnIssuerInvalid(error.message)
            }
            throw RPCError(code: code, message: error.message)
        }
    }

    /// The authority's answer, or `unavailable` when it takes longer than the call timeout.
    private func decide(_ request: Io_Linkerd_Proxy_Identity_CertifyRequest) async -> Result<
        CertifyResult, IdentityError
    > {
        let authority = self.authority
        let timeout = configuration.callTimeout
        let now = clock.now()
        return await withTaskGroup(of: Result<CertifyResult, IdentityError>?.self) { group in
            group.addTask {
                do throws(IdentityError) {
                    return .success(
                        try await authority.certify(
                            identity: request.identity, token: Array(request.token),
                            certificateSigningRequest: Array(request.certificateSigningRequest), now: now))
                } catch {
                    return .failure(error)
                }
            }
            group.addTask {
                // Real time, not the injected clock: the deadline protects this process from a stalled API server.
                do {
                    try await Task.sleep(for: timeout)
                } catch {
                    return nil
                }
                return .failure(
                    IdentityError(
                        code: .unavailable,
                        message: "the request could not be decided within \(timeout) (the TokenReview did not answer)"))
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
                ?? .failure(IdentityError(code: .unavailable, message: "the request was cancelled"))
        }
    }

    private func warnIssuerInvalid(_ message: String) async {
        let now = clock.now()
        let interval = TimeInterval(configuration.issuerWarningInterval.components.seconds)
        let due = lastIssuerWarning.withLock { last in
            guard last.map({ now.timeIntervalSince($0) >= interval }) ?? true else { return false }
            last = now
            return true
        }
        guard due else { return }
        logger.error("the identity issuer is no longer valid", metadata: ["reason": "\(message)"])
        await events?.record(.warning, reason: "IssuerValidationFailed", message: message, about: eventTarget)
    }

    /// The gRPC status code for an `IdentityError` code.
    public static func rpcCode(_ code: IdentityError.Code) -> RPCError.Code {
        switch code {
        case .invalidArgument: .invalidArgument
        case .failedPrecondition: .failedPrecondition
        case .unavailable: .unavailable
        case .unknown: .unknown
        case .internalError: .internalError
        }
    }
}

/// The Certify metrics, as go-grpc-prometheus names them.
struct CertifyMetrics: Sendable {
    static let dimensions = [
        ("grpc_method", "Certify"), ("grpc_service", "io.linkerd.proxy.identity.Identity"), ("grpc_type", "unary"),
    ]

    let started: Counter
    let duration: Metrics.Timer
    private let factory: any MetricsFactory

    init(factory: any MetricsFactory) {
        self.factory = factory
        started = Counter(label: "grpc_server_started_total", dimensions: Self.dimensions, factory: factory)
        duration = Metrics.Timer(label: "identity_certify_duration_seconds", factory: factory)
    }

    /// Counts a finished call (nil: OK); the factory returns the same counter for the same label and dimensions.
    func handled(_ code: RPCError.Code?) {
        Counter(
            label: "grpc_server_handled_total", dimensions: [("grpc_code", Self.codeName(code))] + Self.dimensions,
            factory: factory
        ).increment()
    }

    /// The Go names of the codes (`OK`, `InvalidArgument`, ...), as the label values upstream has.
    static func codeName(_ code: RPCError.Code?) -> String {
        guard let code else { return "OK" }
        switch code {
        case .invalidArgument: return "InvalidArgument"
        case .failedPrecondition: return "FailedPrecondition"
        case .unavailable: return "Unavailable"
        case .unknown: return "Unknown"
        case .internalError: return "Internal"
        case .deadlineExceeded: return "DeadlineExceeded"
        case .resourceExhausted: return "ResourceExhausted"
        case .cancelled: return "Canceled"
        default: return "\(code)"
        }
    }
}
