import KubeModel
import LinkerdTestSupport
import NIOSSL

/// A Kubernetes API server for tests, on a real loopback socket, speaking kube-apiserver's wire protocol: the same
/// paths, JSON bodies, `Status` errors, status codes and chunked watch streams, so HTTP clients are tested for real.
///
/// What it serves:
/// - Discovery (`/version`, `/api`, `/apis`, `/apis/{group}`, `/api/v1`, `/apis/{group}/{version}`) and
///   `/healthz`, `/livez`, `/readyz`.
/// - Every type of `ResourceType.builtIn` (and any added with `registerResource`): create, get, list (label and
///   field selectors, `limit`/`continue`), update, patch (JSON patch and JSON merge patch), delete, delete
///   collection, watch (resume, bookmarks, `timeoutSeconds`, selector transitions), `dryRun=All`, and `/status`
///   for pods, deployments, replicasets, statefulsets, daemonsets, jobs, cronjobs and namespaces.
/// - Namespaces: `default` and `kube-system` exist at start; namespaced objects need their namespace; namespaces are
///   always `Active` and labelled `kubernetes.io/metadata.name`.
/// - TokenReview, SelfSubjectAccessReview (computed from `registerServiceAccountToken` and `denyAccess`).
/// - Mutating admission webhooks for pod CREATE, called over HTTPS as kube-apiserver calls them and logged in
///   `admissionLog`: configurations in name order, webhooks in order, each seeing the previous ones' patches; a
///   webhook is called when a rule matches CREATE of `pods` (group "", version `v1`) and its `namespaceSelector`
///   and `objectSelector` match the namespace's and the pod's labels. The review (`admission.k8s.io/v1`) carries
///   a fresh uid, the requesting user, the pod and `dryRun`; the call must succeed within `timeoutSeconds`
///   (default 10) against the `caBundle`, and the response's uid must match. A failed call is skipped under
///   `failurePolicy: Ignore` and rejects the create with 500 `Internal error occurred: failed calling webhook
///   "NAME": ...` under `Fail` (the default); `allowed: false` rejects it with the result's code (at least 400)
///   and `admission webhook "NAME" denied the request: MESSAGE`; a `JSONPatch` patch is applied (one that cannot
///   be applied is a 500 whatever the policy).
/// - Authentication by bearer token or client certificate (`requireAuthentication`), and injected faults.
///
/// What it does NOT model:
/// - Strategic merge patch and server-side apply (415 UnsupportedMediaType); YAML and protobuf bodies (JSON only).
/// - Admission other than mutating webhooks on pod CREATE: no validating webhooks, no admission on UPDATE, DELETE or
///   other resources, no webhook reinvocation, no built-in admission plugins beyond "the namespace must exist".
///   A webhook's `clientConfig.service` is reached only through an address given with `routeService` (no cluster
///   DNS, no Service IPs, no Endpoints).
/// - Authorization: no RBAC; every authenticated (or, without `requireAuthentication`, anonymous) request is
///   allowed. `denyAccess` only changes SelfSubjectAccessReview answers.
/// - Garbage collection, owner-reference cascading, finalizers, `deletionTimestamp` and graceful deletion: deletes
///   are immediate. Deleting a namespace deletes its objects at once (no `Terminating` phase). Delete options and
///   preconditions in a DELETE body are ignored.
/// - Field validation beyond: body type and namespace match the path, a name or `generateName` is given, the name
///   matches the URL on update. Objects are stored as given otherwise (no defaulting, no schema).
/// - `resourceVersion` is one global counter over all types; list `resourceVersion`/`resourceVersionMatch`,
///   `sendInitialEvents` and consistent snapshots are not modelled (a list is always of the latest state; pages after
///   the first show the current objects after the previous page's last key). Field selectors match any JSON path.
/// - Watches have no server-side default timeout; a watch from resourceVersion "" or "0" starts with an ADDED event
///   per existing object (the "get state and start at most recent" semantics); one from a resourceVersion newer than
///   the current one starts from now. The deprecated `/watch/` paths are not served.
/// - No controllers (nothing schedules or runs pods, fills in status, or creates ReplicaSets), no `managedFields`,
///   no API priority and fairness, no HTTP/2, no aggregated discovery, no OpenAPI.
public final class KubeTestServer: Sendable {
    public struct Configuration: Sendable {
        /// HTTPS with a throw-away test CA (`certificateAuthority`); false serves plain HTTP.
        public var tls: Bool = true
        /// When true, requests need a registered client token (`Authorization: Bearer`), a service-account token
        /// valid for the API audience, or a client certificate signed by `certificateAuthority`; else 401. When
        /// false, requests without a known credential are served as `system:anonymous`.
        public var requireAuthentication: Bool = false
        /// When set, watches asked with `allowWatchBookmarks=true` get a BOOKMARK event at this interval.
        public var bookmarkInterval: Duration? = nil
        /// Watch events kept for resuming; resuming from an older resourceVersion gets a 410 Expired ERROR event.
        public var historyLimit: Int = 10_000

