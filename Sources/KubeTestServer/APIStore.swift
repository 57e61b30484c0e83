import Foundation
import KubeModel

/// The server's object store: objects by resource type and key, one global resourceVersion counter, and the bounded
/// event history watches resume from. A value type without I/O; `ServerCore` guards one with a lock, and a dry run is
/// a mutation of a copy that is thrown away.
///
/// Contracts:
/// - Every committed change bumps `resourceVersion` by one and records one event per object changed (deleting a
///   namespace first deletes every object in it, one event each). `takeEvents()` hands the new events out once.
/// - An update or patch that changes nothing is a no-op: no new resourceVersion, no event (as in the real server).
/// - Stored objects always carry `apiVersion`, `kind` and the server-managed metadata: `uid`, `creationTimestamp`,
///   `resourceVersion`, `generation` (1 on create, +1 whenever anything but metadata and status changes), and for
///   namespaced types `namespace`. Clients cannot change these.
/// - Resuming a watch from resourceVersion `r` is possible iff `r >= compactedRevision`; `history` holds every event
///   after `compactedRevision`, at most `historyLimit` of them.
/// - Errors are `Status` values worded as kube-apiserver words them; a throwing call changes nothing.
struct APIStore: Sendable {
    /// One change, as watches see it.
    struct Event: Sendable {
        enum Kind: String, Sendable {
            case added = "ADDED"
            case modified = "MODIFIED"
            case deleted = "DELETED"
        }

        var kind: Kind
        var resource: ResourceID
        /// The object after the change; for a deletion, its last state with the deletion's resourceVersion.
        var object: JSONValue
        /// The object before the change; nil for an addition.
        var previous: JSONValue?
        var resourceVersion: Int
    }

    /// One page of a list.
    struct ListPage: Sendable {
        var items: [JSONValue]
        /// The resourceVersion the list is as of: the current one, or the first page's when continuing.
        var resourceVersion: Int
        var continueToken: String?
        /// Objects after this page; nil on the last page and whenever a selector was given (as in the real server).
        var remainingItemCount: Int?
    }

    private(set) var resourceVersion = 0
    private(set) var compactedRevision = 0
    private(set) var history: [Event] = []
    private(set) var definitions: [ResourceID: ResourceDefinition] = [:]
    let historyLimit: Int
    private var pendingEvents: [Event] = []
    private var objects: [ResourceID: [ObjectKey: JSONValue]] = [:]

    init(historyLimit: Int, definitions: [ResourceDefinition] = ResourceDefinition.builtIn) {
        self.historyLimit = max(historyLimit, 1)
        for definition in definitions {
            register(definition)
        }
    }

    // MARK: - Resource types

    /// Serves a resource type (replacing an earlier definition of the same group and plural).
    mutating func register(_ definition: ResourceDefinition) {
        definitions[definition.id] = definition
    }

    /// The definition of a served type; 404 when the type (or that version of it) is not served.
    func definition(_ type: ResourceType) throws(Status) -> ResourceDefinition {
        guard let definition = definitions[ResourceID(type)], definition.type.version == type.version else {
            throw Status.resourceNotFound
        }
        return definition
    }

    // MARK: - Reading

    func object(_ type: ResourceType, namespace: String?, name: String) -> JSONValue? {
        objects[ResourceID(type)]?[key(type, namespace: namespace, name: name)]
    }

    /// The objects of a type, sorted by namespace and name; a nil namespace means all of them.
    func objects(_ type: ResourceType, namespace: String? = nil) -> [JSONValue] {
        (objects[ResourceID(type)] ?? [:])
            .filter { key, _ in namespace == nil || key.namespace == namespace }
            .sorted { $0.key < $1.key }
            .map(\.value)
    }

