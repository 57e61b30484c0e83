/// A configuration variable that is missing or cannot be used.
///
/// The descriptions follow the Linkerd proxy's wording for configuration errors:
///
///     LINKERD2_PROXY_INBOUND_PORTS="80-70" is not valid: the start 80 is greater than the end 70
///     LINKERD2_PROXY_IDENTITY_DIR must be set
public enum EnvironmentError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The variable `name` is unset or empty but required.
    case missing(name: String)
    /// The variable `name` holds `value`, which is rejected because of `reason`.
    case invalid(name: String, value: String, reason: String)

    /// The name of the variable at fault.
    public var name: String {
        switch self {
        case .missing(let name), .invalid(let name, _, _): name
        }
    }

    /// `NAME must be set`, or `NAME="value" is not valid: reason` with the value quoted and escaped.
    public var description: String {
        switch self {
        case .missing(let name): "\(name) must be set"
        case .invalid(let name, let value, let reason): "\(name)=\(value.quoted) is not valid: \(reason)"
        }
    }
}
