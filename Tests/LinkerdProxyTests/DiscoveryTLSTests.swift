import GRPCNIOTransportHTTP2Posix
import LinkerdCore
import LinkerdProxy
import LinkerdProxyCore
import LinkerdProxyTestSupport
import LinkerdTestSupport
import Logging
import Testing

/// Records log events with their metadata.
struct DiscoveryLogRecorder: LogHandler {
    let records: Locked<[(message: String, metadata: [String: String])]>
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let fields = metadata.merging(event.metadata ?? [:]) { $1 }.mapValues { "\($0)" }
        records.withLock { $0.append((event.message.description, fields)) }
    }
}

@Suite(
    "The destination client over mesh TLS, certified by the real identity server", .tags(.realIdentityServer),
    .timeLimit(.minutes(1)))
struct DiscoveryTLSTests {
    let destinationName = "linkerd-destination.linkerd.serviceaccount.identity.linkerd.cluster.local"

    @Test("It connects once the proxy has a certificate, and only to a service proving the expected identity")
    func mutualTLS() async throws {
        let pki = try IdentityTestPKI()
        let serving = try pki.anchor.issue(commonName: destinationName, dnsNames: [destinationName])
        let transportSecurity = HTTP2ServerTransport.Posix.TransportSecurity.tls(
            certificateChain: [.bytes(Array(serving.certificatePEM.utf8), format: .pem)],
            privateKey: .bytes(Array(serving.privateKeyPEM.utf8), format: .pem))
        try await withIdentityServer(pki) { identity in
            identity.registerToken("web-token", serviceAccount: "web", namespace: "emojivoto")
            let proxy = try identity.proxy(webPodIdentity, token: "web-token")
            try await withFakeDestinationServer(transportSecurity: transportSecurity) { server in
                let get = server.expectGet(path: webAuthority)
                get.send(.noEndpoints(exists: true))
                let security = DestinationClient.Security.mutualTLS(
                    credentials: proxy.credentials, serverName: try TLSServerName(parsing: destinationName))
                try await withDestinationClient(server, security: security) { client in
                    let following = Task {
                        var updates = client.resolve(webAuthority).makeAsyncIterator()
                        return try await updates.next()
                    }
                    // Without a certificate the client does not connect; the request waits.
                    try await Task.sleep(for: .milliseconds(200))
                    #expect(server.calls.isEmpty)
                    try await proxy.certify()
                    let first = try await following.value
                    #expect(first == .noEndpoints(exists: true))
                }
                #expect(server.calls.map(\.contextToken) == [discoveryContextToken])

                // A client expecting another identity fails the handshake and never reaches the service.
                let records = Locked<[(message: String, metadata: [String: String])]>([])
                let logger = Logger(label: "test.destination") { _ in DiscoveryLogRecorder(records: records) }
                let policyName = "linkerd-policy.linkerd.serviceaccount.identity.linkerd.cluster.local"
                let expectingPolicy = DestinationClient.Security.mutualTLS {
                    proxy.credentials.clientConfiguration(expectedIdentity: policyName)
                }
                try await withDestinationClient(server, security: expectingPolicy, logger: logger) { client in
                    let following = Task { for try await _ in client.resolve(webAuthority) {} }
                    try await eventually("a rejected handshake is logged") {
                        records.withLock { records in
                            records.contains {
                                $0.metadata["reason"]?.contains(
                                    "the server certificate is not for the expected identity \(policyName.quoted)")
                                    == true
                            }
                        }
                    }
                    following.cancel()
                    _ = await following.result
                }
                #expect(server.calls.count == 1)
            }
        }
    }
}
