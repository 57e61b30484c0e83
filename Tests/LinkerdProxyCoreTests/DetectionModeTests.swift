import LinkerdProxyCore
import Testing

@Suite struct DetectionModeTests {
    private static let request = Array("GET /ready HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
    private static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
    private static let postgresStartup: [UInt8] = [0x00, 0x00, 0x00, 0x08, 0x04, 0xD2, 0x16, 0x2F]

    @Test func bufferLimits() {
        #expect(DetectionMode.tls.bufferLimit == 8192)
        #expect(DetectionMode.tlsThenHTTP.bufferLimit == 8192)
        #expect(DetectionMode.http.bufferLimit == 1024)
    }

    @Test(arguments: [DetectionMode.tls, .http, .tlsThenHTTP])
    func nothingBufferedNeedsMore(mode: DetectionMode) {
        #expect(mode.decide(buffered: [UInt8]()) == nil)
    }

    @Test func tlsModeFindsClientHellosAndCallsEverythingElseOpaque() {
        for (name, bytes, serverName) in DetectionFixtures.captured {
            #expect(DetectionMode.tls.decide(buffered: bytes) == .tls(serverName: serverName), "\(name)")
            #expect(DetectionMode.tls.decide(buffered: bytes.dropLast()) == nil, "\(name)")
        }
        #expect(DetectionMode.tls.decide(buffered: Self.request) == .opaque)
        #expect(DetectionMode.tls.decide(buffered: Self.preface) == .opaque)
        #expect(DetectionMode.tls.decide(buffered: Self.postgresStartup) == .opaque)
    }

    @Test func tlsThenHTTPRunsHTTPDetectionOnTheBytesThatAreNotAClientHello() {
        let clientHello = DetectionFixtures.curlTLS12ClientHello
        #expect(
            DetectionMode.tlsThenHTTP.decide(buffered: clientHello)
                == .tls(serverName: DetectionFixtures.curlServerName)
        )
        #expect(DetectionMode.tlsThenHTTP.decide(buffered: clientHello.prefix(100)) == nil)
        #expect(DetectionMode.tlsThenHTTP.decide(buffered: Self.request) == .http1)
        #expect(DetectionMode.tlsThenHTTP.decide(buffered: Self.preface) == .http2)
        #expect(DetectionMode.tlsThenHTTP.decide(buffered: Self.postgresStartup) == .opaque)
        // Not TLS from the first byte, and too short for HTTP: decided, like upstream's single read.
        #expect(DetectionMode.tlsThenHTTP.decide(buffered: Array("G".utf8)) == .opaque)
    }

    @Test func httpModeDecidesOnTheFirstRead() {
        #expect(DetectionMode.http.decide(buffered: Self.request) == .http1)
        #expect(DetectionMode.http.decide(buffered: Self.preface) == .http2)
        #expect(DetectionMode.http.decide(buffered: Self.request.prefix(13)) == .opaque)
        #expect(DetectionMode.http.decide(buffered: DetectionFixtures.opensslClientHello) == .opaque)
    }

    /// A record that announces a ClientHello bigger than the buffer is given up on once the buffer is full.
    @Test(arguments: [DetectionMode.tls, .tlsThenHTTP])
    func clientHelloThatDoesNotFitTheBufferIsOpaque(mode: DetectionMode) {
        // An 8192-byte record holding an 8188-byte ClientHello whose cipher suites (8149 bytes) run past the buffer.
        let header: [UInt8] = [0x16, 0x03, 0x01, 0x20, 0x00, 0x01, 0x00, 0x1F, 0xFC, 0x03, 0x03]
        let beforeCipherSuites = header + Array(repeating: 0x5A, count: 32) + [0x00, 0x1F, 0xD5]
        let bytes = beforeCipherSuites + Array(repeating: 0x13, count: 8149) + [0x01, 0x00]
        #expect(TLSDetection.detect(bytes) == .clientHello(serverName: nil))
        #expect(mode.decide(buffered: bytes.prefix(8191)) == nil)
        #expect(mode.decide(buffered: bytes.prefix(8192)) == .opaque)
        #expect(mode.decide(buffered: bytes) == .opaque)
    }

    @Test func clientHelloSpanningRecordsDecidesOnceComplete() {
        let handshake = Array(DetectionFixtures.opensslClientHello.dropFirst(5))
        let records = ClientHelloBuilder.records(carrying: handshake, fragmentSize: 50)
        #expect(DetectionMode.tlsThenHTTP.decide(buffered: records.dropLast()) == nil)
        #expect(
            DetectionMode.tlsThenHTTP.decide(buffered: records)
                == .tls(serverName: DetectionFixtures.opensslServerName)
        )
    }
}