    /// A page of the objects matching the selectors, in namespace/name order.
    ///
    /// `continueToken` is the opaque token of the previous page: base64 of the page's snapshot resourceVersion and
    /// last key. Pages after the first show the current objects after that key, not a snapshot. A token older than
    /// `compactedRevision` is 410 Expired; an unreadable one is 400.
    func list(
        _ type: ResourceType, namespace: String?, labels: LabelQuery?, fields: FieldQuery?, limit: Int?,
        continueToken: String?
    ) throws(Status) -> ListPage {
        _ = try definition(type)
        let start = try continueToken.map { (token) throws(Status) in try ContinueToken(decoding: token) }
        if let start, start.resourceVersion < compactedRevision {
            throw Status.expired(
                "The provided continue parameter is too old to display a consistent list result. "
                    + "You can start a new list without the continue parameter.")
        }
        let filter = WatchFilter(resource: ResourceID(type), namespace: namespace, labels: labels, fields: fields)
        let matching = (objects[ResourceID(type)] ?? [:])
            .filter { key, object in
                (start.map { key > $0.lastKey } ?? true) && filter.selects(object)
            }
            .sorted { $0.key < $1.key }
        let snapshot = start?.resourceVersion ?? resourceVersion
        guard let limit, limit > 0, matching.count > limit else {
            return ListPage(items: matching.map(\.value), resourceVersion: snapshot)
        }
        let page = matching.prefix(limit)
        let hasSelectors = !(labels?.requirements.isEmpty ?? true) || !(fields?.requirements.isEmpty ?? true)
        return ListPage(
            items: page.map(\.value),
            resourceVersion: snapshot,
            continueToken: ContinueToken(resourceVersion: snapshot, lastKey: page.last!.key).encoded,
            remainingItemCount: hasSelectors ? nil : matching.count - limit
        )
    }

    /// The current objects a watch starting "now" announces as ADDED, in namespace/name order.
    func snapshot(_ filter: WatchFilter) -> [JSONValue] {
        (objects[filter.resource] ?? [:])
            .filter { filter.selects($0.value) }
            .sorted { $0.key < $1.key }
            .map(\.value)
    }

    /// The recorded events after `resourceVersion`; 410 Expired when some of them are no longer retained.
    func events(after resourceVersion: Int) throws(Status) -> [Event] {
        guard resourceVersion >= compactedRevision else {
            throw Status.expired("too old resource version: \(resourceVersion) (\(compactedRevision))")
        }
        return history.filter { $0.resourceVersion > resourceVersion }
    }

    // MARK: - Writing

    /// Checks a create request's body and fills in `apiVersion`, `kind` and the namespace; 404 when the namespace
    /// does not exist. The server runs admission on the result before `create`.
    func validateCreate(_ type: ResourceType, namespace: String?, body: JSONValue) throws(Status) -> JSONValue {
        let definition = try definition(type)
        let object = try prepare(definition, namespace: namespace, body: body)
        try requireNamespace(of: object, definition)
        return object
    }

    /// Creates an object. Resolves `generateName`; 422 Invalid without a name, 409 AlreadyExists for a taken one,
    /// 404 for a missing namespace, 400 for a body of the wrong type or namespace.
    mutating func create(_ type: ResourceType, namespace: String?, body: JSONValue) throws(Status) -> JSONValue {
        let definition = try definition(type)
        var object = try prepare(definition, namespace: namespace, body: body)
        try requireNamespace(of: object, definition)
        var name = object.objectName
        if name.isEmpty {
            guard let prefix = object.value(atPath: "metadata.generateName")?.stringValue, !prefix.isEmpty else {
                throw Status.invalid(
                    type, name: "", field: "metadata.name", reason: "FieldValueRequired",
                    message: "Required value: name or generateName is required")
            }
            repeat {
                name = prefix + Self.randomSuffix()
            } while self.object(type, namespace: object.objectNamespace, name: name) != nil
            object = object.settingMetadata("name", .string(name))
        }
        let key = key(type, namespace: object.objectNamespace, name: name)
        guard objects[definition.id]?[key] == nil else {
            throw Status.alreadyExists(type, name: name)
        }
        return insert(definition, key: key, object: object)
    }

