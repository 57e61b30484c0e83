/// Why protocol detection failed a connection.
public enum ProtocolDetectionError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The peer closed the connection, or its side of it, after `bufferedBytes` bytes, before they decided the
    /// protocol.
    case closedBeforeDetection(bufferedBytes: Int)

    public var description: String {
        switch self {
        case .closedBeforeDetection(let bufferedBytes):
            "socket closed before protocol detection, after \(bufferedBytes) bytes"
        }
    }
}
