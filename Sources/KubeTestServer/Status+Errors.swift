import KubeModel

/// The `Status` bodies the server answers errors with, worded as kube-apiserver words them.
///
/// Every factory returns a `Failure` status whose `code` is the HTTP status code to send.
extension Status {
    /// `pods` for the core group, `deployments.apps` otherwise: how the real server names a resource in messages.
    static func qualifiedName(_ type: ResourceType) -> String {
        type.group.isEmpty ? type.plural : "\(type.plural).\(type.group)"
    }

    private static func details(_ type: ResourceType, name: String) -> Details {
        Details(name: name, group: type.group.isEmpty ? nil : type.group, kind: type.plural)
    }

    static func notFound(_ type: ResourceType, name: String) -> Status {
        .failure(
            code: 404, reason: "NotFound", message: "\(qualifiedName(type)) \"\(name)\" not found",
            details: details(type, name: name))
    }

    static func alreadyExists(_ type: ResourceType, name: String) -> Status {
        .failure(
            code: 409, reason: "AlreadyExists", message: "\(qualifiedName(type)) \"\(name)\" already exists",
            details: details(type, name: name))
    }

    static func conflict(_ type: ResourceType, name: String) -> Status {
        .failure(
            code: 409, reason: "Conflict",
            message:
                "Operation cannot be fulfilled on \(qualifiedName(type)) \"\(name)\": the object has been modified; "
                + "please apply your changes to the latest version and try again",
            details: details(type, name: name))
    }

    /// 422 for one invalid field, e.g. `Pod "" is invalid: metadata.name: Required value: ...`.
    static func invalid(_ type: ResourceType, name: String, field: String, reason: String, message: String) -> Status {
        .failure(
            code: 422, reason: "Invalid", message: "\(type.kind) \"\(name)\" is invalid: \(field): \(message)",
            details: Details(
                name: name, group: type.group.isEmpty ? nil : type.group, kind: type.kind,
                causes: [Cause(reason: reason, message: message, field: field)]))
    }

    /// 422 without a field: a JSON patch that cannot be applied.
    static func unprocessable(_ message: String) -> Status {
        .failure(code: 422, reason: "Invalid", message: message)
    }

    static func badRequest(_ message: String) -> Status {
        .failure(code: 400, reason: "BadRequest", message: message)
    }

    /// The 404 for a path that names no resource.
    static let resourceNotFound = Status.failure(
        code: 404, reason: "NotFound", message: "the server could not find the requested resource", details: Details())

    static let methodNotAllowed = Status.failure(
        code: 405, reason: "MethodNotAllowed",
        message: "the server does not allow this method on the requested resource", details: Details())

    static let unauthorized = Status.failure(code: 401, reason: "Unauthorized", message: "Unauthorized")

    static func expired(_ message: String) -> Status {
        .failure(code: 410, reason: "Expired", message: message)
    }

    static func internalError(_ message: String) -> Status {
        .failure(
            code: 500, reason: "InternalError", message: "Internal error occurred: \(message)",
            details: Details(causes: [Cause(message: message)]))
    }

    static func unsupportedMediaType(_ message: String) -> Status {
        .failure(code: 415, reason: "UnsupportedMediaType", message: message)
    }

    static func requestEntityTooLarge(limit: Int) -> Status {
        .failure(code: 413, reason: "RequestEntityTooLarge", message: "Request entity too large: limit is \(limit)")
    }

    /// The JSON body: the encoded status plus the empty `metadata` the real server always writes.
    var json: JSONValue {
        var value = (try? JSONValue(encoding: self)) ?? .object([:])
        value["metadata"] = .object([:])
        return value
    }

    /// The HTTP status code to answer with; 500 when the status carries none.
    var httpCode: Int {
        code ?? 500
    }
}
