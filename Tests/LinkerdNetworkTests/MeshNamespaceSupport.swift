import Crypto
import Foundation
import KubeClient
import KubeModel
import KubeTestServer
import LinkerdIdentityServer
import LinkerdNetworkTestSupport
import LinkerdProxy
import LinkerdTestSupport
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOPosix
import ServiceLifecycle
import SwiftASN1
import X509

// Helpers of MeshNamespaceTests: the mesh's PKI and identity service, the application of the server pod, a relay
// that exposes a loopback server to the pods, commands in the root namespace, and a reader of packet captures.

// MARK: - Identity

/// A mesh PKI: a trust anchor and an issuer CA it signed, written where the identity service reads them (a copy of
/// LinkerdProxyTests' `IdentityTestPKI`, which test targets cannot share).
struct MeshPKI: Sendable {
    let anchor: TestCertificateAuthority
    let trustAnchorsPath: String
    let issuerDirectory: String

    init(directory: String) throws {
        let anchor = try TestCertificateAuthority(commonName: "root.linkerd.cluster.local")
        let authorityKeyIdentifier = try anchor.certificate.extensions.subjectKeyIdentifier?.keyIdentifier
        let key = P256.Signing.PrivateKey()
        let publicKey = Certificate.PublicKey(key.publicKey)
        let issuer = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: publicKey,
            notValidBefore: Date() - 3600, notValidAfter: Date() + 365 * 86_400, issuer: anchor.certificate.subject,
            subject: try DistinguishedName { CommonName("identity.linkerd.cluster.local") },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: publicKey)
                AuthorityKeyIdentifier(keyIdentifier: authorityKeyIdentifier)
            },
            issuerPrivateKey: Certificate.PrivateKey(anchor.privateKey))
        trustAnchorsPath = directory + "/ca-bundle.crt"
        issuerDirectory = directory + "/issuer"
        try FileManager.default.createDirectory(atPath: issuerDirectory, withIntermediateDirectories: true)
        try anchor.certificatePEM.write(toFile: trustAnchorsPath, atomically: true, encoding: .utf8)
        try issuer.serializeAsPEM().pemString.write(
            toFile: issuerDirectory + "/crt.pem", atomically: true, encoding: .utf8)
        try key.pemRepresentation.write(toFile: issuerDirectory + "/key.pem", atomically: true, encoding: .utf8)
        self.anchor = anchor
    }
}

