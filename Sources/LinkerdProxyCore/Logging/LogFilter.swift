import LinkerdCore

/// The proxy's log filter, as `LINKERD2_PROXY_LOG` and `PUT /proxy-log-level` give it: comma-separated directives,
/// each a level (`warn`), a target and a level (`linkerd=info`, `linkerd::proxy::tcp=debug`), a target alone
/// (`linkerd`, every level), or a span filter (`[{headers}]=off`, `linkerd[accept]=debug`). This is Rust tracing's
/// `EnvFilter` syntax, which Linkerd's chart uses: its default is `warn,linkerd=info,hickory=error,[{headers}]=off,
/// [{request}]=off`.
///
/// A target's level comes from the directive with the longest target that is the target itself or one of its
/// `::`-separated ancestors (`linkerd` covers `linkerd::proxy`, not `linkerdx`); without one, from the last bare
/// level, else `error` as tracing's default is. Span filters are checked and kept, so the filter reads back as
/// given, but they select nothing: this proxy's log lines are not inside tracing spans, and the chart's span
/// filters only turn off logging of headers and requests, which it never logs.
public struct LogFilter: Sendable, Hashable, CustomStringConvertible {
    /// How much is logged, from nothing to everything.
    public enum Level: Int, Sendable, Hashable, Comparable, CaseIterable, CustomStringConvertible {
        case off, error, warn, info, debug, trace

        public static func < (lhs: Level, rhs: Level) -> Bool { lhs.rawValue < rhs.rawValue }

        public var description: String {
            switch self {
            case .off: "off"
            case .error: "error"
            case .warn: "warn"
            case .info: "info"
            case .debug: "debug"
            case .trace: "trace"
            }
        }

        /// Parses a level name in any case; `warning` is accepted for `warn`.
        init?(name: some StringProtocol) {
            let lowered = name.lowercased()
            if lowered == "warning" {
                self = .warn
                return
            }
            guard let level = Level.allCases.first(where: { $0.description == lowered }) else { return nil }
            self = level
        }
    }

    /// One directive: a level for a target, or for everything when the target is nil; with a span filter, for
    /// the spans it selects.
    public struct Directive: Sendable, Hashable, CustomStringConvertible {
        public var target: String?
        /// The bracketed span filter as given, such as `[{headers}]`, or nil.
        public var spanFilter: String?
        public var level: Level

        public init(target: String?, spanFilter: String? = nil, level: Level) {
            self.target = target
            self.spanFilter = spanFilter
            self.level = level
        }

        public var description: String {
            let selector = (target ?? "") + (spanFilter ?? "")
            guard !selector.isEmpty else { return level.description }
            return level == .trace && spanFilter == nil ? selector : "\(selector)=\(level)"
        }
    }

    /// The directives in the order given.
    public let directives: [Directive]

    /// The proxy's default, `warn,linkerd=info,hickory=error`.
    public static let proxyDefault = LogFilter(directives: [
        Directive(target: nil, level: .warn), Directive(target: "linkerd", level: .info),
        Directive(target: "hickory", level: .error),
    ])

    public init(directives: [Directive]) {
        self.directives = directives
    }