    /// Creates or unconditionally replaces an object (test setup): no resourceVersion precondition, `status` taken
    /// as given, always a new resourceVersion and an event. Same validation as `create`.
    mutating func put(_ type: ResourceType, body: JSONValue) throws(Status) -> JSONValue {
        let definition = try definition(type)
        let object = try prepare(definition, namespace: nil, body: body)
        if let existing = self.object(type, namespace: object.objectNamespace, name: object.objectName) {
            return commit(
                definition, existing: existing, updated: merged(existing: existing, updated: object), always: true)
        }
        return try create(type, namespace: nil, body: object)
    }

    /// A PUT. A non-empty `metadata.resourceVersion` in the body must equal the stored one (else 409 Conflict).
    /// With a status subresource, an update of the object keeps the stored status and one of `status` changes
    /// nothing else; `/status` of a type without one is 404.
    mutating func update(
        _ type: ResourceType, namespace: String?, name: String, body: JSONValue, subresource: String?
    ) throws(Status) -> JSONValue {
        let definition = try definition(type)
        var object = try prepare(definition, namespace: namespace, body: body)
        if object.objectName.isEmpty {
            object = object.settingMetadata("name", .string(name))
        }
        guard object.objectName == name else {
            throw Status.badRequest(
                "the name of the object (\(object.objectName)) does not match the name on the URL (\(name))")
        }
        guard let existing = self.object(type, namespace: namespace, name: name) else {
            throw Status.notFound(type, name: name)
        }
        return try replace(definition, existing: existing, with: object, subresource: subresource)
    }

    /// A PATCH: `apply` maps the stored object to the patched one, which is then stored as by `update` (a patch that
    /// sets a different `metadata.resourceVersion` is a 409 Conflict).
    mutating func patch(
        _ type: ResourceType, namespace: String?, name: String, subresource: String?,
        apply: (JSONValue) throws(Status) -> JSONValue
    ) throws(Status) -> JSONValue {
        let definition = try definition(type)
        guard let existing = self.object(type, namespace: namespace, name: name) else {
            throw Status.notFound(type, name: name)
        }
        let patched = try apply(existing)
        guard patched.objectValue != nil else {
            throw Status.unprocessable("the patched object is a \(patched.typeName), not an object")
        }
        let object = try prepare(definition, namespace: namespace, body: patched)
        guard object.objectName == name else {
            throw Status.badRequest(
                "the name of the object (\(object.objectName)) does not match the name on the URL (\(name))")
        }
        return try replace(definition, existing: existing, with: object, subresource: subresource)
    }

    /// Deletes an object and returns its last state with the deletion's resourceVersion; 404 when missing.
    /// Deleting a namespace first deletes every object in it (no Terminating phase, no finalizers).
    mutating func delete(_ type: ResourceType, namespace: String?, name: String) throws(Status) -> JSONValue {
        let definition = try definition(type)
        let key = key(type, namespace: namespace, name: name)
        guard objects[definition.id]?[key] != nil else {
            throw Status.notFound(type, name: name)
        }
        if definition.id == ResourceID(.namespaces) {
            for namespaced in definitions.values.filter(\.type.namespaced) {
                let contents = (objects[namespaced.id] ?? [:]).keys.filter { $0.namespace == name }.sorted()
                for contained in contents {
                    remove(namespaced, key: contained)
                }
            }
        }
        return remove(definition, key: key)
    }

    /// Deletes every object matching the selectors (in namespace/name order) and returns them.
    mutating func deleteCollection(
        _ type: ResourceType, namespace: String?, labels: LabelQuery?, fields: FieldQuery?
    ) throws(Status) -> [JSONValue] {
        let page = try list(type, namespace: namespace, labels: labels, fields: fields, limit: nil, continueToken: nil)
        var deleted: [JSONValue] = []
        for object in page.items {
            deleted.append(try delete(type, namespace: object.objectNamespace, name: object.objectName))
        }
        return deleted
    }

    /// Forgets all history, as an etcd compaction does: resuming from any resourceVersion seen so far (and
    /// continuing a list begun before) is 410 Expired. Consumes one resourceVersion, so that a list made afterwards
    /// returns one that can be watched from.
    mutating func expire() {
        resourceVersion += 1
        history.removeAll()
        compactedRevision = resourceVersion
    }

