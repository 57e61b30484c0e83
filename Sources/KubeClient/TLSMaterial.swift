import KubeModel
import NIOCore
import NIOSSL

/// Turns the PEM bytes of a configuration into NIOSSL objects, with errors that say which input is bad.
enum TLSMaterial {
    /// Every certificate in `pem`.
    ///
    /// - Parameter what: what the bytes are, such as `"certificate-authority-data of cluster \"prod\""`.
    /// - Throws: `KubeError` code `.configuration` when `pem` holds no parseable PEM certificate.
    static func certificates(fromPEM pem: [UInt8], what: String) throws(KubeError) -> [NIOSSLCertificate] {
        let certificates: [NIOSSLCertificate]
        do {
            certificates = try NIOSSLCertificate.fromPEMBytes(pem)
        } catch {
            throw KubeError(code: .configuration, message: "\(what) is not a valid PEM certificate: \(error)")
        }
        guard !certificates.isEmpty else {
            throw KubeError(code: .configuration, message: "\(what) contains no PEM certificate")
        }
        return certificates
    }

    /// The private key in `pem`.
    ///
    /// - Throws: `KubeError` code `.configuration` when `pem` is not a PEM private key.
    static func privateKey(fromPEM pem: [UInt8], what: String) throws(KubeError) -> NIOSSLPrivateKey {
        do {
            return try NIOSSLPrivateKey(bytes: pem, format: .pem)
        } catch {
            throw KubeError(code: .configuration, message: "\(what) is not a valid PEM private key: \(error)")
        }
    }

    /// The TLS settings for connecting to the server of `configuration`: its trust roots (or no verification when
    /// insecure) and its client certificate.
    ///
    /// - Throws: `KubeError` code `.configuration` for unparseable PEM, or for a client certificate without its key or
    ///   a key without its certificate.
    static func clientConfiguration(for configuration: KubeClientConfiguration) throws(KubeError) -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        // A closed connection (a cancelled watch, the client's shutdown) waits this long for the server's
        // close_notify. A server busy streaming a watch may never read ours, and NIOSSL's default is 5 seconds.
        tls.shutdownTimeout = .seconds(1)
        if configuration.insecureSkipTLSVerify {
            tls.certificateVerification = .none
        } else if let authority = configuration.certificateAuthorityPEM {
            tls.trustRoots = .certificates(try certificates(fromPEM: authority, what: "the certificate authority"))
        }
        switch (configuration.clientCertificatePEM, configuration.clientKeyPEM) {
        case (nil, nil):
            break
        case (let certificate?, let key?):
            tls.certificateChain = try certificates(fromPEM: certificate, what: "the client certificate")
                .map { .certificate($0) }
            tls.privateKey = .privateKey(try privateKey(fromPEM: key, what: "the client key"))
        case (.some, nil):
            throw KubeError(code: .configuration, message: "a client certificate is configured without its key")
        case (nil, .some):
            throw KubeError(code: .configuration, message: "a client key is configured without its certificate")
        }
        return tls
    }
}