        public init() {}
    }

    /// `https://127.0.0.1:PORT` or `http://127.0.0.1:PORT`.
    public let baseURL: String
    public let port: Int
    /// Signs the serving certificate (SANs IP 127.0.0.1, DNS localhost and the in-cluster `kubernetes.default.svc`
    /// names) and the client certificates the server accepts (their subject CN is the user name).
    public let certificateAuthority: TestCertificateAuthority
    let core: ServerCore
    private let http: HTTPServer

    private init(core: ServerCore, http: HTTPServer, certificateAuthority: TestCertificateAuthority) {
        self.core = core
        self.http = http
        self.certificateAuthority = certificateAuthority
        port = http.port
        baseURL = "\(core.configuration.tls ? "https" : "http")://127.0.0.1:\(http.port)"
    }

    /// Starts a server on `127.0.0.1` and a free port, with the namespaces `default` and `kube-system`.
    public static func start(_ configuration: Configuration = .init()) async throws -> KubeTestServer {
        let authority = try TestCertificateAuthority(commonName: "KubeTestServer CA")
        var tls: NIOSSLContext?
        if configuration.tls {
            let serving = try authority.issue(
                commonName: "kube-apiserver",
                dnsNames: [
                    "localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                    "kubernetes.default.svc.cluster.local",
                ],
                ipAddresses: ["127.0.0.1"], clientAuth: false, serverAuth: true)
            tls = try HTTPServer.tlsContext(serving: serving, clientRoots: authority)
        }
        let core = ServerCore(configuration: configuration)
        try core.mutate { (store) throws(Status) in
            for namespace in ["default", "kube-system"] {
                _ = try store.create(.namespaces, namespace: nil, body: ["metadata": ["name": .string(namespace)]])
            }
        }
        let handler = APIHandler(core: core)
        let http = try await HTTPServer.start(tls: tls, maxBodyBytes: APIHandler.maxBodyBytes) { request in
            await handler.handle(request)
        }
        return KubeTestServer(core: core, http: http, certificateAuthority: authority)
    }

    /// The CA certificate (PEM) clients must trust.
    public var caCertificatePEM: String {
        certificateAuthority.certificatePEM
    }

    /// Closes every connection (open watches end abruptly) and stops listening.
    public func shutdown() async throws {
        core.dropWatchConnections()
        await http.shutdown()
    }

    // MARK: - Authentication

    /// Makes `token` authenticate API requests as `user` (groups `system:authenticated`).
    public func acceptClientToken(_ token: String, as user: String) {
        core.withState { $0.authenticator.clientTokens[token] = user }
    }

    public func revokeClientToken(_ token: String) {
        core.withState { $0.authenticator.clientTokens[token] = nil }
    }

    /// The user of each authenticated request so far, in order (tests assert which credential was used).
    public var requestUsers: [String] {
        core.withState { $0.requestUsers }
    }

    /// Registers a token for TokenReview (`POST /apis/authentication.k8s.io/v1/tokenreviews`).
    ///
    /// A review with `spec.audiences` authenticates the token iff it carries at least one of them
    /// (`status.audiences` is the intersection); a review without needs the API server's audience
    /// `https://kubernetes.default.svc`. `audiences: nil` is a legacy token, bound to that audience only. Such a
    /// token also authenticates API requests when it carries the API audience. Unknown tokens get
    /// `authenticated: false` and error "token not found".
    public func registerServiceAccountToken(_ token: String, user: UserInfo, audiences: [String]?) {
        core.withState { $0.authenticator.serviceAccountTokens[token] = .init(user: user, audiences: audiences) }
    }

    /// Makes SelfSubjectAccessReviews for `verb` on `resource` (in `namespace`, or any with nil) answer denied;
    /// `*` matches any verb or resource. Everything else is allowed. Requests themselves are never denied.
    public func denyAccess(verb: String, resource: String, namespace: String?) {
        core.withState {
            $0.authenticator.denials.append(.init(verb: verb, resource: resource, namespace: namespace))
        }
    }

    // MARK: - Service routing

    /// A Service, by namespace and name.
    public struct ServiceKey: Sendable, Hashable {
        public var namespace: String
        public var name: String

