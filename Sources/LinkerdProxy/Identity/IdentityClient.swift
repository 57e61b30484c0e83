import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import LinkerdCore
import LinkerdProxyAPI
import NIOCore
import NIOPosix
import NIOSSL
import SwiftASN1
import SwiftProtobuf
@_spi(FixedExpiryValidationTime) import X509

/// A certificate the identity service issued to this proxy, checked by ``IdentityClient/certify()``: its chain
/// verifies against the trust anchors, it carries the local name, it is for the proxy's key, and `valid_until` was
/// in the future. Only the client makes one.
public struct CertifiedIdentity: Hashable, Sendable {
    /// The identity the certificate was requested for.
    public let localName: String
    /// The leaf certificate.
    public let leaf: Certificate
    /// The chain to present in TLS, DER: the leaf, then the intermediates as the service sent them.
    public let chainDER: [[UInt8]]
    /// `valid_until` from the response, when the refresh is scheduled from.
    public let validUntil: Date
}

/// Why a Certify call did not produce a usable certificate.
public enum IdentityClientError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The client cannot work as configured.
    case invalidConfiguration(String)
    /// The ServiceAccount token file could not be read (or is empty).
    case tokenUnreadable(path: String, reason: String)
    /// The identity service's TLS certificate failed verification: it does not chain to the trust anchors or is not
    /// for `LINKERD2_PROXY_IDENTITY_SVC_NAME`.
    case serverCertificateRejected(address: String, reason: String)
    /// The call failed: the service refused the request (its status code and message), or could not be reached.
    case callFailed(address: String, code: RPCError.Code, message: String)
    /// The service answered with something that is not a certificate for this proxy.
    case invalidResponse(String)

    public var description: String {
        switch self {
        case .invalidConfiguration(let reason):
            "invalid identity client configuration: \(reason)"
        case .tokenUnreadable(let path, let reason):
            "the ServiceAccount token \(path) \(reason)"
        case .serverCertificateRejected(let address, let reason):
            "the identity service at \(address) was not trusted: \(reason)"
        case .callFailed(let address, let code, let message):
            "Certify at \(address) failed: \(code): \(message)"
        case .invalidResponse(let reason):
            "the identity service's response was rejected: \(reason)"
        }
    }
}

/// Calls `io.linkerd.proxy.identity.Identity/Certify` (reference proxy §4.2, control plane §4.2).
///
/// Every call connects anew (calls come hours apart), over HTTP/2 on TLS 1.3. The client presents no certificate (it
/// has no identity yet); it sends `LINKERD2_PROXY_IDENTITY_SVC_NAME` as SNI and requires the service's certificate to
/// chain to the trust anchors and to carry that name as a DNS subject alternative name; the address dialled is not
/// checked. The request carries the local name, the token file's contents (read again for every call: the kubelet
/// rotates projected tokens) and `csr.der`.
///
/// Plaintext is allowed only when the service's address is a loopback address (a test or a sidecar identity
/// service on the same host), where no one else is on the path; the response is verified all the same.
public final class IdentityClient: Sendable {
    public struct Configuration: Sendable {
        /// The identity service's host (`LINKERD2_PROXY_IDENTITY_SVC_ADDR`): a DNS name, or an IPv4 or IPv6 address.
        public var host: String
        public var port: Int
        /// The identity the service's certificate must carry (`LINKERD2_PROXY_IDENTITY_SVC_NAME`), also sent as SNI.
        public var serverIdentity: String
        /// The ServiceAccount token file (`LINKERD2_PROXY_IDENTITY_TOKEN_FILE`).
        public var tokenPath: String
        /// Plaintext HTTP/2 instead of TLS; only for a loopback `host`.
        public var plaintext: Bool
        /// The longest one call may take, connection included.
        public var callTimeout: Duration

        public init(
            host: String, port: Int, serverIdentity: String, tokenPath: String, plaintext: Bool = false,
            callTimeout: Duration = .seconds(10)
        ) {
            self.host = host
            self.port = port
            self.serverIdentity = serverIdentity
            self.tokenPath = tokenPath
            self.plaintext = plaintext
            self.callTimeout = callTimeout
        }