    /// The events recorded since the last call.
    mutating func takeEvents() -> [Event] {
        defer { pendingEvents.removeAll() }
        return pendingEvents
    }

    // MARK: - Internals

    private func key(_ type: ResourceType, namespace: String?, name: String) -> ObjectKey {
        ObjectKey(namespace: type.namespaced ? namespace : nil, name: name)
    }

    /// Checks a request body against its type and path namespace, and sets `apiVersion`, `kind` and
    /// `metadata.namespace` (removed for cluster-scoped types). A nil `namespace` takes the body's.
    private func prepare(_ definition: ResourceDefinition, namespace: String?, body: JSONValue) throws(Status)
        -> JSONValue
    {
        let type = definition.type
        guard var members = body.objectValue else {
            throw Status.badRequest("the body of the request is a JSON \(body.typeName), not an object")
        }
        if let apiVersion = members["apiVersion"]?.stringValue, apiVersion != type.apiVersion {
            throw Status.badRequest(
                "the API version in the data (\(apiVersion)) does not match the expected API version "
                    + "(\(type.apiVersion))")
        }
        if let kind = members["kind"]?.stringValue, kind != type.kind {
            throw Status.badRequest("the kind in the data (\(kind)) does not match the expected kind (\(type.kind))")
        }
        if let metadata = members["metadata"], metadata.objectValue == nil {
            throw Status.badRequest("metadata is a JSON \(metadata.typeName), not an object")
        }
        members["apiVersion"] = .string(type.apiVersion)
        members["kind"] = .string(type.kind)
        var object = JSONValue.object(members)
        if type.namespaced {
            let bodyNamespace = object.objectNamespace
            if let namespace, let bodyNamespace, bodyNamespace != namespace {
                throw Status.badRequest(
                    "the namespace of the provided object does not match the namespace sent on the request")
            }
            guard let resolved = namespace ?? bodyNamespace else {
                throw Status.badRequest("a \(type.kind) needs metadata.namespace")
            }
            object = object.settingMetadata("namespace", .string(resolved))
        } else {
            object = object.settingMetadata("namespace", nil)
        }
        return object
    }

    private func requireNamespace(of object: JSONValue, _ definition: ResourceDefinition) throws(Status) {
        guard definition.type.namespaced, let namespace = object.objectNamespace else { return }
        guard self.object(.namespaces, namespace: nil, name: namespace) != nil else {
            throw Status.notFound(.namespaces, name: namespace)
        }
    }

    private mutating func insert(_ definition: ResourceDefinition, key: ObjectKey, object: JSONValue) -> JSONValue {
        resourceVersion += 1
        var metadata = object.metadataMembers
        metadata["uid"] = .string(UUID().uuidString.lowercased())
        metadata["creationTimestamp"] = .string(KubeTime.format(Date()))
        metadata["resourceVersion"] = .string(String(resourceVersion))
        metadata["generation"] = 1
        var stored = object
        stored["metadata"] = .object(metadata)
        stored = Self.normalized(definition, stored)
        objects[definition.id, default: [:]][key] = stored
        record(Event(kind: .added, resource: definition.id, object: stored, resourceVersion: resourceVersion))
        return stored
    }

    /// Combines a conditional update or patch with the stored object (see `update`).
    private mutating func replace(
        _ definition: ResourceDefinition, existing: JSONValue, with object: JSONValue, subresource: String?
    ) throws(Status) -> JSONValue {
        let type = definition.type
        switch subresource {
        case nil: break
        case "status" where definition.hasStatusSubresource: break
        default: throw Status.resourceNotFound
        }
        let precondition = object.objectResourceVersion
        if !precondition.isEmpty, precondition != existing.objectResourceVersion {
            throw Status.conflict(type, name: existing.objectName)
        }
        var updated: JSONValue
        if subresource == "status" {
            updated = existing
            updated["status"] = object["status"]
        } else {
            updated = object
            if definition.hasStatusSubresource {
                updated["status"] = existing["status"]
            }
        }
        return commit(definition, existing: existing, updated: merged(existing: existing, updated: updated))
    }

