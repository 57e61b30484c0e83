import KubeModel

/// What one list or watch selects: a resource type, optionally one namespace, and label and field selectors.
struct WatchFilter: Sendable {
    var resource: ResourceID
    /// nil selects all namespaces (and is the only choice for cluster-scoped types).
    var namespace: String?
    var labels: LabelQuery?
    var fields: FieldQuery?

    /// Whether an object of `resource` is selected. Field selectors match any dotted JSON path of the object.
    func selects(_ object: JSONValue) -> Bool {
        if let namespace, object.objectNamespace != namespace { return false }
        if let labels, !labels.matches(object.objectLabels) { return false }
        if let fields, !fields.matches(object) { return false }
        return true
    }

    /// The watch event a store event becomes for this filter, or nil when the watch does not see it.
    ///
    /// As in the real server, a modification that makes an object stop matching is sent as DELETED (with the new
    /// state) and one that makes it start matching as ADDED.
    func watchEvent(for event: APIStore.Event) -> (type: String, object: JSONValue)? {
        guard event.resource == resource else { return nil }
        let matchesNow = selects(event.object)
        switch event.kind {
        case .added:
            return matchesNow ? ("ADDED", event.object) : nil
        case .deleted:
            return selects(event.previous ?? event.object) ? ("DELETED", event.object) : nil
        case .modified:
            let matchedBefore = event.previous.map(selects) ?? false
            switch (matchedBefore, matchesNow) {
            case (true, true): return ("MODIFIED", event.object)
            case (false, true): return ("ADDED", event.object)
            case (true, false): return ("DELETED", event.object)
            case (false, false): return nil
            }
        }
    }
}
