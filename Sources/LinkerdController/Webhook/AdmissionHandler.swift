import Foundation
import KubeModel
import LinkerdCore
import LinkerdInject
import Logging
import Metrics
import Synchronization

/// The answer to one webhook request: the HTTP status and body, and the Events to emit about the pod's owner.
public struct AdmissionOutcome: Sendable, Hashable {
    /// 200, or 400 for a body that is not an AdmissionReview.
    public var statusCode: Int
    /// The AdmissionReview answer as JSON; empty for an empty request.
    public var body: Data
    /// `Injected` or `InjectionSkipped` about the owner of a pod that has one; never for dry runs.
    public var events: [AdmissionEvent]

    public init(statusCode: Int, body: Data, events: [AdmissionEvent] = []) {
        self.statusCode = statusCode
        self.body = body
        self.events = events
    }
}

/// An Event the webhook emits about a workload.
public struct AdmissionEvent: Sendable, Hashable {
    public var type: EventType
    public var reason: String
    public var message: String
    public var object: ObjectReference

    public init(type: EventType, reason: String, message: String, object: ObjectReference) {
        self.type = type
        self.reason = reason
        self.message = message
        self.object = object
    }
}

/// The proxy injector's admission decision (control-plane.md §2.2, §2.3), without sockets: AdmissionReview bytes in,
/// HTTP status and AdmissionReview bytes out.
///
/// - An empty body is answered 200 with an empty body (and a warning is logged), as upstream.
/// - A body that is not JSON, not an object, of another `apiVersion` than `admission.k8s.io/v1` or `v1beta1`, of
///   another `kind` than `AdmissionReview`, without `request` or `request.uid`, or with a field of the wrong type,
///   is answered 400 with a message naming the problem.
/// - Otherwise the answer is 200 with an AdmissionReview of the request's `apiVersion` whose `response` holds the
///   request's uid, `allowed: true`, and a base64 `JSONPatch` when there is something to change. Every object is
///   allowed: the webhook mutates, it never rejects.
/// - Only `CREATE` is reviewed (the webhook is registered for nothing else); another operation, or a request
///   without an object, is allowed unchanged.
/// - A Pod gets `metadata.namespace` from `request.namespace` first (pods made from templates carry only
///   `generateName`), then its owner is resolved (`OwnerResolver`) and the injector decides: an injectable pod
///   gets the proxy patch, a skipped one the opaque-ports annotation patch when one applies. A Service gets the
///   opaque-ports patch when one applies. Other kinds are allowed unchanged (the injector reports them
///   unsupported).
/// - Annotation values the injector ignored are logged as warnings and counted.
/// - Events (`Injected` / `InjectionSkipped`) are returned in the outcome for the pod's owner, not emitted here, and
///   none for dry runs (`request.dryRun`), whose side effects must not show.
///
/// Lookups that miss their caches share one budget (`lookupTimeout`, 2 s by default), well inside the API server's
/// `timeoutSeconds` (10 s) for the webhook, so a slow API server makes us answer rather than the API server give up
/// on us (which would admit the pod unmeshed with nothing logged or counted here). A namespace lookup out of time is
/// an internal failure (below); an owner lookup out of time leaves the pod without an owner (injected, but without
/// the owner's label and Events), since the owner matters only for those.
///
/// Internal failures (the mesh configuration cannot be read, the namespace cannot be looked up) do not reject the
/// object: it is allowed **without** a patch, the error is logged and counted in
/// `proxy_inject_admission_errors_total`, and the response carries an admission warning. This deliberately fixes
/// upstream's quirk (control-plane.md §2.10) of answering `allowed: false` on a handler error, which rejects pods
/// even under `failurePolicy: Ignore`: a broken injector must degrade to "not meshed", never to "cannot deploy".
///
/// Decoding, the injector and the metrics run on the caller's thread (the webhook server's event loop); only
/// namespace and owner lookups that miss their caches suspend (see `begin(_:)`).
public struct AdmissionHandler: Sendable {
    private let configuration: @Sendable () throws -> MeshConfiguration
    private let namespaces: NamespaceAnnotationLookup
    private let owners: OwnerResolver
    private let events: EventRecorder
    private let metrics: AdmissionMetrics
    private let injectors = InjectorCache()
    private let backgroundEvents: BackgroundEventLimiter
    private let lookupTimeout: Duration
    private let clock: any WallClock
    private let logger: Logger