        /// `host:port`, with an IPv6 host in brackets.
        public var address: String {
            host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        }
    }

    public let configuration: Configuration
    private let files: IdentityFiles
    private let verifier: TrustAnchorVerifier
    private let tls: ProxyClientTLSConfiguration?
    private let clock: any WallClock
    private let eventLoopGroup: any EventLoopGroup

    /// - Parameters:
    ///   - files: the key and signing request (``IdentityFiles/prepare(directory:localName:)``).
    ///   - clock: the time responses are checked at (`valid_until` in the future, the chain valid).
    /// - Throws: ``IdentityClientError/invalidConfiguration(_:)`` for plaintext to a host that is not a loopback
    ///   address, a port out of range, or a server identity that cannot be sent as SNI.
    public init(
        configuration: Configuration, files: IdentityFiles, trustAnchors: IdentityTrustAnchors,
        clock: any WallClock = SystemWallClock(),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) throws(IdentityClientError) {
        guard (1...65_535).contains(configuration.port) else {
            throw .invalidConfiguration("the identity service port \(configuration.port) is not from 1 to 65535")
        }
        if let problem = IdentityFiles.dnsNameProblem(configuration.serverIdentity) {
            throw .invalidConfiguration(
                "the identity service name (LINKERD2_PROXY_IDENTITY_SVC_NAME) \(configuration.serverIdentity.quoted) "
                    + problem)
        }
        if configuration.plaintext, !Self.isLoopback(configuration.host) {
            throw .invalidConfiguration(
                "plaintext is allowed only to a loopback address (127.0.0.0/8, ::1, localhost), not to "
                    + configuration.host.quoted)
        }
        self.configuration = configuration
        self.files = files
        self.clock = clock
        self.eventLoopGroup = eventLoopGroup
        verifier = TrustAnchorVerifier(anchors: trustAnchors)
        if configuration.plaintext {
            tls = nil
        } else {
            var client = TLSConfiguration.makeClientConfiguration()
            client.certificateVerification = .noHostnameVerification
            client.applicationProtocols = ["h2"]
            do {
                client.applyMeshSettings(
                    trustRoots: try trustAnchors.derEncoded.map { try NIOSSLCertificate(bytes: $0, format: .der) })
                tls = ProxyClientTLSConfiguration(
                    expectedIdentity: configuration.serverIdentity, serverName: configuration.serverIdentity,
                    tlsConfiguration: client, context: try NIOSSLContext(configuration: client), verifier: verifier)
            } catch {
                throw .invalidConfiguration("BoringSSL refused the TLS configuration: \(error)")
            }
        }
    }

    /// Asks the identity service for a certificate and checks it.
    ///
    /// - Throws: ``IdentityClientError``: the token cannot be read; the service's certificate is rejected; the call
    ///   fails (the service's status, or `unavailable`/`deadlineExceeded` when it cannot be reached in
    ///   ``Configuration/callTimeout``); or the response is not a valid certificate for this proxy.
    public func certify() async throws(IdentityClientError) -> CertifiedIdentity {
        var request = Io_Linkerd_Proxy_Identity_CertifyRequest()
        request.identity = files.localName
        request.token = Data(try readToken())
        request.certificateSigningRequest = Data(files.signingRequestDER)

        let report = PeerVerificationReport()
        let response: Io_Linkerd_Proxy_Identity_CertifyResponse
        do {
            response = try await call(request, report: report)
        } catch {
            if let rejection = report.recorded {
                throw .serverCertificateRejected(address: configuration.address, reason: rejection.reason)
            }
            if let rpcError = error as? RPCError {
                var message = rpcError.message
                if let cause = rpcError.cause {
                    message += " (\(cause))"
                }
                throw .callFailed(address: configuration.address, code: rpcError.code, message: message)
            }
            throw .callFailed(address: configuration.address, code: .unknown, message: "\(error)")
        }
        return try await validate(response, now: clock.now())
    }

    // MARK: - Call

