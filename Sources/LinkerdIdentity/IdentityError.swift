/// Why a Certify call was refused, with the gRPC status code the identity service answers and a message for humans.
///
/// The codes and messages follow upstream Linkerd's `pkg/identity/service.go` (see the reference, §4.3), with these
/// deliberate differences, each documented where the error is made:
/// - a CSR whose own signature does not verify is `invalidArgument` (upstream never checks the signature);
/// - a CSR key that is not ECDSA P-256 is `failedPrecondition`, like the other CSR content checks (upstream answers
///   `internal`, which tells the client nothing it can fix);
/// - a TokenReview that cannot be made (the API server errors, times out or is unreachable) is `unavailable`, so
///   clients retry (upstream answers `internal`).
///
/// `unknown` is returned only when the loaded issuer has stopped being valid (for example it expired): upstream
/// returns a plain error there, which gRPC reports as `Unknown`, and emits the Warning event `IssuerValidationFailed`.
public struct IdentityError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The gRPC status codes Certify answers with; the names are grpc-swift's (`RPCError.Code`).
    public enum Code: Hashable, Sendable, CustomStringConvertible {
        /// The request is malformed whatever the server's state: an empty field, bytes that are not a CSR, a CSR
        /// whose signature does not verify, a token the API server calls invalid.
        case invalidArgument
        /// The request is well formed but cannot be granted: the CSR asks for other names or another key type, the
        /// token is not authenticated, or it belongs to another identity.
        case failedPrecondition
        /// The service cannot answer now but may soon: no issuer loaded yet, or the API server cannot be asked.
        case unavailable
        /// The loaded issuer is no longer valid against the trust anchors.
        case unknown
        /// A bug or an impossible state, such as signing failing.
        case internalError

        public var description: String {
            switch self {
            case .invalidArgument: "InvalidArgument"
            case .failedPrecondition: "FailedPrecondition"
            case .unavailable: "Unavailable"
            case .unknown: "Unknown"
            case .internalError: "Internal"
            }
        }
    }

    public var code: Code
    /// What went wrong, for the caller; sent as the gRPC status message.
    public var message: String

    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String {
        "\(code): \(message)"
    }

    static func invalidArgument(_ message: String) -> IdentityError {
        IdentityError(code: .invalidArgument, message: message)
    }

    static func failedPrecondition(_ message: String) -> IdentityError {
        IdentityError(code: .failedPrecondition, message: message)
    }
}
