import LinkerdProxyCore
import LinkerdTestSupport
import Testing

@Suite struct DetectionTLSTests {
    // MARK: Captured ClientHellos

    @Test(arguments: DetectionFixtures.captured.indices)
    func capturedClientHelloGivesItsServerName(index: Int) {
        let (name, bytes, serverName) = DetectionFixtures.captured[index]
        #expect(TLSDetection.detect(bytes) == .clientHello(serverName: serverName), "\(name)")
    }

    @Test(arguments: DetectionFixtures.captured.indices)
    func everyProperPrefixOfACapturedClientHelloNeedsMoreData(index: Int) {
        let (name, bytes, _) = DetectionFixtures.captured[index]
        for length in 0..<bytes.count {
            let result = TLSDetection.detect(bytes.prefix(length))
            #expect(result == .needMoreData, "\(name) cut to \(length) bytes gave \(result)")
        }
    }

    @Test(arguments: DetectionFixtures.captured.indices)
    func bytesAfterTheClientHelloAreIgnored(index: Int) {
        let (name, bytes, serverName) = DetectionFixtures.captured[index]
        let changeCipherSpec: [UInt8] = [0x14, 0x03, 0x03, 0x00, 0x01, 0x01]
        let applicationData: [UInt8] = [0x17, 0x03, 0x03, 0x00, 0x03, 0xAA, 0xBB, 0xCC]
        for suffix in [changeCipherSpec, applicationData, Array("GET / HTTP/1.1\r\n".utf8)] {
            #expect(TLSDetection.detect(bytes + suffix) == .clientHello(serverName: serverName), "\(name)")
        }
    }

