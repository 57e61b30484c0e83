import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Why the proxy closed a connection it accepted without forwarding it, or stopped forwarding it.
public enum ProxyConnectionError: Error, Hashable, Sendable, CustomStringConvertible {
    /// An inbound connection's original destination is the inbound listener's own port: forwarding it would loop
    /// back to the proxy. (Direct connections from other proxies, which also target that port, are not served yet.)
    case targetsInboundPort(Int)
    /// The original destination is not one of `LINKERD2_PROXY_INBOUND_IPS`.
    case addressNotAllowed(SocketAddress)
    /// No ClientHello or other bytes decided the protocol within the detect timeout.
    case detectionTimedOut(TimeAmount)
    /// The connection needs TLS (terminated inbound, or originated outbound to a meshed endpoint), but the proxy has
    /// no certificate yet.
    case noIdentityCertificate
    /// The TLS handshake did not complete in time.
    case handshakeTimedOut
    /// The connection closed before the TLS handshake completed.
    case closedDuringHandshake
    /// The connection to where the accepted connection goes could not be opened; `reason` says why.
    case connectFailed(SocketAddress, reason: String)
    /// The accepted connection closed while the proxy was connecting to where it goes.
    case clientClosed

    public var description: String {
        switch self {
        case .targetsInboundPort(let port):
            "inbound connection must not target port \(port), the inbound listener's own"
        case .addressNotAllowed(let address):
            "inbound connections are not allowed on this IP address (\(address.ipAddress ?? "\(address)"))"
        case .detectionTimedOut(let timeout):
            "TLS detection timed out: no ClientHello or other bytes decided the protocol within \(timeout)"
        case .noIdentityCertificate:
            "the proxy has no identity certificate yet"
        case .handshakeTimedOut:
            "the TLS handshake did not complete in time"
        case .closedDuringHandshake:
            "the connection closed before the TLS handshake completed"
        case .connectFailed(let address, let reason):
            "connecting to \(address.endpointText) failed: \(reason)"
        case .clientClosed:
            "the client closed the connection before it was forwarded"
        }
    }
}

/// Opens the proxy's connections towards applications and other proxies: on the event loop of the connection they
/// are spliced to (``TCPSplice`` needs both on one loop), with the proxy's socket options and connect timeout and,
/// for a meshed peer, the proxy's client TLS.
struct UpstreamConnector: Sendable {
    let options: TCPSocketOptions
    /// The longest a connection may take to open, TLS handshake included.
    let timeout: TimeAmount

    /// Connects to `address` on `eventLoop`; with `tls`, also completes the TLS handshake, verifying that the server
    /// proves `tls.expectedIdentity`.
    ///
    /// The future completes on `eventLoop` with the connected channel. With TLS, its pipeline ends with a
    /// ``TLSHandshakeGate`` that holds what the server sends until the caller releases it
    /// (``TLSHandshakeGate/release(in:)``) after adding the handlers that consume it. The future fails with
    /// ``ProxyConnectionError/connectFailed(_:reason:)`` whatever went wrong, and the channel is then closed.
    func connect(
        to address: SocketAddress, on eventLoop: any EventLoop, tls: ProxyClientTLSConfiguration?
    ) -> EventLoopFuture<any Channel> {
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .proxySocketOptions(options)
        guard let tls else {
            return bootstrap.connect(to: address).flatMapErrorThrowing { throw Self.failure(address, $0) }
        }
        let deadline = NIODeadline.now() + timeout
        let established = eventLoop.makePromise(of: String?.self)
        return bootstrap.channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                let pipeline = channel.pipeline.syncOperations
                try tls.addHandlers(to: pipeline)
                try pipeline.addHandler(TLSHandshakeGate(established: established, deadline: deadline))
            }
        }
        .connect(to: address)
        .flatMap { channel in
            established.futureResult.map { _ in channel }.flatMapErrorThrowing { error in
                channel.close(promise: nil)
                throw error
            }
        }
        .flatMapErrorThrowing { error in
            // When the connection failed before the gate was added, nothing else completes the promise.
            established.fail(error)
            throw Self.failure(address, error)
        }
    }

    private static func failure(_ address: SocketAddress, _ error: any Error) -> ProxyConnectionError {
        if let failure = error as? ProxyConnectionError, case .connectFailed = failure {
            return failure
        }
        let reason =
            switch error {
            case ChannelError.connectTimeout(let timeout): "no connection within \(timeout)"
            case let error as IOError: "\(String(cString: strerror(error.errnoCode))) (errno \(error.errnoCode))"
            default: "\(error)"
            }
        return .connectFailed(address, reason: reason)
    }
}

/// Splices `accepted`, a connection the proxy accepted, with `upstream`, the connection it opened for it; on their
/// shared event loop. When `accepted` closed meanwhile, closes `upstream` instead.
///
/// - Throws: ``ProxyConnectionError/clientClosed`` when `accepted` is closed.
func spliceAccepted(_ accepted: any Channel, to upstream: any Channel) throws {
    guard accepted.isActive else {
        upstream.close(promise: nil)
        throw ProxyConnectionError.clientClosed
    }
    _ = TCPSplice.splice(accepted, upstream)
}

extension SocketAddress {
    /// `10.0.0.1:8080`, or `[fd00::1]:8080` for IPv6: for logs and messages.
    var endpointText: String {
        guard let ip = ipAddress, let port else { return "\(self)" }
        if case .v6 = self {
            return "[\(ip)]:\(port)"
        }
        return "\(ip):\(port)"
    }
}