    /// At most this many background Event creations run at once; more are dropped (and logged).
    static let maximumBackgroundEvents = 256

    /// - Parameters:
    ///   - configuration: the current mesh configuration, e.g. `{ try source.current() }` of a
    ///     `MeshConfigurationSource`; called for every review, so it must be cheap.
    ///   - metricsFactory: where the metrics of `AdmissionMetrics` are registered.
    ///   - lookupTimeout: the time a review may spend on namespace and owner lookups its caches cannot answer (they
    ///     run concurrently); keep it well below the webhook's `timeoutSeconds`.
    ///   - clock: times `lookupTimeout`.
    public init(
        configuration: @escaping @Sendable () throws -> MeshConfiguration,
        namespaces: NamespaceAnnotationLookup,
        owners: OwnerResolver,
        events: EventRecorder,
        metricsFactory: any MetricsFactory,
        logger: Logger,
        lookupTimeout: Duration = .seconds(2),
        clock: any WallClock = SystemWallClock()
    ) {
        self.configuration = configuration
        self.namespaces = namespaces
        self.owners = owners
        self.events = events
        self.metrics = AdmissionMetrics(factory: metricsFactory)
        self.backgroundEvents = BackgroundEventLimiter(limit: Self.maximumBackgroundEvents)
        self.lookupTimeout = lookupTimeout
        self.clock = clock
        self.logger = logger
    }

    /// Reviews one request body, with whatever lookups it needs.
    public func review(_ body: Data) async -> AdmissionOutcome {
        switch begin(body) {
        case .finished(let outcome): outcome
        case .pending(let pending): await complete(pending)
        }
    }

    /// Emits the outcome's Events, one after the other; returns when all were attempted.
    public func emitEvents(of outcome: AdmissionOutcome) async {
        for event in outcome.events {
            await events.record(event.type, reason: event.reason, message: event.message, about: event.object)
        }
    }

    /// Emits the outcome's Events in a task of their own, unless too many are already being emitted.
    func emitEventsInBackground(of outcome: AdmissionOutcome) {
        guard !outcome.events.isEmpty else { return }
        guard backgroundEvents.tryAcquire() else {
            logger.warning(
                "dropping admission events: too many are being recorded",
                metadata: ["events": "\(outcome.events.map(\.reason))"])
            return
        }
        Task {
            await emitEvents(of: outcome)
            backgroundEvents.release()
        }
    }

    // MARK: - Stages

    /// A review that needs a namespace or owner lookup that its cache could not answer.
    struct PendingReview: Sendable {
        fileprivate var review: ParsedReview
        fileprivate var object: JSONValue
        fileprivate var injector: ProxyInjector
        /// Nil until looked up.
        fileprivate var namespaceAnnotations: [String: String]?
        fileprivate var ownerReferences: [OwnerReference]?
        /// `.none` until resolved; `.some(nil)` for a bare pod or an object that is not a pod.
        fileprivate var owner: ResolvedOwner??
    }

    enum Progress: Sendable {
        case finished(AdmissionOutcome)
        case pending(PendingReview)
    }

