import Foundation
import KubeModel
import NIOHTTP1

/// Serves one API request: authentication, the request log, injected faults, routing, and the Kubernetes verbs.
///
/// Order of handling: authenticate and log; apply an injected fault if one matches; 401 when authentication
/// failed; 413 for an over-long body; then route. Every error is a `Status` body with the matching HTTP code.
struct APIHandler: Sendable {
    /// The request body limit, as kube-apiserver's (3 MiB).
    static let maxBodyBytes = 3 * 1024 * 1024

    let core: ServerCore

    func handle(_ request: HTTPRequest) async -> HTTPReply {
        let outcome = core.authenticateAndRecord(request)
        if let fault = core.withState({ $0.takeFault(method: request.method.rawValue, path: request.path) }) {
            switch fault {
            case .status(let code, let reason, let message, let retryAfterSeconds):
                var status = Status.failure(code: code, reason: reason, message: message)
                var headers = HTTPHeaders()
                if let retryAfterSeconds {
                    status.details = Status.Details(retryAfterSeconds: retryAfterSeconds)
                    headers.add(name: "Retry-After", value: String(retryAfterSeconds))
                }
                return Self.reply(code, status.json, headers: headers)
            case .garbageBody:
                return .complete(
                    status: .ok, headers: Self.headers(), body: Data("{\"kind\": \"Status\", <<<not JSON".utf8))
            case .closeConnection:
                return .closeConnection
            case .delay(let duration):
                try? await Task.sleep(for: duration)
            }
        }
        let user: UserInfo
        switch outcome {
        case .authenticated(let info): user = info
        case .anonymous: user = Authenticator.anonymous
        case .rejected: return Self.reply(Status.unauthorized)
        }
        guard !request.bodyTooLarge else {
            return Self.reply(Status.requestEntityTooLarge(limit: Self.maxBodyBytes))
        }
        do throws(Status) {
            return try await serve(request, user: user)
        } catch {
            return Self.reply(error)
        }
    }

    private func serve(_ request: HTTPRequest, user: UserInfo) async throws(Status) -> HTTPReply {
        let definitions = core.read { Array($0.definitions.values) }
        let route = try Route(path: request.path, definitions: definitions)
        let method = request.method
        switch route {
        case .version, .health, .coreVersions, .groupList, .group, .resourceList:
            guard method == .GET else { throw Status.methodNotAllowed }
            return try discovery(route, request: request, definitions: definitions)
        case .collection(let definition, let namespace):
            if definition.isCreateOnly {
                guard method == .POST else { throw Status.methodNotAllowed }
                return try review(definition, request: request)
            }
            switch method {
            case .GET:
                let watch = ["true", "1"].contains(request.query["watch"]?.lowercased())
                return watch
                    ? try self.watch(definition, namespace: namespace, request: request)
                    : try list(definition, namespace: namespace, request: request)
            case .POST:
                guard namespace != nil || !definition.type.namespaced else { throw Status.methodNotAllowed }
                return try await create(definition, namespace: namespace, request: request, user: user)
            case .DELETE:
                return try deleteCollection(definition, namespace: namespace, request: request)
            default:
                throw Status.methodNotAllowed
            }
        case .object(let definition, let namespace, let name, let subresource):
            guard !definition.isCreateOnly else { throw Status.methodNotAllowed }
            if let subresource, subresource != "status" || !definition.hasStatusSubresource {
                throw Status.resourceNotFound
            }
            let type = definition.type
            let dryRun = try Self.dryRun(request)
            switch method {
            case .GET:
                guard let object = core.read({ $0.object(type, namespace: namespace, name: name) }) else {
                    throw Status.notFound(type, name: name)
                }
                return Self.reply(200, object)
            case .PUT:
                let body = try Self.jsonBody(request)
                let updated = try core.mutate(dryRun: dryRun) { (store) throws(Status) in
                    try store.update(type, namespace: namespace, name: name, body: body, subresource: subresource)
                }
                return Self.reply(200, updated)
            case .PATCH:
                let apply = try Self.patchFunction(request)
                let patched = try core.mutate(dryRun: dryRun) { (store) throws(Status) in
                    try store.patch(type, namespace: namespace, name: name, subresource: subresource, apply: apply)
                }
                return Self.reply(200, patched)
            case .DELETE:
                guard subresource == nil else { throw Status.methodNotAllowed }
                let deleted = try core.mutate(dryRun: dryRun) { (store) throws(Status) in
                    try store.delete(type, namespace: namespace, name: name)
                }
                return Self.reply(200, deleted)
            default:
                throw Status.methodNotAllowed
            }
        }
    }

    // MARK: - Verbs

