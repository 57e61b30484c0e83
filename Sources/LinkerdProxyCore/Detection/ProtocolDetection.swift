/// The protocol a connection's first bytes were classified as, by ``DetectionMode/decide(buffered:)`` or, for
/// ``timedOut``, by the detector's caller.
public enum DetectedProtocol: Hashable, Sendable {
    /// A TLS ClientHello, with its SNI host name as ``TLSDetection/clientHello(serverName:)`` gives it: lowercase, or
    /// `nil` when there is none or it is not a valid DNS name. Upstream treats a ClientHello without a usable SNI as
    /// no TLS (`no_tls_from_remote`), which is then forwarded opaquely since it is not HTTP either.
    case tls(serverName: String?)
    /// An HTTP/1.0 or HTTP/1.1 request line.
    case http1
    /// The HTTP/2 connection preface (prior knowledge).
    case http2
    /// None of the protocols looked for. In ``DetectionMode/tls`` that only means "not a ClientHello": plaintext
    /// whose protocol was not examined.
    case opaque
    /// The detect timeout fired before the bytes decided. Upstream fails the connection when TLS detection times out
    /// (`TLS detection timed out`) and falls back by policy when HTTP detection does (HTTP/1 for an `Http1` port,
    /// otherwise opaque; on the admin server HTTP/2 after mTLS, otherwise HTTP/1).
    case timedOut
}

/// Which detections run on the first bytes of a connection, and how the bytes buffered so far decide.
///
/// TLS detection keeps buffering while the bytes are a proper prefix of a ClientHello, up to
/// ``TLSDetection/maxVectorLength`` (8192) bytes; a ClientHello that does not fit is not TLS, as upstream's 8 KiB
/// buffer makes it. HTTP detection decides on one read of at most ``HTTPDetection/maxReadLength`` (1024) bytes (see
/// ``HTTPDetection``); after TLS detection found no ClientHello, that read is the bytes TLS detection buffered, as
/// upstream replays them.
public enum DetectionMode: Hashable, Sendable {
    /// TLS only: ``DetectedProtocol/tls(serverName:)`` or ``DetectedProtocol/opaque``.
    case tls
    /// HTTP only, on the first read: ``DetectedProtocol/http1``, ``DetectedProtocol/http2`` or
    /// ``DetectedProtocol/opaque``.
    case http
    /// TLS, then HTTP on the same bytes when they are not a ClientHello: any of the results.
    case tlsThenHTTP

    /// How many bytes detection may need buffered: 8192 when it looks for TLS, else 1024. Bytes beyond the limit
    /// are never examined.
    public var bufferLimit: Int {
        switch self {
        case .tls, .tlsThenHTTP: TLSDetection.maxVectorLength
        case .http: HTTPDetection.maxReadLength
        }
    }

    /// Decides from `buffered`, every byte received on the connection so far in order, or returns `nil` while more
    /// bytes are needed. With no bytes it always needs more; in ``http`` mode the first non-empty call decides, so
    /// pass it exactly the first read.
    public func decide(buffered: UnsafeRawBufferPointer) -> DetectedProtocol? {
        guard !buffered.isEmpty else { return nil }
        switch self {
        case .http:
            return Self.httpResult(firstRead: buffered)
        case .tls, .tlsThenHTTP:
            let examined = UnsafeRawBufferPointer(rebasing: buffered.prefix(bufferLimit))
            switch TLSDetection.detect(examined) {
            case .clientHello(let serverName):
                return .tls(serverName: serverName)
            case .needMoreData where examined.count < bufferLimit:
                return nil
            case .needMoreData, .notTLS:
                return self == .tls ? .opaque : Self.httpResult(firstRead: buffered)
            }
        }
    }

    /// Decides from `buffered` as the `UnsafeRawBufferPointer` overload does.
    public func decide(buffered: some Collection<UInt8>) -> DetectedProtocol? {
        if let result = buffered.withContiguousStorageIfAvailable({ decide(buffered: UnsafeRawBufferPointer($0)) }) {
            return result
        }
        return Array(buffered).withUnsafeBytes { decide(buffered: $0) }
    }

    private static func httpResult(firstRead: UnsafeRawBufferPointer) -> DetectedProtocol {
        switch HTTPDetection.detect(firstRead: firstRead) {
        case .http1: .http1
        case .http2: .http2
        case .notHTTP: .opaque
        }
    }
}