    /// Everything that needs no I/O: parsing, the configuration, cached lookups and, when they all hit, the decision.
    func begin(_ body: Data) -> Progress {
        guard !body.isEmpty else {
            logger.warning("received an empty admission request")
            return .finished(AdmissionOutcome(statusCode: 200, body: Data()))
        }
        let review: ParsedReview
        do {
            review = try ParsedReview(json: body)
        } catch {
            logger.warning("rejecting a malformed admission request", metadata: ["error": "\(error.message)"])
            return .finished(AdmissionOutcome(statusCode: 400, body: Data((error.message + "\n").utf8)))
        }
        guard review.operation == nil || review.operation == "CREATE", var object = review.object else {
            return .finished(answer(review, patch: nil))
        }
        let injector: ProxyInjector
        do {
            injector = injectors.injector(for: try configuration())
        } catch {
            return .finished(failOpen(review, stage: "reading the mesh configuration", error: error))
        }
        let isPod = review.kind == "Pod"
        if isPod, !review.namespace.isEmpty {
            var metadata = object["metadata"] ?? [:]
            metadata["namespace"] = .string(review.namespace)
            object["metadata"] = metadata
        }
        let ownerReferences = isPod ? Self.ownerReferences(of: object) : nil
        var pending = PendingReview(
            review: review, object: object, injector: injector,
            namespaceAnnotations: namespaces.lookupLocally(review.namespace), ownerReferences: ownerReferences,
            owner: .some(nil))
        if isPod {
            switch owners.resolveLocally(namespace: review.namespace, ownerReferences: ownerReferences) {
            case .resolved(let owner): pending.owner = .some(owner)
            case .needsParent: pending.owner = .none
            }
        }
        guard let annotations = pending.namespaceAnnotations, case .some(let owner) = pending.owner else {
            return .pending(pending)
        }
        return .finished(decide(pending, namespaceAnnotations: annotations, owner: owner))
    }

    /// Does the lookups `begin` could not, within `lookupTimeout`, then decides.
    func complete(_ pending: PendingReview) async -> AdmissionOutcome {
        let review = pending.review
        let deadline = clock.now().addingTimeInterval(lookupTimeout.inSeconds)
        async let resolvedOwner = owner(of: pending, deadline: deadline)
        let annotations: [String: String]
        if let known = pending.namespaceAnnotations {
            annotations = known
        } else {
            do {
                let namespaces = namespaces
                annotations = try await withDeadline(deadline) { try await namespaces.lookup(review.namespace) }
            } catch {
                _ = await resolvedOwner
                return failOpen(review, stage: "reading namespace \(review.namespace.quoted)", error: error)
            }
        }
        return decide(pending, namespaceAnnotations: annotations, owner: await resolvedOwner)
    }

    /// The resolved owner, or nil when resolving it takes past `deadline`.
    private func owner(of pending: PendingReview, deadline: Date) async -> ResolvedOwner? {
        if case .some(let owner) = pending.owner { return owner }
        let (owners, namespace, references) = (owners, pending.review.namespace, pending.ownerReferences)
        do {
            return try await withDeadline(deadline) {
                await owners.resolve(namespace: namespace, ownerReferences: references)
            }
        } catch {
            logger.warning(
                "injecting without the pod's owner: looking it up took too long",
                metadata: [
                    "uid": "\(pending.review.uid)", "namespace": "\(namespace)",
                    "owner": "\(references?.first.map { "\($0.kind)/\($0.name)" } ?? "")", "error": "\(error)",
                ])
            return nil
        }
    }

    /// The result of `operation`, or `LookupTimedOut` once `deadline` passes on `clock`. The operation runs in a
    /// task of its own, cancelled at the deadline, and is not waited for: a lookup that ignores cancellation cannot
    /// hold the review. Everything started here ends by the deadline, so it needs no cancellation of its own.
    private func withDeadline<T: Sendable>(
        _ deadline: Date, _ operation: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let (clock, timeout) = (clock, lookupTimeout)
        return try await withCheckedThrowingContinuation { continuation in
            let race = DeadlineRace(continuation)
            race.attach(
                Task {
                    do {
                        race.decide(.success(try await operation()))
                    } catch {
                        race.decide(.failure(error))
                    }
                })
            race.attach(
                Task {
                    do {
                        try await clock.sleep(until: deadline)
                    } catch {
                        return  // Cancelled: the operation finished first.
                    }
                    race.decide(.failure(LookupTimedOut(timeout: timeout)))
                })
        }
    }

