import Foundation
import LinkerdCore
import LinkerdProxy
import LinkerdTestSupport
import NIOCore
import NIOSSL
import Testing
import X509

@Suite(
    "mTLS between proxies certified by the real identity server", .tags(.realIdentityServer), .timeLimit(.minutes(1)))
struct IdentityMTLSTests {
    let webName = meshIdentity("web", "emojivoto")
    let apiName = meshIdentity("api", "emojivoto")

    @Test("The server sees the client's identity; clients expecting another identity, or speaking TLS 1.2, fail")
    func mutualTLS() async throws {
        let pki = try IdentityTestPKI()
        try await withIdentityServer(pki) { server in
            server.registerToken("web-token", serviceAccount: "web", namespace: "emojivoto")
            server.registerToken("api-token", serviceAccount: "api", namespace: "emojivoto")
            let web = try server.proxy(webName, token: "web-token")
            let api = try server.proxy(apiName, token: "api-token")
            #expect(web.credentials.serverConfiguration() == nil)
            #expect(web.credentials.clientConfiguration(expectedIdentity: apiName) == nil)
            try await web.certify()
            try await api.certify()
            let apiServer = try #require(api.credentials.serverConfiguration())
            let anchorRoots = try pki.trustAnchors().derEncoded.map { try NIOSSLCertificate(bytes: $0, format: .der) }

            try await withTLSIdentityServer({ try apiServer.addHandlers(to: $0) }) { tlsServer in
                let port = tlsServer.port
                let client = try #require(web.credentials.clientConfiguration(expectedIdentity: apiName))
                #expect(client.serverName == apiName)
                let outcome = try await connectTLS(port: port) { try client.addHandlers(to: $0) }
                #expect(outcome.error == nil)
                #expect(outcome.received == webName, "the server saw the client as \(outcome.received)")
                #expect(outcome.verifiedPeerLeaf.flatMap(TLSPeerIdentity.name(of:)) == apiName)

                let dbName = meshIdentity("db", "emojivoto")
                let expectingDB = try #require(web.credentials.clientConfiguration(expectedIdentity: dbName))
                let refused = try await connectTLS(port: port) { try expectingDB.addHandlers(to: $0) }
                #expect(refused.received == "")
                #expect(
                    (refused.error as? PeerCertificateError)?.reason
                        == "the server certificate is not for the expected identity \(dbName.quoted): it has the "
                        + "subject alternative names DNS \(apiName.quoted)",
                    "\(String(describing: refused.error))")

                // A client without a certificate is accepted, without identity.
                var anonymous = TLSConfiguration.makeClientConfiguration()
                anonymous.trustRoots = .certificates(anchorRoots)
                anonymous.certificateVerification = .noHostnameVerification
                let anonymousContext = try NIOSSLContext(configuration: anonymous)
                let unauthenticated = try await connectTLS(port: port) {
                    try $0.addHandler(NIOSSLClientHandler(context: anonymousContext, serverHostname: apiName))
                }
                #expect(unauthenticated.error == nil)
                #expect(unauthenticated.received == "<none>")

                // TLS 1.2 is refused.
                anonymous.maximumTLSVersion = .tlsv12
                let oldContext = try NIOSSLContext(configuration: anonymous)
                let old = try await connectTLS(port: port) {
                    try $0.addHandler(NIOSSLClientHandler(context: oldContext, serverHostname: apiName))
                }
                #expect(old.error is NIOSSLError, "\(String(describing: old.error))")
                #expect(old.received == "")

                // A client certificate from another CA is rejected by the server.
                let stranger = try TestCertificateAuthority(commonName: "stranger")
                let forged = try stranger.issue(commonName: webName, dnsNames: [webName])
                var impostor = anonymous
                impostor.maximumTLSVersion = .tlsv13
                impostor.certificateChain = [
                    .certificate(try NIOSSLCertificate(bytes: Array(forged.certificatePEM.utf8), format: .pem))
                ]
                impostor.privateKey = .privateKey(
                    try NIOSSLPrivateKey(bytes: Array(forged.privateKeyPEM.utf8), format: .pem))
                let impostorContext = try NIOSSLContext(configuration: impostor)
                let rejected = try await connectTLS(port: port) {
                    try $0.addHandler(NIOSSLClientHandler(context: impostorContext, serverHostname: apiName))
                }
                #expect(rejected.received == "", "the server accepted a certificate the anchors did not sign")
                #expect(rejected.error != nil)
                let serverErrors = tlsServer.errors.value.compactMap { $0 as? PeerCertificateError }
                #expect(serverErrors.count == 1)
                #expect(
                    serverErrors.first?.reason.hasPrefix(
                        "the client certificate CN=\(webName) does not verify against the trust anchors at ") == true,
                    "\(serverErrors)")
            }

            // The other way round: web serves, api dials expecting web.
            let webServer = try #require(web.credentials.serverConfiguration())
            try await withTLSIdentityServer({ try webServer.addHandlers(to: $0) }) { tlsServer in
                let port = tlsServer.port
                let client = try #require(api.credentials.clientConfiguration(expectedIdentity: webName))
                let outcome = try await connectTLS(port: port) { try client.addHandlers(to: $0) }
                #expect(outcome.received == apiName)
            }
        }
    }
}
