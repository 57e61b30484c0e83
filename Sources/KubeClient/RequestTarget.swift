import KubeModel

/// The path and query of one API request, built from a resource type and options with every segment and value
/// percent-encoded.
struct RequestTarget: Hashable, Sendable {
    /// The URL path, starting with `/api` or `/apis`.
    var path: String
    /// Query parameters in the order they are sent.
    var query: [QueryItem]

    struct QueryItem: Hashable, Sendable {
        var name: String
        var value: String
    }

    init(path: String, query: [QueryItem] = []) {
        self.path = path
        self.query = query
    }

    /// The target of a single object, or of one of its subresources.
    ///
    /// - Throws: `KubeError` code `.configuration` when the name is empty, or the resource is namespaced and
    ///   `namespace` is nil or empty.
    static func object(
        _ resource: ResourceType, namespace: String?, name: String, subresource: String? = nil
    ) throws(KubeError) -> RequestTarget {
        guard !name.isEmpty else {
            throw KubeError(code: .configuration, message: "a \(resource.kind) name is required, but it is empty")
        }
        return RequestTarget(
            path: resource.path(
                namespace: try scope(resource, namespace: namespace, action: "address a \(resource.kind) by name"),
                name: percentEncoded(name),
                subresource: subresource.map(percentEncoded)))
    }

    /// The target of creating an object: its collection, or with `subresource` (such as `eviction`) that
    /// subresource of the object `name`.
    ///
    /// - Throws: `KubeError` code `.configuration` when the resource is namespaced and `namespace` is nil or empty, or
    ///   a subresource is given without a name.
    static func creation(
        _ resource: ResourceType, namespace: String?, name: String?, subresource: String?
    ) throws(KubeError) -> RequestTarget {
        guard let subresource else {
            let action = "create a \(resource.kind)"
            return RequestTarget(
                path: resource.path(namespace: try scope(resource, namespace: namespace, action: action)))
        }
        guard let name, !name.isEmpty else {
            throw KubeError(
                code: .configuration,
                message: "creating the \(subresource) subresource of a \(resource.kind) requires the object's "
                    + "metadata.name to name the \(resource.kind)")
        }
        return try object(resource, namespace: namespace, name: name, subresource: subresource)
    }

    /// The target of a list; a nil namespace lists a namespaced resource across all namespaces.
    static func list(_ resource: ResourceType, namespace: String?, options: ListOptions) -> RequestTarget {
        var query: [QueryItem] = []
        query.append(ifPresent: "labelSelector", options.labelSelector)
        query.append(ifPresent: "fieldSelector", options.fieldSelector)
        query.append(ifPresent: "limit", options.limit.map(String.init))
        query.append(ifPresent: "continue", options.continueToken)
        query.append(ifPresent: "resourceVersion", options.resourceVersion)
        return RequestTarget(path: resource.path(namespace: namespace.map(percentEncoded)), query: query)
    }

    /// The target of a watch; a nil namespace watches a namespaced resource across all namespaces.
    static func watch(_ resource: ResourceType, namespace: String?, options: WatchOptions) -> RequestTarget {
        var query = [QueryItem(name: "watch", value: "true")]
        if options.allowWatchBookmarks {
            query.append(QueryItem(name: "allowWatchBookmarks", value: "true"))
        }
        query.append(ifPresent: "resourceVersion", options.resourceVersion)
        query.append(ifPresent: "labelSelector", options.labelSelector)
        query.append(ifPresent: "fieldSelector", options.fieldSelector)
        query.append(ifPresent: "timeoutSeconds", options.timeoutSeconds.map(String.init))
        return RequestTarget(path: resource.path(namespace: namespace.map(percentEncoded)), query: query)
    }

    /// The path followed by `?name=value&...` when there is a query.
    var pathAndQuery: String {
        guard !query.isEmpty else {
            return path
        }
        return path + "?"
            + query.map { "\(Self.percentEncoded($0.name))=\(Self.percentEncoded($0.value))" }
            .joined(separator: "&")
    }

    /// `text` with every byte other than the RFC 3986 unreserved characters (`A-Z a-z 0-9 - . _ ~`) percent-encoded,
    /// so that it is safe as a path segment or a query value.
    static func percentEncoded(_ text: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                bytes.append(byte)
            default:
                bytes += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]]
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The encoded namespace segment for an object-level request: required for namespaced resources, ignored for
    /// cluster-scoped ones.
    private static func scope(
        _ resource: ResourceType, namespace: String?, action: String
    ) throws(KubeError) -> String? {
        guard resource.namespaced else {
            return nil
        }
        guard let namespace, !namespace.isEmpty else {
            throw KubeError(
                code: .configuration, message: "a namespace is required to \(action) (\(resource) is namespaced)")
        }
        return percentEncoded(namespace)
    }
}

extension [RequestTarget.QueryItem] {
    fileprivate mutating func append(ifPresent name: String, _ value: String?) {
        if let value, !value.isEmpty {
            append(RequestTarget.QueryItem(name: name, value: value))
        }
    }
}
