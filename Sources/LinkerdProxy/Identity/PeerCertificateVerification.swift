import Foundation
import LinkerdCore
import NIOCore
import NIOSSL
import SwiftASN1
import Synchronization
@_spi(FixedExpiryValidationTime) import X509

/// A TLS peer's certificate chain that was rejected, and why: it does not chain to the trust anchors, or it does not
/// carry the identity expected of the peer.
///
/// NIOSSL reports a rejected certificate only as a BoringSSL handshake failure ("certificate verify failed"); the
/// handlers that ``ProxyClientTLSConfiguration`` and ``ProxyServerTLSConfiguration`` add report this error instead,
/// so logs say which check failed.
public struct PeerCertificateError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Which check failed, naming the certificate and the expected identity.
    public var reason: String

    public init(reason: String) {
        self.reason = reason
    }

    public var description: String {
        "the TLS peer's certificate was rejected: \(reason)"
    }
}

/// The identity names certificates carry (reference proxy §4.4, §4.5).
public enum TLSPeerIdentity {
    /// The identity a certificate proves: its first DNS or URI subject alternative name, as upstream takes a client's
    /// identity; nil when it has neither (or its names do not parse).
    public static func name(of certificate: Certificate) -> String? {
        guard let names = try? certificate.extensions.subjectAlternativeNames else { return nil }
        for name in names {
            switch name {
            case .dnsName(let dnsName): return dnsName
            case .uniformResourceIdentifier(let uri): return uri
            default: continue
            }
        }
        return nil
    }

    /// The identity of a channel's TLS peer, from the certificate chain verified against the trust anchors during
    /// the handshake by a handler from ``ProxyServerTLSConfiguration`` or ``ProxyClientTLSConfiguration``.
    ///
    /// - Returns: nil when the pipeline has no TLS handler, the handshake has not completed, or the peer presented no
    ///   certificate (a client without identity; the server's certificate is optional for clients).
    public static func verifiedPeerName(in pipeline: ChannelPipeline.SynchronousOperations) -> String? {
        guard let handler = try? pipeline.handler(type: NIOSSLHandler.self),
            let leaf = handler.peerValidatedCertificateChain?.leaf,
            let certificate = try? Certificate(derEncoded: leaf.toDERBytes())
        else {
            return nil
        }
        return name(of: certificate)
    }

    /// Whether `certificate` has `identity` as a subject alternative name: a URI name when `identity` is a SPIFFE ID
    /// (`spiffe://…`), else a DNS name (compared without regard to ASCII case, as DNS names are).
    static func certificate(_ certificate: Certificate, hasIdentity identity: String) -> Bool {
        guard let names = try? certificate.extensions.subjectAlternativeNames else { return false }
        let isSPIFFE = identity.hasPrefix("spiffe://")
        return names.contains { name in
            switch name {
            case .dnsName(let dnsName): !isSPIFFE && dnsName.lowercased() == identity.lowercased()
            case .uniformResourceIdentifier(let uri): isSPIFFE && uri == identity
            default: false
            }
        }
    }

    /// The subject alternative names of `certificate`, quoted, for error messages.
    static func describeNames(of certificate: Certificate) -> String {
        guard let names = try? certificate.extensions.subjectAlternativeNames, !names.isEmpty else {
            return "no subject alternative name"
        }
        let described = names.map { name -> String in
            switch name {
            case .dnsName(let dnsName): "DNS \(dnsName.quotedForMessage)"
            case .uniformResourceIdentifier(let uri): "URI \(uri.quotedForMessage)"
            default: "\(name)"
            }
        }
        return "the subject alternative names " + described.joined(separator: ", ")
    }
}

/// Verifies certificate chains against the trust anchors under RFC 5280 (signatures, validity periods, CA
/// constraints), without host names: Linkerd checks identities, not the names dialled.
struct TrustAnchorVerifier: Sendable {
    let anchors: IdentityTrustAnchors