    private func discovery(_ route: Route, request: HTTPRequest, definitions: [ResourceDefinition]) throws(Status)
        -> HTTPReply
    {
        switch route {
        case .version:
            return Self.reply(200, Discovery.version)
        case .health:
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
            return .complete(status: .ok, headers: headers, body: Data("ok".utf8))
        case .coreVersions:
            let host = request.headers.first(name: "host") ?? "127.0.0.1"
            return Self.reply(200, Discovery.coreVersions(serverAddress: host))
        case .groupList:
            return Self.reply(200, Discovery.groupList(definitions))
        case .group(let name):
            guard let group = Discovery.group(name, definitions) else { throw Status.resourceNotFound }
            return Self.reply(200, group)
        case .resourceList(let group, let version):
            guard let list = Discovery.resourceList(group: group, version: version, definitions) else {
                throw Status.resourceNotFound
            }
            return Self.reply(200, list)
        case .collection, .object:
            throw Status.resourceNotFound
        }
    }

    private func list(_ definition: ResourceDefinition, namespace: String?, request: HTTPRequest) throws(Status)
        -> HTTPReply
    {
        let (labels, fields) = try Self.selectors(request)
        var limit: Int?
        if let text = request.query["limit"], !text.isEmpty {
            guard let value = Int(text), value >= 0 else {
                throw Status.badRequest("limit: Invalid value: \"\(text)\": must be a non-negative integer")
            }
            limit = value
        }
        let continueToken = request.query["continue"].flatMap { $0.isEmpty ? nil : $0 }
        let page = try core.read { (store) throws(Status) in
            try store.list(
                definition.type, namespace: namespace, labels: labels, fields: fields, limit: limit,
                continueToken: continueToken)
        }
        var metadata: [String: JSONValue] = ["resourceVersion": .string(String(page.resourceVersion))]
        if let token = page.continueToken {
            metadata["continue"] = .string(token)
        }
        if let remaining = page.remainingItemCount {
            metadata["remainingItemCount"] = .integer(Int64(remaining))
        }
        return Self.reply(200, Self.listDocument(definition, items: page.items, metadata: metadata))
    }

    private func watch(_ definition: ResourceDefinition, namespace: String?, request: HTTPRequest) throws(Status)
        -> HTTPReply
    {
        let (labels, fields) = try Self.selectors(request)
        var from: Int?
        if let text = request.query["resourceVersion"], !text.isEmpty, text != "0" {
            guard let value = Int(text), value >= 0 else {
                throw Status.badRequest("resourceVersion: Invalid value: \"\(text)\": must be a resource version")
            }
            from = value
        }
        var timeout: Duration?
        if let text = request.query["timeoutSeconds"], !text.isEmpty {
            guard let seconds = Int(text), seconds >= 0 else {
                throw Status.badRequest("timeoutSeconds: Invalid value: \"\(text)\": must be a non-negative integer")
            }
            timeout = seconds > 0 ? .seconds(seconds) : nil
        }
        let bookmarks = ["true", "1"].contains(request.query["allowWatchBookmarks"]?.lowercased())
        let filter = WatchFilter(resource: definition.id, namespace: namespace, labels: labels, fields: fields)
        let stream = core.openWatch(
            type: definition.type, filter: filter, from: from, bookmarks: bookmarks, timeout: timeout)
        var headers = Self.headers()
        headers.add(name: "Transfer-Encoding", value: "chunked")
        return .stream(status: .ok, headers: headers, body: stream)
    }

    private func create(_ definition: ResourceDefinition, namespace: String?, request: HTTPRequest, user: UserInfo)
        async throws(Status) -> HTTPReply
    {
        let type = definition.type
        let body = try Self.jsonBody(request)
        let dryRun = try Self.dryRun(request)
        var object = body
        if definition.id == ResourceID(.pods), let namespace {
            let validated = try core.read { (store) throws(Status) in
                try store.validateCreate(type, namespace: namespace, body: body)
            }
            object = try await PodAdmission(core: core).admit(
                pod: validated, namespace: namespace, user: user, dryRun: dryRun)
        }
        let created = try core.mutate(dryRun: dryRun) { [object] (store) throws(Status) in
            try store.create(type, namespace: namespace, body: object)
        }
        return Self.reply(201, created)
    }

    private func deleteCollection(_ definition: ResourceDefinition, namespace: String?, request: HTTPRequest)
        throws(Status) -> HTTPReply
    {
        let (labels, fields) = try Self.selectors(request)
        let dryRun = try Self.dryRun(request)
        let (deleted, resourceVersion) = try core.mutate(dryRun: dryRun) { (store) throws(Status) in
            let deleted = try store.deleteCollection(
                definition.type, namespace: namespace, labels: labels, fields: fields)
            return (deleted, store.resourceVersion)
        }
        let metadata: [String: JSONValue] = ["resourceVersion": .string(String(resourceVersion))]
        return Self.reply(200, Self.listDocument(definition, items: deleted, metadata: metadata))
    }

