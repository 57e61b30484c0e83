/// A Linkerd workload identity: the DNS-like name that a proxy's certificate is issued for.
///
/// The form is `<service-account>.<namespace>.serviceaccount.identity.<control-plane-namespace>.<trust-domain>`,
/// for example `default.emojivoto.serviceaccount.identity.linkerd.cluster.local`. The service account, namespace
/// and control-plane namespace are DNS-1123 labels; the trust domain is one or more DNS-1123 labels separated by
/// dots; the whole name has at most 253 characters. Names are case-sensitive: uppercase letters are rejected, not
/// folded.
public struct IdentityName: Hashable, Sendable, CustomStringConvertible, Codable {
    /// The name of the workload's Kubernetes service account, such as `default`.
    public let serviceAccount: String
    /// The workload's Kubernetes namespace, such as `emojivoto`.
    public let namespace: String
    /// The namespace the Linkerd control plane runs in, such as `linkerd`.
    public let controlPlaneNamespace: String
    /// The trust domain of the mesh, such as `cluster.local`; it may contain dots.
    public let trustDomain: String

    /// Creates the identity of a workload from its parts.
    ///
    /// - Throws: ``ParseError`` naming the first invalid part (as `service account`, `namespace`,
    ///   `control-plane namespace` or `trust domain`), or naming the whole identity when it exceeds 253 characters.
    public init(
        serviceAccount: String,
        namespace: String,
        controlPlaneNamespace: String,
        trustDomain: String
    ) throws(ParseError) {
        let parts = [
            (Part.serviceAccount, serviceAccount),
            (Part.namespace, namespace),
            (Part.controlPlaneNamespace, controlPlaneNamespace),
            (Part.trustDomain, trustDomain),
        ]
        for (part, value) in parts {
            if let problem = part.problem(value) {
                throw ParseError(value: value, expected: part.rawValue, reason: "it \(problem)")
            }
        }
        self.serviceAccount = serviceAccount
        self.namespace = namespace
        self.controlPlaneNamespace = controlPlaneNamespace
        self.trustDomain = trustDomain
        if let problem = DNSName.lengthProblem(description) {
            throw ParseError(value: description, expected: Self.expected, reason: "it \(problem)")
        }
    }

    /// Parses the string form of an identity.
    ///
    /// The first label is the service account, the second the namespace, the third and fourth must be
    /// `serviceaccount.identity`, the fifth is the control-plane namespace and the rest is the trust domain.
    ///
    /// - Throws: ``ParseError`` about the whole string, whose reason names the offending part.
    public init(parsing string: String) throws(ParseError) {
        let labels = string.split(separator: ".", maxSplits: 5, omittingEmptySubsequences: false).map(String.init)
        guard labels.count == 6 else {
            throw ParseError(
                value: string,
                expected: Self.expected,
                reason: "it has \(counted(labels.count, "label")), but an identity has at least 6: "
                    + Self.form
            )
        }
        let marker = "\(labels[2]).\(labels[3])"
        guard marker == Self.marker else {
            throw ParseError(
                value: string,
                expected: Self.expected,
                reason: "the third and fourth labels are \(marker.quoted), but expected \(Self.marker.quoted)"
            )
        }
        let parts = [
            (Part.serviceAccount, labels[0]),
            (Part.namespace, labels[1]),
            (Part.controlPlaneNamespace, labels[4]),
            (Part.trustDomain, labels[5]),
        ]
        for (part, value) in parts {
            if let problem = part.problem(value) {
                throw ParseError(
                    value: string,
                    expected: Self.expected,
                    reason: "the \(part.rawValue) \(value.quoted) \(problem)"
                )
            }
        }
        if let problem = DNSName.lengthProblem(string) {
            throw ParseError(value: string, expected: Self.expected, reason: "it \(problem)")
        }
        serviceAccount = labels[0]
        namespace = labels[1]
        controlPlaneNamespace = labels[4]
        trustDomain = labels[5]
    }

    /// The identity of a control-plane component, whose service account is named after the component and lives
    /// in the control-plane namespace.
    ///
    /// `IdentityName.controlPlane(component: "linkerd-identity", namespace: "linkerd", trustDomain: "cluster.local")`
    /// is `linkerd-identity.linkerd.serviceaccount.identity.linkerd.cluster.local`.
    ///
    /// - Throws: ``ParseError`` as ``init(serviceAccount:namespace:controlPlaneNamespace:trustDomain:)`` does.
    public static func controlPlane(
        component: String,
        namespace: String,
        trustDomain: String
    ) throws(ParseError) -> IdentityName {
        try IdentityName(
            serviceAccount: component,
            namespace: namespace,
            controlPlaneNamespace: namespace,
            trustDomain: trustDomain
        )
    }

    /// The string form:
    /// `<service-account>.<namespace>.serviceaccount.identity.<control-plane-namespace>.<trust-domain>`.
    public var description: String {
        "\(serviceAccount).\(namespace).\(Self.marker).\(controlPlaneNamespace).\(trustDomain)"
    }

    /// Decodes the string form, as ``init(parsing:)`` parses it.
    public init(from decoder: any Decoder) throws {
        self = try StringCoding.decode(from: decoder, Self.init(parsing:))
    }

    /// Encodes the string form.
    public func encode(to encoder: any Encoder) throws {
        try StringCoding.encode(self, to: encoder)
    }

    private static let expected = "identity name"
    private static let marker = "serviceaccount.identity"
    private static let form =
        "<service-account>.<namespace>.serviceaccount.identity.<control-plane-namespace>.<trust-domain>"

    private enum Part: String {
        case serviceAccount = "service account"
        case namespace
        case controlPlaneNamespace = "control-plane namespace"
        case trustDomain = "trust domain"

        func problem(_ value: String) -> String? {
            self == .trustDomain ? DNSName.nameProblem(value) : DNSName.labelProblem(value)
        }
    }
}