/// Runs the real identity service (`IdentityController`, TLS) on `host` and a free port, against the Kubernetes API
/// test server, for the duration of `body`, which gets the port and the API server (to register tokens).
func withMeshIdentityService(
    _ pki: MeshPKI, host: String, _ body: (_ port: Int, _ api: KubeTestServer) async throws -> Void
) async throws {
    try await withServerAndClient { api, client in
        _ = try api.put(Namespace(metadata: ObjectMeta(name: "linkerd")))
        var settings = IdentityController.Settings.loopback(
            issuerDirectory: pki.issuerDirectory, trustAnchorsPath: pki.trustAnchorsPath)
        settings.host = host
        settings.permissionCheck = .init(attempts: 3, initialDelay: .milliseconds(20))
        var logger = Logger(label: "test.mesh.identity")
        logger.logLevel = .warning
        let controller = try IdentityController(settings: settings, api: client, logger: logger)
        let group = ServiceGroup(services: controller.services, logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            do {
                let port = try await controller.server.waitUntilBound()
                try await body(port, api)
            } catch {
                await group.triggerGracefulShutdown()
                try? await tasks.waitForAll()
                throw error
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }
}

// MARK: - The server pod's application

/// The application of the server pod: HTTP/1.x and HTTP/2 with prior knowledge on one port of the pod, answering every
/// request with `200` and the body `client-id=<l5d-client-id or none> version=<HTTP version> uri=<target>\n` (the
/// client id also in `x-seen-client-id`), and recording what it received.
final class MeshEchoApp: Sendable {
    struct SeenRequest: Sendable, CustomStringConvertible {
        var uri: String
        var version: String
        var clientID: String?

        var description: String { "\(uri) HTTP/\(version) l5d-client-id: \(clientID ?? "<none>")" }
    }

    private let seen = Locked<[SeenRequest]>([])

    var requests: [SeenRequest] { seen.value }

    fileprivate func record(_ request: SeenRequest) {
        seen.withLock { $0.append(request) }
    }

    /// Listens on `0.0.0.0:port` in `pod`; the lab closes the listener at teardown.
    static func start(in pod: LabPod, port: Int) async throws -> MeshEchoApp {
        let app = MeshEchoApp()
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        PrefaceSniffer { channel, http2 in try app.configure(channel, http2: http2) })
                }
            }
        _ = try await pod.bind(bootstrap, host: "0.0.0.0", port: port)
        return app
    }

    private func configure(_ channel: any Channel, http2: Bool) throws {
        let pipeline = channel.pipeline.syncOperations
        if http2 {
            _ = try pipeline.configureHTTP2Pipeline(
                mode: .server, connectionConfiguration: .init(), streamConfiguration: .init()
            ) { stream in
                stream.eventLoop.makeCompletedFuture {
                    try stream.pipeline.syncOperations.addHandlers([
                        HTTP2FramePayloadToHTTP1ServerCodec(), MeshEchoHandler(app: self, http2: true),
                    ])
                }
            }
        } else {
            try pipeline.configureHTTPServerPipeline()
            try pipeline.addHandler(MeshEchoHandler(app: self, http2: false))
        }
    }
}

/// Decides from a connection's first three bytes whether it is HTTP/2 with prior knowledge (`PRI`) or HTTP/1, has
/// the pipeline configured for it, passes the bytes on and leaves.
private final class PrefaceSniffer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private var buffered: ByteBuffer?
    private var decided = false
    private let configure: (any Channel, Bool) throws -> Void

    init(configure: @escaping (any Channel, Bool) throws -> Void) {
        self.configure = configure
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !decided else {
            context.fireChannelRead(data)
            return
        }
        var incoming = unwrapInboundIn(data)
        var all = buffered ?? context.channel.allocator.buffer(capacity: incoming.readableBytes)
        all.writeBuffer(&incoming)
        guard all.readableBytes >= 3 else {
            buffered = all
            return
        }
        buffered = nil
        decided = true
        do {
            try configure(context.channel, all.getString(at: all.readerIndex, length: 3) == "PRI")
        } catch {
            context.close(promise: nil)
            return
        }
        context.fireChannelRead(wrapInboundOut(all))
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}

private final class MeshEchoHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let app: MeshEchoApp
    private let http2: Bool
    private var head: HTTPRequestHead?

    init(app: MeshEchoApp, http2: Bool) {
        self.app = app
        self.http2 = http2
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
        case .body:
            break
        case .end:
            guard let head else { return }
            self.head = nil
            let clientID = head.headers.first(name: "l5d-client-id")
            let version = "\(head.version.major).\(head.version.minor)"
            app.record(.init(uri: head.uri, version: version, clientID: clientID))
            let body = ByteBuffer(string: "client-id=\(clientID ?? "none") version=\(version) uri=\(head.uri)\n")
            var headers = HTTPHeaders()
            headers.add(name: "content-type", value: "text/plain")
            headers.add(name: "content-length", value: "\(body.readableBytes)")
            headers.add(name: "x-seen-client-id", value: clientID ?? "none")
            let keepAlive = http2 || head.isKeepAlive
            if !keepAlive {
                headers.add(name: "connection", value: "close")
            }
            let responseHead = HTTPResponseHead(
                version: http2 ? .http2 : head.version, status: .ok, headers: headers)
            context.write(wrapOutboundOut(.head(responseHead)), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
                if !keepAlive { context.close(promise: nil) }
            }
        }
    }
}