    @Test(arguments: DetectionFixtures.captured.indices)
    func clientHelloSplitOverRecordsIsReassembled(index: Int) {
        let (name, bytes, serverName) = DetectionFixtures.captured[index]
        let handshake = Array(bytes.dropFirst(5))
        for fragmentSize in [1, 2, 5, 37, 64, 100, handshake.count - 1] {
            for minor: UInt8 in [0x01, 0x03] {
                let records = ClientHelloBuilder.records(carrying: handshake, fragmentSize: fragmentSize, minor: minor)
                #expect(
                    TLSDetection.detect(records) == .clientHello(serverName: serverName),
                    "\(name) in \(fragmentSize)-byte fragments"
                )
                let cut = records.count * 3 / 4
                #expect(TLSDetection.detect(records.prefix(cut)) == .needMoreData, "\(name) cut at \(cut)")
            }
        }
    }

    @Test func continuationRecordOfAnotherTypeIsNotTLS() {
        let handshake = Array(DetectionFixtures.curlTLS12ClientHello.dropFirst(5))
        var records = ClientHelloBuilder.records(carrying: handshake, fragmentSize: 100)
        records[105] = 0x17
        #expect(
            TLSDetection.detect(records.prefix(106))
                == .notTLS(reason: "record 2 has content type 0x17, not handshake (0x16)")
        )
    }

    // MARK: The header checks, each rejected by its own byte

    @Test(
        arguments: [
            (0, 0x17, "the record has content type 0x17, not handshake (0x16)"),
            (0, 0x47, "the record has content type 0x47, not handshake (0x16)"),
            (1, 0x02, "the record has version major 0x02, not 0x03"),
            (2, 0x00, "the record has version minor 0x00, not 0x01 or 0x03"),
            (2, 0x02, "the record has version minor 0x02, not 0x01 or 0x03"),
            (2, 0x04, "the record has version minor 0x04, not 0x01 or 0x03"),
            (5, 0x02, "the handshake message type is 2, not ClientHello (1)"),
            (6, 0x01, "the ClientHello is at least 65536 bytes long (its high length byte is not zero)"),
            (9, 0x02, "the client_version major is 0x02, not 0x03"),
            (10, 0x01, "the client_version minor is 0x01, not 0x03"),
            (10, 0x04, "the client_version minor is 0x04, not 0x03"),
        ] as [(Int, UInt8, String)])
    func headerMismatchIsNotTLSAsSoonAsItsByteArrives(offset: Int, byte: UInt8, reason: String) {
        var bytes = DetectionFixtures.opensslClientHello
        bytes[offset] = byte
        #expect(TLSDetection.detect(bytes.prefix(offset + 1)) == .notTLS(reason: reason))
        #expect(TLSDetection.detect(bytes) == .notTLS(reason: reason))
    }

    @Test func recordVersionMinorMayBeOneOrThree() {
        for minor: UInt8 in [0x01, 0x03] {
            var bytes = DetectionFixtures.curlTLS12ClientHello
            bytes[2] = minor
            #expect(TLSDetection.detect(bytes) == .clientHello(serverName: DetectionFixtures.curlServerName))
        }
    }

    @Test func plaintextIsNotTLSFromItsFirstByte() {
        #expect(
            TLSDetection.detect(Array("G".utf8))
                == .notTLS(reason: "the record has content type 0x47, not handshake (0x16)")
        )
        #expect(TLSDetection.detect(HTTPDetection.http2PrefacePrefix) != .needMoreData)
        #expect(TLSDetection.detect([UInt8]()) == .needMoreData)
    }

    // MARK: Lengths

    @Test func recordLongerThan8192IsNotTLS() {
        #expect(
            TLSDetection.detect([0x16, 0x03, 0x01, 0x20, 0x01])
                == .notTLS(reason: "the record is 8193 bytes long, more than 8192")
        )
        #expect(TLSDetection.detect([0x16, 0x03, 0x01, 0x20, 0x00]) == .needMoreData)
    }

    @Test func emptyRecordIsNotTLS() {
        #expect(
            TLSDetection.detect([0x16, 0x03, 0x03, 0x00, 0x00, 0x01])
                == .notTLS(reason: "the record is empty, which handshake records never are")
        )
    }

    @Test func clientHelloLongerThan8192IsNotTLS() {
        #expect(
            TLSDetection.detect([0x16, 0x03, 0x01, 0x20, 0x00, 0x01, 0x00, 0x20, 0x01])
                == .notTLS(reason: "the ClientHello length is 8193, more than 8192")
        )
    }

    @Test func vectorOverrunningItsContainerIsNotTLS() {
        var builder = ClientHelloBuilder.withServerName("a.example")
        builder.cipherSuites = [0x13, 0x01]
        var bytes = builder.record
        // The cipher suites length sits after the header (5 + 4), version (2), random (32) and session id (1 + 32).
        let cipherSuitesLength = 5 + 4 + 2 + 32 + 1 + 32
        #expect(bytes[cipherSuitesLength + 1] == 2)
        bytes[cipherSuitesLength] = 0x10
        #expect(
            TLSDetection.detect(bytes)
                == .notTLS(reason: "the cipher suites length is 4098, but only 24 bytes remain for it")
        )
    }

    @Test func extensionOverrunningTheExtensionsIsNotTLS() {
        var builder = ClientHelloBuilder()
        builder.extensions = [(0x0017, [])]
        var bytes = builder.record
        bytes[bytes.count - 1] = 0x05
        #expect(
            TLSDetection.detect(bytes)
                == .notTLS(reason: "the extension length is 5, but only 0 bytes remain for it")
        )
    }

    @Test func bytesBetweenTheExtensionsAndTheEndOfTheClientHelloAreNotTLS() {
        var builder = ClientHelloBuilder.withServerName("a.example")
        builder.extensions?.append((0x0017, []))
        var handshake = builder.handshakeMessage
        // Grow the ClientHello by one byte without growing the extensions vector.
        handshake[3] += 1
        handshake.append(0x00)
        let bytes = ClientHelloBuilder.records(carrying: handshake, fragmentSize: .max)
        #expect(
            TLSDetection.detect(bytes) == .notTLS(reason: "the ClientHello continues for 1 byte after its extensions")
        )
    }

    @Test func clientHelloTooShortForItsRandomIsNotTLS() {
        let handshake: [UInt8] = [0x01, 0x00, 0x00, 0x05, 0x03, 0x03, 0x00, 0x00, 0x00]
        let bytes = ClientHelloBuilder.records(carrying: handshake, fragmentSize: .max)
        #expect(
            TLSDetection.detect(bytes) == .notTLS(reason: "only 3 bytes remain for the random, which takes 32")
        )
    }

    // MARK: Server names

    @Test func clientHelloWithoutExtensionsHasNoServerName() {
        var builder = ClientHelloBuilder()
        builder.extensions = nil
        #expect(TLSDetection.detect(builder.record) == .clientHello(serverName: nil))
    }

    @Test func clientHelloWithOtherExtensionsOnlyHasNoServerName() {
        var builder = ClientHelloBuilder()
        builder.extensions = [(0x0017, []), (0x002B, [0x02, 0x03, 0x04])]
        #expect(TLSDetection.detect(builder.record) == .clientHello(serverName: nil))
    }

    @Test func serverNameExtensionAfterOthersIsFound() {
        var builder = ClientHelloBuilder()
        builder.extensions = [
            (0x0017, []),
            (0x000A, [0x00, 0x02, 0x00, 0x1D]),
            (0, ClientHelloBuilder.serverNameExtension([(0, Array("b.example".utf8))])),
            (0x002B, [0x02, 0x03, 0x04]),
        ]
        #expect(TLSDetection.detect(builder.record) == .clientHello(serverName: "b.example"))
    }

    @Test func firstHostNameEntryIsUsedAndOtherNameTypesSkipped() {
        var builder = ClientHelloBuilder()
        builder.extensions = [
            (
                0,
                ClientHelloBuilder.serverNameExtension([
                    (7, Array("other".utf8)), (0, Array("c.example".utf8)), (0, Array("d.example".utf8)),
                ])
            )
        ]
        #expect(TLSDetection.detect(builder.record) == .clientHello(serverName: "c.example"))
    }

    @Test func emptyServerNameListHasNoServerName() {
        var builder = ClientHelloBuilder()
        builder.extensions = [(0, ClientHelloBuilder.serverNameExtension([]))]
        #expect(TLSDetection.detect(builder.record) == .clientHello(serverName: nil))
    }

    @Test(arguments: [
        ("web.emojivoto.svc.cluster.local", "web.emojivoto.svc.cluster.local"),
        ("Web.EmojiVoto.SVC.cluster.local", "web.emojivoto.svc.cluster.local"),
        ("localhost.", "localhost."),
        ("_grpc._tcp.example.com", "_grpc._tcp.example.com"),
        ("a", "a"),
        ("1a.example", "1a.example"),
        ("x-1.example", "x-1.example"),
        (String(repeating: "a", count: 63) + ".example", String(repeating: "a", count: 63) + ".example"),
    ])
    func validServerNameIsReportedLowercased(sent: String, reported: String) {
        let builder = ClientHelloBuilder.withServerName(sent)
        #expect(TLSDetection.detect(builder.record) == .clientHello(serverName: reported))
        #expect(TLSDetection.validServerName(Array(sent.utf8)) == reported)
    }

    @Test(arguments: [
        "",
        ".",
        "..",
        ".example",
        "a..example",
        "a.example..",
        "-a.example",
        "a-.example",
        "a.-example",
        "a b.example",
        "a*.example",
        "*.example",
        "a:b",
        "127.0.0.1",
        "example.123",
        "ünïcode.example",
        String(repeating: "a", count: 64) + ".example",
        String(repeating: "abcdefghi.", count: 25) + "abcd",
    ])
    func invalidServerNameIsNoServerName(sent: String) {
        let builder = ClientHelloBuilder.withServerName(sent)
        #expect(TLSDetection.detect(builder.record) == .clientHello(serverName: nil))
        #expect(TLSDetection.validServerName(Array(sent.utf8)) == nil)
    }

    @Test func longestValidServerNameHas253Characters() {
        let longest = String(repeating: "abcdefghi.", count: 25) + "abc"
        #expect(longest.utf8.count == 253)
        #expect(TLSDetection.validServerName(Array(longest.utf8)) == longest)
        #expect(TLSDetection.validServerName(Array((longest + ".").utf8)) == longest + ".")
    }

    @Test func serverNameExtensionLongerThanItsListIsNotTLS() {
        var builder = ClientHelloBuilder()
        builder.extensions = [(0, ClientHelloBuilder.serverNameExtension([(0, Array("a.example".utf8))]) + [0x00])]
        #expect(
            TLSDetection.detect(builder.record)
                == .notTLS(reason: "the server_name extension continues for 1 byte after its list")
        )
    }

    @Test func serverNameOverrunningItsListIsNotTLS() {
        var data = ClientHelloBuilder.serverNameExtension([(0, Array("a.example".utf8))])
        data[4] += 1
        var builder = ClientHelloBuilder()
        builder.extensions = [(0, data)]
        #expect(
            TLSDetection.detect(builder.record)
                == .notTLS(reason: "the server name length is 10, but only 9 bytes remain for it")
        )
    }

    @Test func serverNameWithControlBytesIsNoServerName() {
        var builder = ClientHelloBuilder()
        builder.extensions = [(0, ClientHelloBuilder.serverNameExtension([(0, [0x61, 0x00, 0x62])]))]
        #expect(TLSDetection.detect(builder.record) == .clientHello(serverName: nil))
    }

    // MARK: Arbitrary input

    @Test func randomBytesNeverCrashAndRarelyLookLikeTLS() {
        var random = SeededRandom(seed: 0x6C69_6E6B_6572_64)
        var clientHellos = 0
        for _ in 0..<2_000 {
            let length = Int.random(in: 0...600, using: &random)
            if case .clientHello = TLSDetection.detect(random.bytes(count: length)) {
                clientHellos += 1
            }
        }
        #expect(clientHellos == 0)
    }

    @Test func randomBytesAfterAValidHeaderNeverCrash() {
        var random = SeededRandom(seed: 42)
        for _ in 0..<2_000 {
            let length = Int.random(in: 0...400, using: &random)
            let header: [UInt8] = [0x16, 0x03, 0x01] + ClientHelloBuilder.uint16(length) + [0x01, 0x00]
            let bytes = header + random.bytes(count: length)
            _ = TLSDetection.detect(bytes)
            _ = TLSDetection.detect(bytes.prefix(Int.random(in: 0...bytes.count, using: &random)))
        }
    }

    /// Corrupts real ClientHellos and checks the answers are consistent as bytes arrive: once a prefix decides,
    /// every longer input decides the same way.
    @Test(arguments: DetectionFixtures.captured.indices)
    func corruptedClientHellosDecideConsistentlyAsBytesArrive(index: Int) {
        let original = DetectionFixtures.captured[index].bytes
        var random = SeededRandom(seed: UInt64(index) + 7)
        for _ in 0..<3_000 {
            var bytes = original
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                bytes[Int.random(in: 0..<bytes.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
            }
            let whole = TLSDetection.detect(bytes)
            let prefix = TLSDetection.detect(bytes.prefix(Int.random(in: 0...bytes.count, using: &random)))
            if prefix != .needMoreData {
                #expect(prefix == whole, "\(bytes)")
            }
        }
    }

    @Test func collectionsWithoutContiguousStorageAreDetectedToo() {
        let bytes = DetectionFixtures.curlTLS12ClientHello
        let lazyBytes = bytes.lazy.map { $0 }
        #expect(TLSDetection.detect(lazyBytes) == .clientHello(serverName: DetectionFixtures.curlServerName))
    }
}