    /// TokenReview and SelfSubjectAccessReview: computed, never stored, answered 201 with the status filled in.
    private func review(_ definition: ResourceDefinition, request: HTTPRequest) throws(Status) -> HTTPReply {
        var body = try Self.jsonBody(request)
        if body.objectValue != nil, body["metadata"] == nil {
            body["metadata"] = .object([:])
        }
        var answer: JSONValue
        if definition.id == ResourceID(.tokenReviews) {
            guard let review = try? body.decode(as: TokenReview.self) else {
                throw Status.badRequest("the body of the request is not a TokenReview")
            }
            answer = Self.encode(core.withState { $0.authenticator.review(review) })
        } else {
            guard let review = try? body.decode(as: SelfSubjectAccessReview.self) else {
                throw Status.badRequest("the body of the request is not a SelfSubjectAccessReview")
            }
            answer = Self.encode(core.withState { $0.authenticator.review(review) })
        }
        answer["apiVersion"] = .string(definition.type.apiVersion)
        answer["kind"] = .string(definition.type.kind)
        answer["metadata"] = ["creationTimestamp": nil]
        return Self.reply(201, answer)
    }

    // MARK: - Request parsing

    private static func jsonBody(_ request: HTTPRequest) throws(Status) -> JSONValue {
        if let mediaType = request.mediaType, !["", "application/json", "*/*"].contains(mediaType) {
            throw Status.unsupportedMediaType(
                "the body of the request was in an unknown format - accepted media types include: application/json "
                    + "(KubeTestServer models JSON only, not \(mediaType))")
        }
        guard !request.body.isEmpty else { throw Status.badRequest("the request body is empty") }
        guard let value = try? JSONValue(json: request.body) else {
            throw Status.badRequest("the body of the request is not valid JSON")
        }
        return value
    }

    /// Maps the stored object to the patched one, by the request's patch content type.
    private static func patchFunction(_ request: HTTPRequest) throws(Status) -> (JSONValue) throws(Status) -> JSONValue
    {
        switch request.mediaType {
        case "application/json-patch+json":
            guard let patch = try? JSONDecoder().decode(JSONPatch.self, from: request.body) else {
                throw Status.badRequest("the body of the request is not a JSON patch (a list of operations)")
            }
            return { (document) throws(Status) in
                do {
                    return try patch.apply(to: document)
                } catch {
                    throw Status.unprocessable("\(error)")
                }
            }
        case "application/merge-patch+json":
            guard let patch = try? JSONValue(json: request.body) else {
                throw Status.badRequest("the body of the request is not valid JSON")
            }
            return { JSONMergePatch.apply(patch, to: $0) }
        case "application/strategic-merge-patch+json":
            throw Status.unsupportedMediaType(
                "KubeTestServer does not model strategic merge patch; accepted patch types: "
                    + "application/json-patch+json, application/merge-patch+json")
        case "application/apply-patch+yaml":
            throw Status.unsupportedMediaType(
                "KubeTestServer does not model server-side apply; accepted patch types: "
                    + "application/json-patch+json, application/merge-patch+json")
        default:
            throw Status.unsupportedMediaType(
                "the body of the request was in an unknown format - accepted media types include: "
                    + "application/json-patch+json, application/merge-patch+json")
        }
    }

    private static func selectors(_ request: HTTPRequest) throws(Status) -> (LabelQuery?, FieldQuery?) {
        var labels: LabelQuery?
        var fields: FieldQuery?
        do {
            if let text = request.query["labelSelector"], !text.isEmpty {
                labels = try LabelQuery(parsing: text)
            }
            if let text = request.query["fieldSelector"], !text.isEmpty {
                fields = try FieldQuery(parsing: text)
            }
        } catch {
            throw Status.badRequest("\(error)")
        }
        return (labels, fields)
    }

    /// `dryRun=All` makes a change that is validated (and admitted) but not stored.
    private static func dryRun(_ request: HTTPRequest) throws(Status) -> Bool {
        switch request.query["dryRun"] {
        case nil, "": return false
        case "All": return true
        case let other?:
            throw Status.badRequest("dryRun: Unsupported value: \"\(other)\": supported values: \"All\"")
        }
    }

    // MARK: - Responses

    /// `{Kind}List` with the items as the real server writes them (built-in types' items without type meta).
    private static func listDocument(
        _ definition: ResourceDefinition, items: [JSONValue], metadata: [String: JSONValue]
    )
        -> JSONValue
    {
        let listed = items.map { item in
            guard definition.isBuiltIn else { return item }
            var stripped = item
            stripped["apiVersion"] = nil
            stripped["kind"] = nil
            return stripped
        }
        return [
            "kind": .string("\(definition.type.kind)List"),
            "apiVersion": .string(definition.type.apiVersion),
            "metadata": .object(metadata),
            "items": .array(listed),
        ]
    }

    private static func encode(_ value: some Encodable) -> JSONValue {
        (try? JSONValue(encoding: value)) ?? .object([:])
    }

    private static func headers() -> HTTPHeaders {
        ["Content-Type": "application/json", "Cache-Control": "no-cache, private"]
    }

    static func reply(_ code: Int, _ body: JSONValue, headers extra: HTTPHeaders = [:]) -> HTTPReply {
        var headers = headers()
        headers.add(contentsOf: extra)
        return .complete(
            status: HTTPResponseStatus(statusCode: code), headers: headers,
            body: (try? body.jsonData()) ?? Data("null".utf8))
    }

    static func reply(_ status: Status) -> HTTPReply {
        reply(status.httpCode, status.json)
    }
}