// MARK: - A relay from the lab to a loopback server

/// A TCP listener on `host` (an address of the root namespace the pods reach) and a free port that connects each
/// connection to `target` and splices the two: the fake Destination service listens on 127.0.0.1 only. Close the
/// returned listener when done.
func startRelay(host: String, to target: SocketAddress) async throws -> any Channel {
    try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        // Nothing is read from the client until its upstream connection is spliced to it.
        .childChannelOption(.autoRead, value: false)
        .childChannelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(RelayStarter(target: target))
            }
        }
        .bind(host: host, port: 0).get()
}

/// Connects the accepted channel's upstream once it is active, then splices them and starts reading.
private final class RelayStarter: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    private let target: SocketAddress

    init(target: SocketAddress) {
        self.target = target
    }

    func channelActive(context: ChannelHandlerContext) {
        let accepted = context.channel
        ClientBootstrap(group: context.eventLoop).connect(to: target).assumeIsolated().whenComplete { result in
            switch result {
            case .success(let upstream):
                context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
                _ = TCPSplice.splice(accepted, upstream)
                accepted.setOption(.autoRead, value: true).whenFailure { _ in accepted.close(promise: nil) }
            case .failure:
                accepted.close(promise: nil)
            }
        }
        context.fireChannelActive()
    }
}

// MARK: - Commands in the root namespace

/// Runs `argv` (`argv[0]` looked up in `PATH`, `/usr/sbin` and `/sbin`) in the test's own namespace and returns its
/// exit status and output (standard error appended). For short commands with little output.
func runOnHost(_ argv: [String]) async throws -> (status: Int32, output: String) {
    let path = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init)
    let candidates = (path + ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]).map { "\($0)/\(argv[0])" }
    guard let executable = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
        throw MeshTestFailure("\(argv[0]) is not installed (looked in \(candidates))")
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = Array(argv.dropFirst())
    let output = Pipe()
    process.standardOutput = output
    process.standardError = output
    process.standardInput = FileHandle.nullDevice
    let status = try await withCheckedThrowingContinuation { continuation in
        process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
        do {
            try process.run()
        } catch {
            process.terminationHandler = nil
            continuation.resume(throwing: error)
        }
    }
    let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    return (status, text)
}

/// A failure of the test's own set-up, with what explains it.
struct MeshTestFailure: Error, CustomStringConvertible {
    var description: String

    init(_ description: String) {
        self.description = description
    }
}

// MARK: - Packet captures

/// One direction of a TCP connection.
struct TCPFlow: Hashable, Sendable, CustomStringConvertible {
    var source: String
    var sourcePort: UInt16
    var destination: String
    var destinationPort: UInt16

    var description: String { "\(source):\(sourcePort) → \(destination):\(destinationPort)" }
}

/// The bytes one direction of a TCP connection carried, reassembled in sequence order from a capture.
struct TCPStream: Sendable {
    var flow: TCPFlow
    /// Whether the capture has the connection's SYN (so the stream is complete from its first byte).
    var sawSYN: Bool
    /// The payload, up to the first hole in the capture.
    var bytes: [UInt8]
    /// Bytes missing from the capture (after a hole, the rest is left out).
    var missingBytes: Int
}

/// The TCP segments of a pcap file (Ethernet or Linux cooked captures of IPv4 and IPv6), as tcpdump `-w` writes it.
struct PacketCapture: Sendable {
    struct Segment: Sendable {
        var flow: TCPFlow
        var sequence: UInt32
        var isSYN: Bool
        var payload: [UInt8]
    }

    /// The pcap file read.
    let path: String
    var segments: [Segment] = []
    /// Frames that were not TCP over IP.
    var otherFrames = 0

