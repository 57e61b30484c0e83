import AsyncHTTPClient
import KubeModel
import NIOCore

/// Classifies what the HTTP stack throws into `KubeError`, keeping the underlying error's description in the message.
enum TransportFailure {
    /// The error to throw for `error`, raised while doing `operation` (such as `GET /api/v1/pods`).
    ///
    /// A `KubeError` passes through unchanged. Cancellation of the calling task becomes `CancellationError`. Time-outs
    /// become code `.timeout`; an oversized body becomes `.decoding`; everything else (refused or reset connections,
    /// TLS failures, a connection closed mid-response) becomes `.transport`.
    static func classify(_ error: any Error, operation: String) -> any Error {
        if let error = error as? KubeError {
            return error
        }
        if error is CancellationError {
            return error
        }
        if let error = error as? HTTPClientError {
            switch error {
            case .cancelled where Task.isCancelled:
                return CancellationError()
            case .connectTimeout, .deadlineExceeded, .readTimeout, .writeTimeout, .tlsHandshakeTimeout,
                .getConnectionFromPoolTimeout:
                return KubeError(code: .timeout, message: "\(operation): timed out (\(error))")
            default:
                break
            }
        }
        if Task.isCancelled {
            return CancellationError()
        }
        if error is NIOTooManyBytesError {
            return KubeError(code: .decoding, message: "\(operation): the response body exceeds the size limit")
        }
        return KubeError(code: .transport, message: "\(operation): the connection to the API server failed: \(error)")
    }

    /// The first `limit` bytes of a response body as text, for error messages.
    static func snippet(_ bytes: some Collection<UInt8>, limit: Int = 200) -> String {
        let prefix = String(decoding: bytes.prefix(limit), as: UTF8.self)
        let text = prefix.isEmpty ? "(an empty body)" : "\"\(prefix)\""
        return bytes.count > limit ? "\(text) (\(bytes.count) bytes in all)" : text
    }
}
