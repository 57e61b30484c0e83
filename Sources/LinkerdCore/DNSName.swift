/// DNS-1123 syntax checks, as Kubernetes applies them to names and Linkerd to identities.
///
/// Each check returns why its input is invalid as a predicate that follows a subject, such as `is empty` (so
/// callers can write `it is empty` or `the namespace "" is empty`), or `nil` when the input is valid.
enum DNSName {
    /// The most characters in one label.
    static let maxLabelLength = 63
    /// The most characters in a whole name, dots included.
    static let maxNameLength = 253

    /// Why `label` is not a DNS-1123 label: 1 to 63 lowercase ASCII letters, digits and `-`, neither starting nor
    /// ending with `-`.
    static func labelProblem(_ label: some StringProtocol) -> String? {
        if label.isEmpty {
            return "is empty"
        }
        if let bad = label.unicodeScalars.first(where: { !isLabelScalar($0) }) {
            return "contains \(String(bad).quoted), but a DNS-1123 label has only lowercase letters, digits and \"-\""
        }
        if label.utf8.count > maxLabelLength {
            return "is \(label.utf8.count) characters long, but a DNS-1123 label has at most \(maxLabelLength)"
        }
        if label.hasPrefix("-") {
            return "starts with \"-\""
        }
        if label.hasSuffix("-") {
            return "ends with \"-\""
        }
        return nil
    }

    /// Why `name` is not a DNS-1123 subdomain: DNS-1123 labels separated by dots, at most 253 characters in all.
    static func nameProblem(_ name: some StringProtocol) -> String? {
        if name.isEmpty {
            return "is empty"
        }
        for label in name.split(separator: ".", omittingEmptySubsequences: false) {
            if label.isEmpty {
                return "has an empty label"
            }
            if let problem = labelProblem(label) {
                return "has the label \(label.quoted), which \(problem)"
            }
        }
        return lengthProblem(name)
    }

    /// Why `name` is too long to be a DNS name.
    static func lengthProblem(_ name: some StringProtocol) -> String? {
        let length = name.utf8.count
        guard length > maxNameLength else { return nil }
        return "is \(length) characters long, but a DNS name has at most \(maxNameLength)"
    }

    private static func isLabelScalar(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "a"..."z", "0"..."9", "-": true
        default: false
        }
    }
}
