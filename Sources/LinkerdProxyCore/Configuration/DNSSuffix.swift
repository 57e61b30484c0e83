import LinkerdCore

/// A DNS suffix that names may be matched against, such as `svc.cluster.local.`, or `.` for every name.
///
/// The proxy uses suffixes to decide which names it may ask the destination service about
/// (`LINKERD2_PROXY_DESTINATION_PROFILE_SUFFIXES`). Matching ignores case and trailing dots.
public enum DNSSuffix: Hashable, Sendable, CustomStringConvertible {
    /// The root, written `.`: every name matches.
    case root
    /// A suffix of one or more labels, in lowercase and without a trailing dot, such as `svc.cluster.local`.
    case name(String)

    /// Parses `.` as ``root``, and anything else as a DNS name (with or without a trailing dot) that is kept in
    /// lowercase.
    ///
    /// - Throws: ``ParseError`` when the text is neither `.` nor a DNS name.
    public init(parsing text: String) throws(ParseError) {
        guard text != "." else {
            self = .root
            return
        }
        let absolute = text.hasSuffix(".") ? String(text.dropLast()) : text
        if let problem = DNSNameSyntax.problem(absolute) {
            throw ParseError(value: text, expected: "DNS suffix", reason: problem)
        }
        self = .name(absolute.lowercased())
    }

    /// Whether `name` is this suffix or ends with a dot followed by it, ignoring case and a trailing dot on either.
    ///
    /// `web.emojivoto.svc.cluster.local` and `svc.cluster.local.` match `svc.cluster.local.`;
    /// `mysvc.cluster.local` does not.
    public func matches(_ name: String) -> Bool {
        switch self {
        case .root:
            return true
        case .name(let suffix):
            let candidate = (name.hasSuffix(".") ? String(name.dropLast()) : name).lowercased()
            return candidate == suffix || candidate.hasSuffix("." + suffix)
        }
    }

    /// `.` for the root, otherwise the suffix with a trailing dot, such as `svc.cluster.local.`.
    public var description: String {
        switch self {
        case .root: "."
        case .name(let suffix): suffix + "."
        }
    }
}