    // MARK: - Decision

    private func decide(
        _ pending: PendingReview, namespaceAnnotations: [String: String], owner: ResolvedOwner?
    ) -> AdmissionOutcome {
        let review = pending.review
        let isPod = review.kind == "Pod"
        let workload =
            isPod ? owner?.owner ?? WorkloadOwner(kind: "pod", name: Self.name(of: pending.object)) : nil
        let result = pending.injector.inject(
            InjectionRequest(
                object: pending.object, kind: review.kind, namespace: review.namespace,
                namespaceAnnotations: namespaceAnnotations, owner: workload, origin: .webhook))
        let report = result.report
        for warning in report.warnings {
            logger.warning(
                "ignoring an annotation",
                metadata: [
                    "namespace": "\(review.namespace)", "kind": "\(review.kind)", "name": "\(report.name)",
                    "annotation": "\(warning.key)", "value": "\(Self.abbreviated(warning.value))",
                    "reason": "\(warning.reason)",
                ])
            metrics.countWarning(namespace: review.namespace, annotation: warning.key)
        }
        metrics.count(
            ownerKind: workload?.kind ?? "", namespace: review.namespace, report: report, patched: result.patch != nil)
        logger.debug(
            "reviewed an object",
            metadata: [
                "uid": "\(review.uid)", "namespace": "\(review.namespace)", "kind": "\(review.kind)",
                "name": "\(report.name)", "owner": "\(workload.map { "\($0.kind)/\($0.name)" } ?? "")",
                "injected": "\(report.injectable && isPod)", "skip-reasons": "\(report.skipReasonText)",
                "patched": "\(result.patch != nil)", "dry-run": "\(review.dryRun)",
            ])
        var outcome = answer(review, patch: result.patch)
        if let owner, !review.dryRun {
            outcome.events = [
                report.injectable
                    ? AdmissionEvent(
                        type: .normal, reason: "Injected", message: "Linkerd sidecar proxy injected",
                        object: owner.reference)
                    : AdmissionEvent(
                        type: .normal, reason: "InjectionSkipped",
                        message: "Linkerd sidecar proxy injection skipped: \(report.skipReasonText)",
                        object: owner.reference)
            ]
        }
        return outcome
    }

    /// Allowed, with the patch when there is one.
    private func answer(_ review: ParsedReview, patch: JSONPatch?) -> AdmissionOutcome {
        AdmissionOutcome(statusCode: 200, body: Self.allowed(review, patch: patch, warning: nil))
    }

    /// Allowed without a patch after an internal failure (see the type's documentation).
    private func failOpen(_ review: ParsedReview, stage: String, error: any Error) -> AdmissionOutcome {
        metrics.errors.increment()
        logger.error(
            "admitting an object without injecting it after an internal error",
            metadata: [
                "uid": "\(review.uid)", "namespace": "\(review.namespace)", "kind": "\(review.kind)",
                "stage": "\(stage)", "error": "\(error)",
            ])
        let warning = "linkerd-proxy-injector did not inject: \(stage) failed"
        return AdmissionOutcome(statusCode: 200, body: Self.allowed(review, patch: nil, warning: warning))
    }

