import KubeModel

/// Accessors for the object metadata the server reads and writes on raw JSON documents.
extension JSONValue {
    /// `metadata` as members; empty when absent or not an object.
    var metadataMembers: [String: JSONValue] {
        self["metadata"]?.objectValue ?? [:]
    }

    /// `metadata.name`, or the empty string.
    var objectName: String {
        value(atPath: "metadata.name")?.stringValue ?? ""
    }

    /// `metadata.namespace`, nil when absent or empty.
    var objectNamespace: String? {
        guard let namespace = value(atPath: "metadata.namespace")?.stringValue, !namespace.isEmpty else { return nil }
        return namespace
    }

    /// `metadata.resourceVersion`, or the empty string.
    var objectResourceVersion: String {
        value(atPath: "metadata.resourceVersion")?.stringValue ?? ""
    }

    /// `metadata.labels`; non-string values are ignored.
    var objectLabels: [String: String] {
        value(atPath: "metadata.labels")?.objectValue?.compactMapValues(\.stringValue) ?? [:]
    }

    /// This document with one `metadata` member set (or removed, for nil).
    func settingMetadata(_ key: String, _ value: JSONValue?) -> JSONValue {
        var metadata = metadataMembers
        metadata[key] = value
        var copy = self
        copy["metadata"] = .object(metadata)
        return copy
    }

    /// Everything but `apiVersion`, `kind`, `metadata` and `status`: what a change of bumps `metadata.generation`.
    var specContent: [String: JSONValue] {
        var members = objectValue ?? [:]
        for key in ["apiVersion", "kind", "metadata", "status"] {
            members.removeValue(forKey: key)
        }
        return members
    }
}