    /// Parses a filter; whitespace around directives is ignored, and so are empty ones (`warn,,`), as tracing does.
    ///
    /// - Throws: ``ParseError`` (expected `log filter`) naming the directive at fault.
    public init(parsing text: String) throws(ParseError) {
        func failure(_ reason: String) -> ParseError {
            ParseError(value: text, expected: "log filter", reason: reason)
        }
        var directives: [Directive] = []
        for piece in text.split(separator: ",") {
            let directive = piece.trimmingWhitespace
            if directive.isEmpty { continue }
            if let open = directive.firstIndex(of: "["), !directive.contains("]") {
                throw failure(
                    "the span filter \(String(directive[open...]).quoted) in \(directive.quoted) is not one [...] group "
                        + "with balanced braces")
            }
            // The level follows the last "=" outside the span filter's brackets (field filters have their own).
            let selectorEnd = directive.lastIndex(of: "]").map { directive.index(after: $0) } ?? directive.startIndex
            let equals = directive[selectorEnd...].firstIndex(of: "=")
            let selector = String(directive[..<(equals ?? directive.endIndex)])
            let levelText = equals.map { directive[directive.index(after: $0)...] }
            guard levelText?.contains("=") != true else {
                throw failure("\(directive.quoted) has more than one \"=\"")
            }
            let (target, spanFilter) = try Self.splitSelector(selector, in: directive, failure)
            let level: Level
            if let levelText {
                guard let parsed = Level(name: levelText) else {
                    throw failure(
                        "\(String(levelText).quoted) in \(directive.quoted) is not a level: expected off, error, warn, "
                            + "info, debug or trace")
                }
                level = parsed
            } else if spanFilter == nil, let bare = Level(name: selector) {
                directives.append(Directive(target: nil, level: bare))
                continue
            } else {
                level = .trace
            }
            if let target {
                try Self.checkTarget(target, failure)
            }
            directives.append(Directive(target: target, spanFilter: spanFilter, level: level))
        }
        self.init(directives: directives)
    }

    /// `target[span]` into its target (nil when empty, unless there is no span filter) and its span filter, which
    /// must be one bracketed group, ending the selector, with balanced braces.
    private static func splitSelector(
        _ selector: String, in directive: String, _ failure: (String) -> ParseError
    ) throws(ParseError) -> (target: String?, spanFilter: String?) {
        guard let open = selector.firstIndex(of: "[") else {
            guard !selector.contains("]") else { throw failure("\(directive.quoted) has a \"]\" without \"[\"") }
            return (selector, nil)
        }
        let spanFilter = String(selector[open...])
        var depth = 0
        var balanced =
            spanFilter.hasSuffix("]") && spanFilter.dropFirst().dropLast().allSatisfy { $0 != "[" && $0 != "]" }
        for character in spanFilter {
            if character == "{" { depth += 1 }
            if character == "}" { depth -= 1 }
            if depth < 0 { balanced = false }
        }
        guard balanced, depth == 0 else {
            throw failure(
                "the span filter \(spanFilter.quoted) in \(directive.quoted) is not one [...] group with balanced braces"
            )
        }
        let target = String(selector[..<open])
        return (target.isEmpty ? nil : target, spanFilter)
    }

    /// A target is a Rust-style path: identifiers of letters, digits, `_` and `-`, joined by `::`.
    private static func checkTarget(_ target: String, _ failure: (String) -> ParseError) throws(ParseError) {
        let segments = target.split(separator: "::", omittingEmptySubsequences: false)
        let valid = segments.allSatisfy { segment in
            !segment.isEmpty
                && segment.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }
        }
        guard valid else {
            throw failure("\(target.quoted) is neither a level nor a target such as linkerd::proxy")
        }
    }

    /// The most detailed level logged for `target`.
    public func level(for target: String) -> Level {
        var best: (length: Int, level: Level)?
        var global: Level?
        for directive in directives where directive.spanFilter == nil {
            guard let prefix = directive.target else {
                global = directive.level
                continue
            }
            // Compared as UTF-8 without building `prefix + "::"`: the proxy's log handler asks on every log call.
            let length = prefix.utf8.count
            guard target.utf8.starts(with: prefix.utf8) else { continue }
            let rest = target.utf8.dropFirst(length)
            if (rest.isEmpty || rest.starts(with: "::".utf8)), length >= (best?.length ?? 0) {
                best = (length, directive.level)
            }
        }
        return best?.level ?? global ?? .error
    }

    /// The directives joined by commas; ``init(parsing:)`` reads it back to an equal filter.
    public var description: String {
        directives.map(\.description).joined(separator: ",")
    }
}