    init(contentsOf path: String) throws {
        self.path = path
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        guard bytes.count >= 24 else {
            throw MeshTestFailure("\(path) has \(bytes.count) bytes, less than a pcap header")
        }
        let littleEndian: Bool
        switch Self.uint32(bytes, 0, littleEndian: true) {
        case 0xa1b2_c3d4, 0xa1b2_3c4d: littleEndian = true
        case 0xd4c3_b2a1, 0x4d3c_b2a1: littleEndian = false
        case let magic: throw MeshTestFailure("\(path) is not a pcap file (magic \(String(magic, radix: 16)))")
        }
        let linkType = Self.uint32(bytes, 20, littleEndian: littleEndian)
        let linkHeader: Int
        switch linkType {
        case 1: linkHeader = 14  // Ethernet
        case 113: linkHeader = 16  // Linux cooked (tcpdump -i any)
        default: throw MeshTestFailure("\(path) has link type \(linkType), neither Ethernet nor Linux cooked")
        }
        var offset = 24
        while offset + 16 <= bytes.count {
            let length = Int(Self.uint32(bytes, offset + 8, littleEndian: littleEndian))
            let start = offset + 16
            let end = min(start + length, bytes.count)
            offset = start + length
            guard end - start > linkHeader else {
                otherFrames += 1
                continue
            }
            let frame = Array(bytes[start..<end])
            let etherType = Int(frame[linkHeader - 2]) << 8 | Int(frame[linkHeader - 1])
            if let segment = Self.segment(ipPacket: frame[linkHeader...], etherType: etherType) {
                segments.append(segment)
            } else {
                otherFrames += 1
            }
        }
    }

    /// Each direction of each connection, in the order of their first segments.
    var streams: [TCPStream] {
        var order: [TCPFlow] = []
        var byFlow: [TCPFlow: [Segment]] = [:]
        for segment in segments {
            if byFlow[segment.flow] == nil {
                order.append(segment.flow)
            }
            byFlow[segment.flow, default: []].append(segment)
        }
        return order.map { flow in
            let flowSegments = byFlow[flow] ?? []
            let syn = flowSegments.first(where: \.isSYN)
            let withData = flowSegments.filter { !$0.payload.isEmpty }
            let base = syn.map { $0.sequence &+ 1 } ?? withData.first?.sequence ?? 0
            let pieces = withData.compactMap { segment -> (offset: Int, payload: [UInt8])? in
                let offset = segment.sequence &- base
                return offset < 1 << 31 ? (Int(offset), segment.payload) : nil
            }.sorted { $0.offset < $1.offset }
            var stream = TCPStream(flow: flow, sawSYN: syn != nil, bytes: [], missingBytes: 0)
            for piece in pieces {
                let end = piece.offset + piece.payload.count
                if stream.missingBytes > 0 {
                    stream.missingBytes = max(stream.missingBytes, end - stream.bytes.count)
                } else if piece.offset > stream.bytes.count {
                    stream.missingBytes = end - stream.bytes.count
                } else if end > stream.bytes.count {
                    stream.bytes += piece.payload[(stream.bytes.count - piece.offset)...]
                }
            }
            return stream
        }
    }

    private static func segment(ipPacket packet: ArraySlice<UInt8>, etherType: Int) -> Segment? {
        let ip = Array(packet)
        let source: String
        let destination: String
        let tcpStart: Int
        let ipEnd: Int
        switch etherType {
        case 0x0800:
            guard ip.count >= 20, ip[0] >> 4 == 4, ip[9] == 6 else { return nil }
            tcpStart = Int(ip[0] & 0x0F) * 4
            ipEnd = min(ip.count, Int(ip[2]) << 8 | Int(ip[3]))
            source = ip[12..<16].map(String.init).joined(separator: ".")
            destination = ip[16..<20].map(String.init).joined(separator: ".")
        case 0x86DD:
            // Extension headers are not followed: the lab's TCP over IPv6 has none.
            guard ip.count >= 40, ip[0] >> 4 == 6, ip[6] == 6 else { return nil }
            tcpStart = 40
            ipEnd = min(ip.count, 40 + (Int(ip[4]) << 8 | Int(ip[5])))
            source = ipv6Text(ip[8..<24])
            destination = ipv6Text(ip[24..<40])
        default:
            return nil
        }
        guard ipEnd >= tcpStart + 20 else { return nil }
        let tcp = ip[tcpStart..<ipEnd]
        let base = tcp.startIndex
        let dataOffset = Int(tcp[base + 12] >> 4) * 4
        guard tcp.count >= dataOffset else { return nil }
        return Segment(
            flow: TCPFlow(
                source: source, sourcePort: UInt16(tcp[base]) << 8 | UInt16(tcp[base + 1]),
                destination: destination, destinationPort: UInt16(tcp[base + 2]) << 8 | UInt16(tcp[base + 3])),
            sequence: uint32(Array(tcp[(base + 4)..<(base + 8)]), 0, littleEndian: false),
            isSYN: tcp[base + 13] & 0x02 != 0, payload: Array(tcp[(base + dataOffset)...]))
    }