        public init(namespace: String, name: String) {
            self.namespace = namespace
            self.name = name
        }
    }

    /// Where calls to a Service go: a host (usually 127.0.0.1) and a port.
    public struct ServiceRoute: Sendable, Hashable {
        public var host: String
        public var port: Int

        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }
    }

    /// Sends webhook calls for the Service `namespace/name` to `host:port`, as if the Service's endpoint were there;
    /// the certificate is still verified for `<name>.<namespace>.svc`. `nil` removes the route (calls then fail as
    /// to a Service without endpoints).
    public func routeService(namespace: String, name: String, to route: ServiceRoute?) {
        core.withState { $0.serviceRoutes[ServiceKey(namespace: namespace, name: name)] = route }
    }

    // MARK: - Direct store access

    /// Serves another resource type (a custom resource), optionally with a `/status` subresource. Its list items
    /// keep `apiVersion` and `kind`, as the real server's custom resources do.
    public func registerResource(_ type: ResourceType, statusSubresource: Bool = false) {
        core.withState {
            $0.store.register(
                ResourceDefinition(
                    type: type, hasStatusSubresource: statusSubresource, isBuiltIn: false, isCreateOnly: false))
        }
    }

    /// Creates or replaces an object directly: no admission, no resourceVersion precondition, `status` as given.
    /// Bumps the resourceVersion and notifies watches. Throws `KubeError` for a missing namespace, an unknown type,
    /// or a body without a name (or a namespaced one without a namespace).
    @discardableResult
    public func put(_ resource: ResourceType, _ object: JSONValue) throws -> JSONValue {
        do throws(Status) {
            return try core.mutate { (store) throws(Status) in try store.put(resource, body: object) }
        } catch {
            throw KubeError(statusCode: error.httpCode, status: error)
        }
    }

    @discardableResult
    public func put<R: KubeResource>(_ object: R) throws -> R {
        try put(R.resourceType, JSONValue(encoding: object)).decode(as: R.self)
    }

    public func object(_ resource: ResourceType, namespace: String?, name: String) -> JSONValue? {
        core.read { $0.object(resource, namespace: namespace, name: name) }
    }

    /// The stored objects of a type, sorted by namespace and name; a nil namespace means all.
    public func objects(_ resource: ResourceType, namespace: String? = nil) -> [JSONValue] {
        core.read { $0.objects(resource, namespace: namespace) }
    }

    /// Deletes an object directly (a namespace with its contents), notifying watches; nothing when it is missing.
    public func remove(_ resource: ResourceType, namespace: String?, name: String) {
        _ = try? core.mutate { (store) throws(Status) in try store.delete(resource, namespace: namespace, name: name) }
    }

    /// The global resourceVersion: that of the latest change.
    public var currentResourceVersion: Int {
        core.read { $0.resourceVersion }
    }

    // MARK: - Faults

    /// Sends every open watch an ERROR event with a 410 Status (reason "Expired", message "too old resource
    /// version: ...") and ends it, and forgets history so resuming from any earlier resourceVersion, or continuing
    /// a list begun earlier, also gets 410.
    public func expireWatches() {
        core.expireWatches()
    }

    /// Closes the TCP connections of all open watches abruptly (no terminating chunk).
    public func dropWatchConnections() {
        core.dropWatchConnections()
    }

    /// Open and future watches stop sending anything (no events, no bookmarks, not even their end) until
    /// `resumeWatches()`; their connections stay open and new watches still get their response headers.
    /// Events that happen meanwhile are delivered after resuming.
    public func stallWatches() {
        core.setWatchesStalled(true)
    }

    public func resumeWatches() {
        core.setWatchesStalled(false)
    }

    /// Watches that still receive events.
    public var openWatchCount: Int {
        core.openWatchCount
    }

    /// The next `count` requests matching `method` (nil: any) and `pathPrefix` (nil: any) get `fault` instead of
    /// normal handling (`delay` delays, then handles normally). Faults apply before authentication is enforced, and
    /// the earliest injected matching fault applies first.
    public func injectFault(_ fault: Fault, method: String? = nil, pathPrefix: String? = nil, count: Int = 1) {
        guard count > 0 else { return }
        core.withState {
            $0.faults.append(FaultRule(fault: fault, method: method, pathPrefix: pathPrefix, remaining: count))
        }
    }

    /// Every request received, in order.
    public var requestLog: [RequestRecord] {
        core.withState { $0.requestLog }
    }

    /// Every mutating webhook call, in order.
    public var admissionLog: [AdmissionRecord] {
        core.withState { $0.admissionLog }
    }
}
