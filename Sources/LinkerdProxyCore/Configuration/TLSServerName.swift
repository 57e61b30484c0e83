import LinkerdCore

/// A DNS name that identifies a TLS server: the name its certificate must carry and the SNI a client sends for it.
///
/// In Linkerd these are identities such as
/// `linkerd-destination.linkerd.serviceaccount.identity.linkerd.cluster.local`, but any DNS name is accepted, as the
/// upstream proxy accepts any. DNS names compare without regard to case, so the
/// name is kept in lowercase; a trailing dot is dropped, because SNI never carries one.
public struct TLSServerName: Hashable, Sendable, CustomStringConvertible {
    /// The name in lowercase, without a trailing dot.
    public let name: String

    /// Parses a DNS name: dot-separated labels of 1 to 63 ASCII letters, digits and `-` (not at either end of a
    /// label), 253 characters at most, with an optional trailing dot.
    ///
    /// - Throws: ``ParseError`` naming the part at fault. A URI identity such as `spiffe://…` is refused with a
    ///   reason saying so: those need SPIRE, which this proxy does not support.
    public init(parsing text: String) throws(ParseError) {
        guard !text.contains("://") else {
            throw ParseError(
                value: text,
                expected: "DNS name",
                reason: "URI identities such as spiffe:// need SPIRE, which is not supported; expected a DNS name"
            )
        }
        let absolute = text.hasSuffix(".") ? String(text.dropLast()) : text
        if let problem = DNSNameSyntax.problem(absolute) {
            throw ParseError(value: text, expected: "DNS name", reason: problem)
        }
        name = absolute.lowercased()
    }

    /// The name, as ``name``.
    public var description: String {
        name
    }
}

/// The DNS name rules shared by ``TLSServerName``, ``DNSSuffix`` and ``ControlPlaneAddress``.
enum DNSNameSyntax {
    /// The most characters in one label.
    static let maxLabelLength = 63
    /// The most characters in a whole name without its trailing dot.
    static let maxNameLength = 253

    /// Why `name`, written without a trailing dot, is not a DNS name, as a sentence starting with its subject
    /// (`it has an empty label`), or nil when it is one.
    ///
    /// A name is dot-separated labels of 1 to 63 ASCII letters, digits and `-`, neither starting nor ending with `-`,
    /// at most 253 characters in all. A name of digits and dots only is refused: it reads as a malformed IP address.
    static func problem(_ name: String) -> String? {
        if name.isEmpty {
            return "it is empty"
        }
        if name.utf8.count > maxNameLength {
            return "it is \(name.utf8.count) characters long, but a DNS name has at most \(maxNameLength)"
        }
        for label in name.split(separator: ".", omittingEmptySubsequences: false) {
            if label.isEmpty {
                return "it has an empty label"
            }
            if let bad = label.unicodeScalars.first(where: { !isLabelScalar($0) }) {
                return "it contains \(String(bad).quoted), but a DNS name has only ASCII letters, digits, \"-\" "
                    + "and \".\""
            }
            if label.utf8.count > maxLabelLength {
                return "the label \(label.quoted) is \(label.utf8.count) characters long, but at most "
                    + "\(maxLabelLength) are allowed"
            }
            if label.hasPrefix("-") || label.hasSuffix("-") {
                return "the label \(label.quoted) starts or ends with \"-\""
            }
        }
        if HostPortSyntax.isDigitsAndDots(name) {
            return "it is made of digits and dots only, which is not a DNS name"
        }
        return nil
    }

    private static func isLabelScalar(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "a"..."z", "A"..."Z", "0"..."9", "-": true
        default: false
        }
    }
}
