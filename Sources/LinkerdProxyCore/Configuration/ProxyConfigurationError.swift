import LinkerdCore

/// Everything wrong with a proxy's environment, found in one pass so that an operator can fix it all at once.
///
/// Each problem is one line; ``description`` joins them with newlines, in the order the variables were read. A value
/// that cannot be parsed is described as the upstream proxy describes it:
///
///     LINKERD2_PROXY_INBOUND_CONNECT_TIMEOUT="1.5s" is not valid: it has a fraction; durations are whole numbers, …
///     LINKERD2_PROXY_DESTINATION_SVC_ADDR must be set: no destination service configured
///
/// The executable should print the lines and exit with ``ProxyConfiguration/exitCode``.
public struct ProxyConfigurationError: Error, Hashable, Sendable, CustomStringConvertible {
    /// One thing wrong with the environment.
    public enum Problem: Hashable, Sendable, CustomStringConvertible {
        /// The variable `name` is unset, but the proxy cannot start without it; `reason`, when given, says why.
        case missing(name: String, reason: String?)
        /// The variable `name` holds `value`, which cannot be used because of `reason`.
        case invalid(name: String, value: String, reason: String)
        /// The variables `names` are each well-formed but break a rule together (such as a minimum that exceeds its
        /// maximum) or on their own (such as a retired setting); `message` names them and says what to change.
        case violation(names: [String], message: String)

        /// The variables the problem is about.
        public var names: [String] {
            switch self {
            case .missing(let name, _), .invalid(let name, _, _): [name]
            case .violation(let names, _): names
            }
        }

        /// `NAME must be set`, followed by `: reason` when there is one; `NAME="value" is not valid: reason` with the
        /// value quoted and escaped; or a violation's message.
        public var description: String {
            switch self {
            case .missing(let name, nil):
                EnvironmentError.missing(name: name).description
            case .missing(let name, let reason?):
                "\(EnvironmentError.missing(name: name)): \(reason)"
            case .invalid(let name, let value, let reason):
                EnvironmentError.invalid(name: name, value: value, reason: reason).description
            case .violation(_, let message):
                message
            }
        }
    }

    /// The problems, in the order they were found; never empty.
    public let problems: [Problem]

    /// An error reporting `problems`.
    public init(problems: [Problem]) {
        self.problems = problems
    }

    /// The problems' descriptions, one per line.
    public var description: String {
        problems.map(\.description).joined(separator: "\n")
    }
}
