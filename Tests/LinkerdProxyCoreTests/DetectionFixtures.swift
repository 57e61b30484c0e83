/// ClientHellos captured from real clients, and builders for synthetic ones.
enum DetectionFixtures {
    /// `openssl s_client -servername foo.ns.serviceaccount.identity.linkerd.cluster.local -connect 127.0.0.1:18443`
    /// (OpenSSL 3.0.19, TLS 1.3), captured by a Python listener that saved the first record.
    static let opensslClientHello = bytes(
        hex: """
            16030101610100015d0303d2cebae229fc7a3b13a829510bbaa3e839658eb020fe4771c6b4795d1f0c2b4920c21eab0d
            9837c7df530e8cba28d5839d4cf49c361d674d42b790d2121868c749003e130213031301c02cc030009fcca9cca8ccaa
            c02bc02f009ec024c028006bc023c0270067c00ac0140039c009c0130033009d009c003d003c0035002f00ff010000d6
            000000390037000034666f6f2e6e732e736572766963656163636f756e742e6964656e746974792e6c696e6b6572642e
            636c75737465722e6c6f63616c000b000403000102000a00160014001d0017001e001900180100010101020103010400
            2300000016000000170000000d002a0028040305030603080708080809080a080b080408050806040105010601030303
            010302040205020602002b0009080304030303020301002d00020101003300260024001d00202926ffb911d6fd221405
            6528af15da64ff41af16e473a394143a3c34ca080b77
            """
    )
    static let opensslServerName = "foo.ns.serviceaccount.identity.linkerd.cluster.local"

    /// `curl --tlsv1.2 --tls-max 1.2 --resolve web.emojivoto.svc.cluster.local:18444:127.0.0.1
    /// https://web.emojivoto.svc.cluster.local:18444/` (curl 7.88.1, OpenSSL 3.0.19).
    static let curlTLS12ClientHello = bytes(
        hex: """
            16030100ed010000e903039807bb097b171282869fcdc1fa70797bd8a8ae451d23e717a9901473ee57f6ec000038c02c
            c030009fcca9cca8ccaac02bc02f009ec024c028006bc023c0270067c00ac0140039c009c0130033009d009c003d003c
            0035002f00ff0100008800000024002200001f7765622e656d6f6a69766f746f2e7376632e636c75737465722e6c6f63
            616c000b000403000102000a000c000a001d0017001e001900180010000e000c02683208687474702f312e3100160000
            00170000000d002a0028040305030603080708080809080a080b08040805080604010501060103030301030204020502
            0602
            """
    )
    static let curlServerName = "web.emojivoto.svc.cluster.local"

    /// `curl --tlsv1.2 https://127.0.0.1:18445/`: TLS 1.3, no SNI because the host is an IP address, padded to 512
    /// bytes.
    static let curlNoSNIClientHello = bytes(
        hex: """
            1603010200010001fc03032edcab9805d361de0cb16be21fb0cd3d4e98402b76f599e312df5e6d4b77080f20954c008c
            929ab9dcdfbda12e469c35d7b531e6409677cd9ca25fc6ba63db58a2003e130213031301c02cc030009fcca9cca8ccaa
            c02bc02f009ec024c028006bc023c0270067c00ac0140039c009c0130033009d009c003d003c0035002f00ff01000175
            000b000403000102000a00160014001d0017001e00190018010001010102010301040010000e000c0268320868747470
            2f312e31001600000017000000310000000d002a0028040305030603080708080809080a080b08040805080604010501
            0601030303010302040205020602002b00050403040303002d00020101003300260024001d0020b444ee10d3dde956ba
            cb3ca3b2c446adec044f8aff7005a434a0028d26660a4e001500ca000000000000000000000000000000000000000000
            000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
            000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
            000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
            00000000000000000000000000000000000000000000000000000000000000000000000000
            """
    )

    /// The three captures, each with the server name it carries.
    static let captured: [(name: String, bytes: [UInt8], serverName: String?)] = [
        ("openssl s_client, TLS 1.3, SNI", opensslClientHello, opensslServerName),
        ("curl, TLS 1.2, SNI", curlTLS12ClientHello, curlServerName),
        ("curl, TLS 1.3, no SNI", curlNoSNIClientHello, nil),
    ]

    /// Decodes hexadecimal digits, ignoring whitespace.
    static func bytes(hex: String) -> [UInt8] {
        let digits = hex.unicodeScalars.filter { !$0.properties.isWhitespace }.compactMap {
            Character($0).hexDigitValue
        }
        return stride(from: 0, to: digits.count - 1, by: 2).map { UInt8(digits[$0] << 4 | digits[$0 + 1]) }
    }
}

/// Builds ClientHello handshake messages and the records that carry them.
struct ClientHelloBuilder {
    var clientVersion: [UInt8] = [0x03, 0x03]
    var sessionID: [UInt8] = Array(repeating: 0xAB, count: 32)
    var cipherSuites: [UInt8] = [0x13, 0x01, 0x13, 0x02]
    var compressionMethods: [UInt8] = [0x00]
    /// `nil` leaves the extensions vector out entirely.
    var extensions: [(type: UInt16, data: [UInt8])]? = []

    /// A ClientHello whose only extension is `server_name` with one `host_name`.
    static func withServerName(_ name: String) -> ClientHelloBuilder {
        var builder = ClientHelloBuilder()
        builder.extensions = [(0, serverNameExtension([(0, Array(name.utf8))]))]
        return builder
    }

    /// The data of a `server_name` extension with the given (name type, name) entries.
    static func serverNameExtension(_ entries: [(type: UInt8, name: [UInt8])]) -> [UInt8] {
        vector16(entries.flatMap { [$0.type] + vector16($0.name) })
    }

    /// The handshake message: type, 24-bit length, body.
    var handshakeMessage: [UInt8] {
        var body = clientVersion + Array(repeating: 0x5A, count: 32)
        body += [UInt8(sessionID.count)] + sessionID
        body += Self.vector16(cipherSuites)
        body += [UInt8(compressionMethods.count)] + compressionMethods
        if let extensions {
            body += Self.vector16(extensions.flatMap { Self.uint16($0.type) + Self.vector16($0.data) })
        }
        return [0x01, UInt8(body.count >> 16)] + Self.uint16(body.count & 0xFFFF) + body
    }

    /// The handshake message in one record.
    var record: [UInt8] {
        Self.records(carrying: handshakeMessage, fragmentSize: .max)
    }

    /// `handshake` cut into fragments of at most `fragmentSize` bytes, each in its own handshake record.
    static func records(carrying handshake: [UInt8], fragmentSize: Int, minor: UInt8 = 0x01) -> [UInt8] {
        stride(from: 0, to: handshake.count, by: fragmentSize).flatMap { start in
            let fragment = handshake[start..<min(start + fragmentSize, handshake.count)]
            return [0x16, 0x03, minor] + uint16(fragment.count) + fragment
        }
    }

    static func vector16(_ bytes: [UInt8]) -> [UInt8] {
        uint16(bytes.count) + bytes
    }

    static func uint16(_ value: some BinaryInteger) -> [UInt8] {
        [UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value)]
    }
}
