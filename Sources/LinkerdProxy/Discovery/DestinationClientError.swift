import LinkerdCore

/// Why a ``DestinationClient`` could not be built, or why one of its streams ended.
///
/// Streams end with an error only when retrying cannot help: every other failure is retried with backoff.
public enum DestinationClientError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The client cannot work as configured.
    case invalidConfiguration(String)
    /// The Destination service refused the lookup with `InvalidArgument` (a name it does not serve, or an IP given
    /// to `Get`), which upstream never retries. For a profile this means "no profile".
    case rejected(method: String, path: String, message: String)
    /// The client was shut down while the stream was followed.
    case stopped(method: String, path: String)

    public var description: String {
        switch self {
        case .invalidConfiguration(let reason):
            "invalid destination client configuration: \(reason)"
        case .rejected(let method, let path, let message):
            "the destination service rejected \(method) for \(path.quoted): \(message)"
        case .stopped(let method, let path):
            "the destination client stopped while following \(method) for \(path.quoted)"
        }
    }
}
