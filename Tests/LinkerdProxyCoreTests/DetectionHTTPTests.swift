import LinkerdProxyCore
import LinkerdTestSupport
import Testing

@Suite struct DetectionHTTPTests {
    @Test(arguments: [
        "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
        "GET / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\n\n",
        "GET / HTTP/1.0\r\n\r\n",
        "HEAD /health HTTP/1.0\r\n",
        "POST /api/v1/things?id=7&x=%20 HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
        "PUT /a HTTP/1.1\r\nx-custom: 1\r\n",
        "DELETE /things/7 HTTP/1.1\r\n",
        "PATCH /a HTTP/1.1\n",
        "OPTIONS * HTTP/1.1\r\n",
        "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
        "TRACE / HTTP/1.1\r\n",
        "PROPFIND /dav/ HTTP/1.1\r\n",
        "M-SEARCH * HTTP/1.1\r\n",
        "get / HTTP/1.1\r\n",
        "GET http://example.com/index.html HTTP/1.1\r\n",
        "GET http://[::1]:8080/a?b=c#d HTTP/1.1\r\n",
        "GET /ünïcödé HTTP/1.1\r\n",
        "GET /{braces}|pipe HTTP/1.1\r\n",
        "\r\nGET / HTTP/1.1\r\n",
        "\n\nGET / HTTP/1.1\r\n",
    ])
    func requestLinesAreHTTP1(request: String) {
        #expect(HTTPDetection.detect(firstRead: Array(request.utf8)) == .http1)
    }

    /// A first read may end anywhere in the request line: cut short, it still is HTTP/1 from 14 bytes on.
    @Test(arguments: [
        "GET / HTTP/1.1",
        "GET / HTTP/1.1\r",
        "GET / HTTP/1.0\r\n",
        "GET / HTTP/1.1\r\n\r",
        "GET /index.html",
        "GET /index.html HT",
        "POST /a HTTP/1.",
        "DELETE /things/",
        "OPTIONS * HTTP/",
        "VERYLONGMETHODNAME",
    ])
    func cutShortRequestLinesAreHTTP1(request: String) {
        #expect(HTTPDetection.detect(firstRead: Array(request.utf8)) == .http1)
    }

    @Test(arguments: [
        "PRI * HTTP/2.0",
        "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\u{0}\u{0}\u{12}\u{4}\u{0}\u{0}\u{0}\u{0}\u{0}",
    ])
    func http2PrefaceIsHTTP2(bytes: String) {
        #expect(HTTPDetection.detect(firstRead: Array(bytes.utf8)) == .http2)
    }

    @Test(arguments: [
        "",
        "G",
        "GET / HTTP/1.",
        "GET / HTTP/1",
        "PRI * HTTP/2.",
        "GET  / HTTP/1.1\r\n",
        "GET /  HTTP/1.1\r\n",
        " GET / HTTP/1.1\r\n",
        "GET / HTTP/1.1 \r\n",
        "GET\t/ HTTP/1.1\r\n",
        "GET / HTTP/2.0\r\n\r\n",
        "GET / HTTP/1.2\r\n\r\n",
        "GET / HTTP/1.10\r\n",
        "GET / http/1.1\r\n\r\n",
        "GET /a b HTTP/1.1\r\n",
        "GET /<script> HTTP/1.1\r\n",
        "GET /\"quoted\" HTTP/1.1\r\n",
        "G@T / HTTP/1.1\r\n",
        "(GET) / HTTP/1.1\r\n",
        "GET / HTTP/1.1\rX\r\n",
        "GET / HTTP/1.1\r\n: no-name\r\n",
        "GET / HTTP/1.1\r\n folded\r\n",
        "GET / HTTP/1.1\r\n\rX",
        "\r\r\nGET / HTTP/1.1\r\n",
        "SSH-2.0-OpenSSH_9.2p1\r\n",
        "220 smtp.example.com ESMTP\r\n",
        "*1\r\n$4\r\nPING\r\n",
        "HTTP/1.1 200 OK\r\n\r\n",
    ])
    func otherBytesAreNotHTTP(bytes: String) {
        #expect(HTTPDetection.detect(firstRead: Array(bytes.utf8)) == .notHTTP)
    }

    @Test func controlBytesInTheTargetAreNotHTTP() {
        for byte: UInt8 in [0x00, 0x09, 0x0D, 0x7F] {
            let request = Array("GET /a".utf8) + [byte] + Array("b HTTP/1.1\r\n".utf8)
            #expect(HTTPDetection.detect(firstRead: request) == .notHTTP, "byte \(byte)")
        }
    }

    @Test func tlsClientHelloIsNotHTTP() {
        for (name, bytes, _) in DetectionFixtures.captured {
            #expect(HTTPDetection.detect(firstRead: bytes) == .notHTTP, "\(name)")
        }
    }

    @Test func onlyTheFirst1024BytesCount() {
        let longTarget = "GET /" + String(repeating: "a", count: 1100) + " HTTP/1.1\r\n"
        #expect(HTTPDetection.detect(firstRead: Array(longTarget.utf8)) == .http1)
        // The invalid byte at 1024 is beyond what detection reads.
        let request = Array(("GET /" + String(repeating: "a", count: 1019)).utf8) + [0x00] + Array(" HTTP/1.1".utf8)
        #expect(request[HTTPDetection.maxReadLength] == 0x00)
        #expect(HTTPDetection.detect(firstRead: request) == .http1)
        // One byte earlier, it counts.
        let shorter = Array(("GET /" + String(repeating: "a", count: 1018)).utf8) + [0x00] + Array(" HTTP/1.1".utf8)
        #expect(HTTPDetection.detect(firstRead: shorter) == .notHTTP)
    }

    @Test func fourteenBytesIsTheMinimum() {
        let request = Array("GET / HTTP/1.1\r\n".utf8)
        #expect(HTTPDetection.minimumHTTP1Length == 14)
        for length in 0..<request.count {
            let expected: HTTPDetection = length < 14 ? .notHTTP : .http1
            #expect(HTTPDetection.detect(firstRead: request.prefix(length)) == expected, "\(length) bytes")
        }
    }

    @Test func prefacePrefixMustBeComplete() {
        let preface = HTTPDetection.http2PrefacePrefix
        #expect(preface.count == 14)
        for length in 0..<preface.count {
            #expect(HTTPDetection.detect(firstRead: preface.prefix(length)) == .notHTTP, "\(length) bytes")
        }
    }

    @Test func randomBytesNeverCrash() {
        var random = SeededRandom(seed: 1024)
        let alphabet = Array("GET /HTP1.0\r\n :abcPRI*2".utf8)
        for _ in 0..<2_000 {
            let length = Int.random(in: 0...40, using: &random)
            let bytes = (0..<length).map { _ in alphabet.randomElement(using: &random) ?? 0 }
            _ = HTTPDetection.detect(firstRead: bytes)
            _ = HTTPDetection.detect(firstRead: random.bytes(count: Int.random(in: 0...1200, using: &random)))
        }
    }
}