    /// The AdmissionReview answer: the request's `apiVersion`, kind `AdmissionReview` and a response allowing the
    /// object, with the patch (base64) and a warning when given. Written directly: it carries the patch, the
    /// largest part of the answer, and this is the hot path.
    private static func allowed(_ review: ParsedReview, patch: JSONPatch?, warning: String?) -> Data {
        let patchBase64 = patch.map { Data(JSONBytesWriter.write($0)).base64EncodedData() }
        var output: [UInt8] = []
        output.reserveCapacity(192 + (patchBase64?.count ?? 0))
        output.append(contentsOf: #"{"apiVersion":"#.utf8)
        JSONBytesWriter.write(string: review.apiVersion, into: &output)
        output.append(contentsOf: #","kind":"AdmissionReview","response":{"uid":"#.utf8)
        JSONBytesWriter.write(string: review.uid, into: &output)
        output.append(contentsOf: #","allowed":true"#.utf8)
        if let patchBase64 {
            output.append(contentsOf: #","patchType":"JSONPatch","patch":""#.utf8)
            output.append(contentsOf: patchBase64)
            output.append(UInt8(ascii: "\""))
        }
        if let warning {
            output.append(contentsOf: #","warnings":["#.utf8)
            JSONBytesWriter.write(string: warning, into: &output)
            output.append(UInt8(ascii: "]"))
        }
        output.append(contentsOf: "}}".utf8)
        return Data(output)
    }

    /// The longest annotation value logged, in characters: values may be up to 256 KiB, logs should not be.
    static let maximumLoggedValueLength = 200

    /// `value` quoted, cut to `maximumLoggedValueLength` characters with an ellipsis when longer.
    static func abbreviated(_ value: String) -> String {
        guard value.count > maximumLoggedValueLength else { return value.quoted }
        return value.prefix(maximumLoggedValueLength).quoted + "…"
    }

    private static func ownerReferences(of object: JSONValue) -> [OwnerReference]? {
        guard let references = object["metadata"]?["ownerReferences"]?.arrayValue else { return nil }
        return references.map { reference in
            OwnerReference(
                apiVersion: reference["apiVersion"]?.stringValue ?? "", kind: reference["kind"]?.stringValue ?? "",
                name: reference["name"]?.stringValue ?? "", uid: reference["uid"]?.stringValue ?? "")
        }
    }

    private static func name(of object: JSONValue) -> String {
        object["metadata"]?["name"]?.stringValue ?? ""
    }
}

/// The fields of an AdmissionReview request the webhook uses, read from the JSON document.
private struct ParsedReview: Sendable {
    var apiVersion: String
    var uid: String
    /// `request.kind.kind`: `Pod`, `Service`, ...
    var kind: String
    /// `request.namespace`, else the object's `metadata.namespace`, else empty.
    var namespace: String
    var operation: String?
    var dryRun: Bool
    var object: JSONValue?

    /// A body that cannot be reviewed; `message` says why.
    struct Malformed: Error {
        var message: String
    }

    init(json: Data) throws(Malformed) {
        let document: JSONValue
        do {
            document = try JSONBytesParser.parse(json)
        } catch {
            throw Malformed(message: "the body is not valid JSON: \(error)")
        }
        guard case .object(let root) = document else {
            throw Malformed(message: "the body is a JSON \(document.typeName), expected an AdmissionReview object")
        }
        guard let apiVersion = try Self.string(root["apiVersion"], at: "apiVersion") else {
            throw Malformed(message: "apiVersion is missing")
        }
        guard apiVersion == AdmissionReview.v1 || apiVersion == AdmissionReview.v1beta1 else {
            throw Malformed(
                message:
                    "apiVersion \(apiVersion.quoted) is not supported: expected \(AdmissionReview.v1.quoted) or "
                    + AdmissionReview.v1beta1.quoted)
        }
        let kind = try Self.string(root["kind"], at: "kind")
        guard kind == "AdmissionReview" else {
            throw Malformed(
                message: kind.map { "kind \($0.quoted) is not \"AdmissionReview\"" } ?? "kind is missing")
        }
        guard let requestValue = root["request"], requestValue != .null else {
            throw Malformed(message: "request is missing")
        }
        guard case .object(let request) = requestValue else {
            throw Malformed(message: "request is a \(requestValue.typeName), expected an object")
        }
        guard let uid = try Self.string(request["uid"], at: "request.uid"), !uid.isEmpty else {
            throw Malformed(message: "request.uid is missing")
        }
        self.apiVersion = apiVersion
        self.uid = uid
        switch request["kind"] {
        case nil, .null?:
            self.kind = ""
        case .object(let groupVersionKind)?:
            self.kind = try Self.string(groupVersionKind["kind"], at: "request.kind.kind") ?? ""
        case let other?:
            throw Malformed(message: "request.kind is a \(other.typeName), expected an object")
        }
        operation = try Self.string(request["operation"], at: "request.operation")
        switch request["dryRun"] {
        case nil, .null?: dryRun = false
        case .bool(let value)?: dryRun = value
        case let other?: throw Malformed(message: "request.dryRun is a \(other.typeName), expected a boolean")
        }
        switch request["object"] {
        case nil, .null?: object = nil
        case .object(let members)?: object = .object(members)
        case let other?: throw Malformed(message: "request.object is a \(other.typeName), expected an object")
        }
        let objectNamespace = object?["metadata"]?["namespace"]?.stringValue
        let requestNamespace = try Self.string(request["namespace"], at: "request.namespace")
        namespace = requestNamespace.flatMap { $0.isEmpty ? nil : $0 } ?? objectNamespace ?? ""
    }

    /// A string field: nil when absent or null.
    private static func string(_ value: JSONValue?, at path: String) throws(Malformed) -> String? {
        switch value {
        case nil, .null?: return nil
        case .string(let text)?: return text
        case let other?: throw Malformed(message: "\(path) is a \(other.typeName), expected a string")
        }
    }
}

/// The injector for the current configuration, rebuilt only when the configuration changes.
private final class InjectorCache: Sendable {
    private let current = Mutex<ProxyInjector?>(nil)

    func injector(for configuration: MeshConfiguration) -> ProxyInjector {
        if let cached = current.withLock({ $0 }), cached.configuration == configuration {
            return cached
        }
        let injector = ProxyInjector(configuration: configuration)
        current.withLock { $0 = injector }
        return injector
    }
}

/// A lookup that did not answer in time.
struct LookupTimedOut: Error, CustomStringConvertible {
    var timeout: Duration

    var description: String { "no answer within \(timeout)" }
}

/// The waiter of `withDeadline` and the tasks racing to answer it: the first answer resumes the waiter and cancels
/// the tasks; later answers are dropped.
private final class DeadlineRace<T: Sendable>: Sendable {
    private struct State {
        var waiter: CheckedContinuation<T, any Error>?
        var tasks: [Task<Void, Never>] = []
    }

    private let state: Mutex<State>

    init(_ waiter: CheckedContinuation<T, any Error>) {
        state = Mutex(State(waiter: waiter))
    }

    /// Keeps `task` to cancel once the race is decided, or cancels it at once when it already is.
    func attach(_ task: Task<Void, Never>) {
        let decided = state.withLock { state in
            guard state.waiter != nil else { return true }
            state.tasks.append(task)
            return false
        }
        if decided { task.cancel() }
    }

    func decide(_ result: Result<T, any Error>) {
        let (waiter, tasks) = state.withLock { state in
            defer { state = State(waiter: nil) }
            return (state.waiter, state.tasks)
        }
        waiter?.resume(with: result)
        for task in tasks { task.cancel() }
    }
}

/// Counts Event tasks in flight against a limit, so a slow API server cannot pile up unbounded tasks.
private final class BackgroundEventLimiter: Sendable {
    private let limit: Int
    private let running = Mutex(0)

    init(limit: Int) {
        self.limit = limit
    }

    func tryAcquire() -> Bool {
        running.withLock { running in
            guard running < limit else { return false }
            running += 1
            return true
        }
    }

    func release() {
        running.withLock { $0 -= 1 }
    }
}