    private static func ipv6Text(_ bytes: ArraySlice<UInt8>) -> String {
        stride(from: bytes.startIndex, to: bytes.endIndex, by: 2).map {
            String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16)
        }.joined(separator: ":")
    }

    private static func uint32(_ bytes: [UInt8], _ offset: Int, littleEndian: Bool) -> UInt32 {
        let value = bytes[offset..<(offset + 4)].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        return littleEndian ? value.byteSwapped : value
    }
}

extension PacketCapture {
    /// tcpdump's reading of the capture's first packets (run in `pod`, whichever: it only reads the file), for failure
    /// messages.
    func text(in pod: LabPod, packets: Int = 60) async -> String {
        guard let result = try? await pod.run(["tcpdump", "-nn", "-r", path, "-c", "\(packets)"]) else {
            return "(tcpdump -r \(path) did not run)"
        }
        return "tcpdump -r \(path) (first \(packets) packets):\n\(result.standardOutput)\(result.standardError)"
    }
}

extension TCPStream {
    /// Nil when the bytes are a sequence of well-formed TLS records (content types 20 to 23, version 3.x, at most
    /// 2¹⁴ + 256 bytes each; the last one may be cut short by the end of the capture); otherwise where and how they
    /// are not.
    var tlsRecordProblem: String? {
        var position = 0
        var records = 0
        while bytes.count - position >= 5 {
            let length = Int(bytes[position + 3]) << 8 | Int(bytes[position + 4])
            guard (20...23).contains(bytes[position]), bytes[position + 1] == 3, bytes[position + 2] <= 4,
                length <= 16_384 + 256
            else {
                return "byte \(position) (after \(records) TLS records) is not a TLS record header: "
                    + Self.excerpt(bytes, at: position)
            }
            position += 5 + length
            records += 1
        }
        return nil
    }

    /// Whether the bytes contain `text` (as UTF-8).
    func contains(_ text: String) -> Bool {
        let needle = Array(text.utf8)
        guard !needle.isEmpty, bytes.count >= needle.count else { return false }
        for start in 0...(bytes.count - needle.count) where bytes[start] == needle[0] {
            if bytes[start..<(start + needle.count)].elementsEqual(needle) {
                return true
            }
        }
        return false
    }

    /// Up to 48 bytes from `position`, in hex and as text.
    static func excerpt(_ bytes: [UInt8], at position: Int) -> String {
        let slice = bytes[position..<min(bytes.count, position + 48)]
        let hex = slice.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }
        let text = String(slice.map { (32...126).contains($0) ? Character(UnicodeScalar($0)) : "." })
        return "\(hex.joined(separator: " ")) \"\(text)\""
    }

    var summary: String {
        "\(flow): \(bytes.count) bytes\(sawSYN ? "" : " (no SYN captured)")"
            + (missingBytes > 0 ? ", \(missingBytes) missing" : "")
            + (bytes.isEmpty ? "" : ", starting \(Self.excerpt(bytes, at: 0))")
    }
}