    private func readToken() throws(IdentityClientError) -> [UInt8] {
        let path = configuration.tokenPath
        let bytes: [UInt8]
        do {
            bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            throw .tokenUnreadable(path: path, reason: "cannot be read: \(error.localizedDescription)")
        }
        guard !bytes.isEmpty else {
            throw .tokenUnreadable(path: path, reason: "is empty")
        }
        return bytes
    }

    private func call(
        _ request: Io_Linkerd_Proxy_Identity_CertifyRequest, report: PeerVerificationReport
    ) async throws -> Io_Linkerd_Proxy_Identity_CertifyResponse {
        var config = HTTP2ClientTransport.Posix.Config.defaults
        config.http2.authority = configuration.serverIdentity
        let security: HTTP2ClientTransport.Posix.TransportSecurity
        if let tls {
            // The transport's own TLS allows TLS 1.2 and checks host names; this adds the mesh's handlers instead.
            security = .customSecure
            config.channelDebuggingCallbacks.onCreateTCPConnection = { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers(tls.makeHandlers(report: report), position: .first)
                }
            }
        } else {
            security = .plaintext
        }
        let transport = try HTTP2ClientTransport.Posix(
            target: target, transportSecurity: security, config: config, eventLoopGroup: eventLoopGroup)
        var options = CallOptions.defaults
        options.timeout = configuration.callTimeout
        // Fail as soon as the connection does, so a rejected certificate is reported at once, not at the deadline.
        options.waitForReady = false
        return try await withGRPCClient(transport: transport) { client in
            try await Io_Linkerd_Proxy_Identity_Identity.Client(wrapping: client).certify(request, options: options)
        }
    }

    private var target: any ResolvableTarget {
        switch try? IPAddress(parsing: configuration.host) {
        case .v4: .ipv4(address: configuration.host, port: configuration.port)
        case .v6: .ipv6(address: configuration.host, port: configuration.port)
        case nil: .dns(host: configuration.host, port: configuration.port)
        }
    }

    // MARK: - Response

    /// Checks a response at `now` (reference proxy §4.2).
    func validate(
        _ response: Io_Linkerd_Proxy_Identity_CertifyResponse, now: Date
    ) async throws(IdentityClientError) -> CertifiedIdentity {
        guard !response.leafCertificate.isEmpty else {
            throw .invalidResponse("it has no leaf certificate")
        }
        let leafDER = Array(response.leafCertificate)
        let leaf: Certificate
        do {
            leaf = try Certificate(derEncoded: leafDER)
        } catch {
            throw .invalidResponse("the leaf certificate is not a DER X.509 certificate: \(error)")
        }
        var intermediates: [Certificate] = []
        for (index, der) in response.intermediateCertificates.enumerated() {
            do {
                intermediates.append(try Certificate(derEncoded: Array(der)))
            } catch {
                throw .invalidResponse(
                    "intermediate certificate \(index + 1) is not a DER X.509 certificate: \(error)")
            }
        }
        guard response.hasValidUntil else {
            throw .invalidResponse("it has no valid_until")
        }
        let validUntil = response.validUntil.date
        guard validUntil > now else {
            throw .invalidResponse(
                "valid_until \(validUntil.ISO8601Format()) is not in the future (now is \(now.ISO8601Format()))")
        }
        guard leaf.publicKey == files.privateKey.publicKey else {
            throw .invalidResponse(
                "the leaf certificate is for another key than the proxy's (\(files.privateKeyPath))")
        }
        do {
            _ = try await verifier.verify(
                leaf: leaf, intermediates: intermediates, expectedIdentity: files.localName, at: now,
                subject: "the issued certificate")
        } catch {
            throw .invalidResponse(error.reason)
        }
        return CertifiedIdentity(
            localName: files.localName, leaf: leaf,
            chainDER: [leafDER] + response.intermediateCertificates.map { Array($0) }, validUntil: validUntil)
    }

    /// Whether `host` is a loopback address (`127.0.0.0/8`, `::1`) or `localhost`.
    static func isLoopback(_ host: String) -> Bool {
        if host == "localhost" { return true }
        switch try? IPAddress(parsing: host) {
        case .v4(let value): return value >> 24 == 127
        case .v6(let value): return value == 1
        case nil: return false
        }
    }
}