    /// Verifies that `leaf` chains to a trust anchor, through `intermediates`, with every certificate valid at
    /// `time`, and, when `expectedIdentity` is given, that the leaf carries it
    /// (``TLSPeerIdentity/certificate(_:hasIdentity:)``).
    ///
    /// - Parameter subject: names the certificate in errors, such as "the server certificate".
    /// - Returns: the verified chain, the leaf first and the trust anchor last.
    func verify(
        leaf: Certificate, intermediates: [Certificate], expectedIdentity: String?, at time: Date, subject: String
    ) async throws(PeerCertificateError) -> [Certificate] {
        var verifier = Verifier(rootCertificates: CertificateStore(anchors.certificates)) {
            RFC5280Policy(fixedExpiryValidationTime: time)
        }
        let chain: [Certificate]
        switch await verifier.validate(leaf: leaf, intermediates: CertificateStore(intermediates)) {
        case .validCertificate(let validated):
            chain = Array(validated)
        case .couldNotValidate(let failures):
            let reasons =
                failures.isEmpty
                ? "it is not signed by any of the \(anchors.certificates.count) trust anchor(s), directly or through "
                    + "the \(intermediates.count) intermediate certificate(s) presented"
                : failures.map { "\($0.policyFailureReason)" }.joined(separator: "; ")
            throw PeerCertificateError(
                reason: "\(subject) \(leaf.subject) does not verify against the trust anchors at "
                    + "\(time.ISO8601Format()): \(reasons)")
        }
        if let expectedIdentity, !TLSPeerIdentity.certificate(leaf, hasIdentity: expectedIdentity) {
            throw PeerCertificateError(
                reason: "\(subject) is not for the expected identity \(expectedIdentity.quotedForMessage): it has "
                    + TLSPeerIdentity.describeNames(of: leaf))
        }
        return chain
    }

    /// A NIOSSL verification callback that replaces BoringSSL's checks with ``verify``, at the real time (TLS runs
    /// in real time whatever clock the rest of the proxy is given). A rejection is recorded in `report` before the
    /// handshake fails.
    func tlsCallback(
        expectedIdentity: String?, subject: String, report: PeerVerificationReport
    ) -> NIOSSLCustomVerificationCallbackWithMetadata {
        { presented, promise in
            let certificates: [Certificate]
            do {
                certificates = try presented.map { try Certificate(derEncoded: $0.toDERBytes()) }
            } catch {
                report.record(PeerCertificateError(reason: "\(subject) is not a valid X.509 certificate: \(error)"))
                promise.succeed(.failed)
                return
            }
            guard let leaf = certificates.first else {
                report.record(PeerCertificateError(reason: "the peer presented no certificate"))
                promise.succeed(.failed)
                return
            }
            // swift-certificates verifies asynchronously; the promise may be completed from any thread.
            Task {
                do throws(PeerCertificateError) {
                    let chain = try await verify(
                        leaf: leaf, intermediates: Array(certificates.dropFirst()), expectedIdentity: expectedIdentity,
                        at: Date(), subject: subject)
                    let validated = try chain.map { certificate throws(PeerCertificateError) in
                        do {
                            return try NIOSSLCertificate(bytes: certificate.derEncodedBytes(), format: .der)
                        } catch {
                            throw PeerCertificateError(
                                reason: "the verified chain cannot be handed to NIOSSL: \(error)")
                        }
                    }
                    promise.succeed(
                        .certificateVerified(VerificationMetadata(NIOSSL.ValidatedCertificateChain(validated))))
                } catch {
                    report.record(error)
                    promise.succeed(.failed)
                }
            }
        }
    }
}

/// One connection's certificate verification outcome, shared by its verification callback and its
/// ``PeerVerificationErrorHandler``.
final class PeerVerificationReport: Sendable {
    private let rejection = Mutex<PeerCertificateError?>(nil)

    func record(_ error: PeerCertificateError) {
        rejection.withLock { $0 = error }
    }

    var recorded: PeerCertificateError? {
        rejection.withLock { $0 }
    }
}

/// Sits right after a NIOSSL handler and replaces the handshake failure that a rejected peer certificate causes with
/// the ``PeerCertificateError`` saying why.
final class PeerVerificationErrorHandler: ChannelInboundHandler {
    typealias InboundIn = NIOAny

    private let report: PeerVerificationReport

    init(report: PeerVerificationReport) {
        self.report = report
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if error is NIOSSLError, let rejection = report.recorded {
            context.fireErrorCaught(rejection)
        } else {
            context.fireErrorCaught(error)
        }
    }
}

extension Certificate {
    /// The certificate's DER encoding.
    func derEncodedBytes() throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.serialize(self)
        return serializer.serializedBytes
    }
}

extension String {
    /// The string in double quotes, cut to 253 characters (the longest DNS name): peers choose the names in their
    /// certificates, and a message must stay one readable line.
    var quotedForMessage: String {
        (count > 253 ? String(prefix(253)) + "…" : self).quoted
    }
}
