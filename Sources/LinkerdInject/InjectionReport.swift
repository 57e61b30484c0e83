import KubeModel
import LinkerdCore

/// Why a pod (template) is not injected (control-plane.md §2.3 step 5).
public enum SkipReason: String, Sendable, Hashable, CaseIterable {
    case hostNetworkEnabled = "host_network_enabled"
    case sidecarAlreadyExists = "sidecar_already_exists"
    case unsupportedResource = "unsupported_resource"
    case injectionEnableAnnotationAbsent = "injection_enable_annotation_absent"
    case injectionDisableAnnotationPresent = "injection_disable_annotation_present"
    case invalidInjectAnnotationAtNamespace = "invalid_inject_annotation_at_ns"
    case invalidInjectAnnotationAtWorkload = "invalid_inject_annotation_at_workload"
    case disabledAutomountServiceAccountToken = "disabled_automount_service_account_token_account"

    /// The human text upstream Linkerd uses in events and logs.
    public var text: String {
        switch self {
        case .hostNetworkEnabled: "hostNetwork is enabled"
        case .sidecarAlreadyExists: "pod has a sidecar injected already"
        case .unsupportedResource: "this resource kind is unsupported"
        case .injectionEnableAnnotationAbsent:
            "neither the namespace nor the pod have the annotation \"linkerd.io/inject:enabled\""
        case .injectionDisableAnnotationPresent: "pod has the annotation \"linkerd.io/inject:disabled\""
        case .invalidInjectAnnotationAtNamespace: "invalid value for annotation \"linkerd.io/inject\" at namespace"
        case .invalidInjectAnnotationAtWorkload: "invalid value for annotation \"linkerd.io/inject\" at workload"
        case .disabledAutomountServiceAccountToken: "automountServiceAccountToken set to \"false\""
        }
    }
}

/// An annotation value that could not be used: ignored, logged and counted by the caller.
public struct AnnotationWarning: Sendable, Hashable, CustomStringConvertible {
    public var key: String
    public var value: String
    public var reason: String

    public init(key: String, value: String, reason: String) {
        self.key = key
        self.value = value
        self.reason = reason
    }

    /// `ignoring annotation <key>="<value>": <reason>`.
    public var description: String {
        "ignoring annotation \(key)=\(value.quotedForMessage()): \(reason)"
    }
}

/// The injection decision for one object.
public struct InjectionReport: Sendable, Hashable {
    /// The request's kind.
    public var kind: String
    /// `metadata.name`, else `metadata.generateName`, else "".
    public var name: String
    /// Empty when the object is injectable; otherwise in upstream's order.
    public var skipReasons: [SkipReason]
    public var injectable: Bool { skipReasons.isEmpty }
    /// `namespace`, `workload` or "": where the deciding `linkerd.io/inject` came from.
    public var annotationAt: String
    /// Annotation values that were ignored.
    public var warnings: [AnnotationWarning]
    /// The pod (template) annotations after namespace inheritance; the webhook's metric labels read them.
    public var effectiveAnnotations: [String: String]

    public init(
        kind: String, name: String, skipReasons: [SkipReason], annotationAt: String,
        warnings: [AnnotationWarning], effectiveAnnotations: [String: String]
    ) {
        self.kind = kind
        self.name = name
        self.skipReasons = skipReasons
        self.annotationAt = annotationAt
        self.warnings = warnings
        self.effectiveAnnotations = effectiveAnnotations
    }

    /// The reasons' texts joined by ", ", as in the `InjectionSkipped` event.
    public var skipReasonText: String {
        skipReasons.map(\.text).joined(separator: ", ")
    }
}

/// The decision and the patch that carries it out.
public struct InjectionResult: Sendable, Hashable {
    public var report: InjectionReport
    /// nil: nothing to change.
    public var patch: JSONPatch?

    public init(report: InjectionReport, patch: JSONPatch?) {
        self.report = report
        self.patch = patch
    }
}

extension String {
    /// The value quoted for a one-line message, cut to `limit` characters so a huge annotation cannot flood a log.
    func quotedForMessage(limit: Int = 200) -> String {
        guard count > limit else { return quoted }
        return String(prefix(limit)).quoted + "… (\(count) characters)"
    }
}