    /// `updated` with the server-managed metadata of `existing`, and `generation` bumped when the spec changed.
    private func merged(existing: JSONValue, updated: JSONValue) -> JSONValue {
        var metadata = updated.metadataMembers
        let current = existing.metadataMembers
        for key in ["uid", "creationTimestamp", "name", "namespace", "resourceVersion", "generation"] {
            metadata[key] = current[key]
        }
        if existing.specContent != updated.specContent, case .integer(let generation)? = current["generation"] {
            metadata["generation"] = .integer(generation + 1)
        }
        var result = updated
        result["metadata"] = .object(metadata)
        return result
    }

    /// Stores `updated` in place of `existing`; unless `always`, only when something changed.
    private mutating func commit(
        _ definition: ResourceDefinition, existing: JSONValue, updated: JSONValue, always: Bool = false
    ) -> JSONValue {
        let normalized = Self.normalized(definition, updated)
        guard always || normalized != existing else { return existing }
        resourceVersion += 1
        let stored = normalized.settingMetadata("resourceVersion", .string(String(resourceVersion)))
        let key = key(definition.type, namespace: stored.objectNamespace, name: stored.objectName)
        objects[definition.id, default: [:]][key] = stored
        record(
            Event(
                kind: .modified, resource: definition.id, object: stored, previous: existing,
                resourceVersion: resourceVersion))
        return stored
    }

    @discardableResult
    private mutating func remove(_ definition: ResourceDefinition, key: ObjectKey) -> JSONValue {
        guard let existing = objects[definition.id]?.removeValue(forKey: key) else { return .null }
        resourceVersion += 1
        let deleted = existing.settingMetadata("resourceVersion", .string(String(resourceVersion)))
        record(
            Event(
                kind: .deleted, resource: definition.id, object: deleted, previous: existing,
                resourceVersion: resourceVersion))
        return deleted
    }

    private mutating func record(_ event: Event) {
        pendingEvents.append(event)
        history.append(event)
        if history.count > historyLimit {
            let dropped = history.count - historyLimit
            compactedRevision = history[dropped - 1].resourceVersion
            history.removeFirst(dropped)
        }
    }

    /// Namespaces are always `Active` and carry the `kubernetes.io/metadata.name` label, as in the real server.
    private static func normalized(_ definition: ResourceDefinition, _ object: JSONValue) -> JSONValue {
        guard definition.id == ResourceID(.namespaces) else { return object }
        var labels = object.value(atPath: "metadata.labels")?.objectValue ?? [:]
        labels["kubernetes.io/metadata.name"] = .string(object.objectName)
        var result = object.settingMetadata("labels", .object(labels))
        var status = result["status"]?.objectValue ?? [:]
        status["phase"] = "Active"
        result["status"] = .object(status)
        return result
    }

    /// Five characters from the alphabet the real server uses for `generateName` (no vowels, no confusables).
    private static func randomSuffix() -> String {
        let alphabet = Array("bcdfghjklmnpqrstvwxz2456789")
        return String((0..<5).map { _ in alphabet.randomElement()! })
    }
}

/// The content of a list's `continue` token: the first page's resourceVersion and the last key returned so far.
private struct ContinueToken: Codable {
    var resourceVersion: Int
    var namespace: String?
    var name: String

    init(resourceVersion: Int, lastKey: ObjectKey) {
        self.resourceVersion = resourceVersion
        self.namespace = lastKey.namespace
        self.name = lastKey.name
    }

    init(decoding token: String) throws(Status) {
        guard let data = Data(base64Encoded: token), let decoded = try? JSONDecoder().decode(Self.self, from: data)
        else {
            throw Status.badRequest("continue key is not valid: \"\(token)\" is not a token this server issued")
        }
        self = decoded
    }

    var lastKey: ObjectKey {
        ObjectKey(namespace: namespace, name: name)
    }

    var encoded: String {
        ((try? JSONEncoder().encode(self)) ?? Data()).base64EncodedString()
    }
}
