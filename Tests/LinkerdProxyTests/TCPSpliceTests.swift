import LinkerdProxy
import LinkerdTestSupport
import NIOCore
import NIOPosix
import Testing

@Suite("TCPSplice between real sockets on loopback", .timeLimit(.minutes(1)))
struct TCPSpliceTests {
    /// Runs `body` with a backend whose connections get `makeHandlers`, and a ``SpliceBench`` in front of it.
    private func withBench(
        socketBufferSize: Int? = nil, backend makeHandlers: @escaping @Sendable () -> [any ChannelHandler],
        _ body: (_ benchPort: Int, _ backend: TestTCPServer) async throws -> Void
    ) async throws {
        let backend = try await TestTCPServer.start(socketBufferSize: socketBufferSize, makeHandlers)
        let bench = try await SpliceBench.start(backendPort: backend.port, socketBufferSize: socketBufferSize)
        do {
            try await body(bench.port, backend)
        } catch {
            await bench.close()
            await backend.close()
            throw error
        }
        await bench.close()
        await backend.close()
    }

    @Test("Bytes go both ways, in order, over one connection")
    func echo() async throws {
        try await withBench(backend: { [EchoHandler()] }) { port, _ in
            let client = try await TestClient.connect(port: port)
            try await client.send("hello")
            try await client.received.waitForText("hello")
            try await client.send(", world")
            try await client.received.waitForText("hello, world")
            await client.close()
        }
    }

    enum Direction: String, CaseIterable, Sendable {
        case clientToServer, serverToClient
    }

    @Test("10 MB reach a slow reader whole and unchanged", arguments: Direction.allCases)
    func largeTransferToSlowReader(direction: Direction) async throws {
        let data = randomBytes(10 * 1024 * 1024)
        let digest = ReadDigest()
        let reader: @Sendable () -> any ChannelHandler = {
            SlowReadingHandler(interval: .milliseconds(1), chunkSize: 32 * 1024, digest: digest)
        }
        let backend: @Sendable () -> [any ChannelHandler]
        switch direction {
        case .clientToServer: backend = { [reader()] }
        case .serverToClient: backend = { [SendingHandler(data)] }
        }
        try await withBench(backend: backend) { port, _ in
            switch direction {
            case .clientToServer:
                let client = try await TestClient.connect(port: port)
                try await client.channel.writeAndFlush(data).get()
                try await client.shutdownOutput()
            case .serverToClient:
                _ = try await TestClient.connect(port: port) { [reader()] }
            }
            let received = try await digest.wait()
            #expect(received.count == data.readableBytes)
            #expect(received.digest == sha256(data))
        }
    }

    @Test("A reader that stops reading stops the splice reading: the sender's writes wait instead of piling up")
    func backpressure() async throws {
        let data = randomBytes(8 * 1024 * 1024)
        let digest = ReadDigest()
        let bufferSize = 32 * 1024
        try await withBench(
            socketBufferSize: bufferSize,
            backend: {
                [SlowReadingHandler(interval: .milliseconds(1), chunkSize: 64 * 1024, paused: true, digest: digest)]
            }
        ) { port, backend in
            let client = try await TestClient.connect(port: port, socketBufferSize: bufferSize)
            let written = Locked(false)
            client.channel.writeAndFlush(data).whenComplete { _ in written.withLock { $0 = true } }
            try await eventually("the backend accepts the spliced connection") { backend.accepted.count == 1 }
            // The kernel buffers of the three sockets on the way hold well under 1 MB; with no backpressure in the
            // splice, the whole 8 MB would be read off the client's socket and its write would complete.
            try await Task.sleep(for: .milliseconds(500))
            #expect(!written.value, "8 MB were accepted although nothing reads them")

            SlowReadingHandler.resume(try #require(backend.accepted.first))
            try await eventually("the client's write completes", timeout: .seconds(30)) { written.value }
            try await client.shutdownOutput()
            let received = try await digest.wait()
            #expect(received.count == data.readableBytes)
            #expect(received.digest == sha256(data))
        }
    }

    @Test("A client that ends its output still gets the whole answer, then the end of input")
    func halfClose() async throws {
        let data = randomBytes(4 * 1024 * 1024)
        // Small socket buffers, and a slow client: the splice still holds answer bytes for the client when the
        // backend ends its output, and they must not be dropped.
        let bufferSize = 32 * 1024
        try await withBench(socketBufferSize: bufferSize, backend: { [EchoHandler()] }) { port, _ in
            let digest = ReadDigest()
            let client = try await TestClient.connect(port: port, socketBufferSize: bufferSize) {
                [SlowReadingHandler(interval: .milliseconds(1), chunkSize: 16 * 1024, digest: digest)]
            }
            try await client.channel.writeAndFlush(data).get()
            try await client.shutdownOutput()
            let received = try await digest.wait()
            #expect(received.count == data.readableBytes)
            #expect(received.digest == sha256(data))
        }
    }

    @Test("A small request and answer around a half-close arrive, and the client sees the end of input")
    func halfCloseSmall() async throws {
        try await withBench(backend: { [EchoHandler()] }) { port, _ in
            let client = try await TestClient.connect(port: port)
            try await client.send("request")
            try await client.shutdownOutput()
            try await client.received.waitUntilInputEnded()
            #expect(client.received.text == "request")
            try await client.received.waitUntilClosed()
        }
    }

    @Test("A server that writes first reaches a client that has sent nothing")
    func serverFirst() async throws {
        try await withBench(backend: { [GreetingHandler("220 ready\r\n"), EchoHandler()] }) { port, _ in
            let client = try await TestClient.connect(port: port)
            try await client.received.waitForText("220 ready\r\n")
            try await client.send("QUIT\r\n")
            try await client.received.waitForText("220 ready\r\nQUIT\r\n")
            await client.close()
        }
    }

    @Test("A reset by the server ends the client's connection")
    func serverReset() async throws {
        try await withBench(backend: { [ResettingHandler()] }) { port, _ in
            let client = try await TestClient.connect(port: port)
            try await client.send("x")
            try await client.received.waitUntilInputEnded()
            #expect(client.received.bytes.isEmpty)
        }
    }

    @Test("A reset by the client ends the server's connection")
    func clientReset() async throws {
        let backendReceived = ReceivedBytes()
        try await withBench(backend: { [CollectingHandler(backendReceived)] }) { port, _ in
            let client = try await TestClient.connect(port: port)
            try await client.send("x")
            try await backendReceived.waitForText("x")
            resetConnection(client.channel)
            try await backendReceived.waitUntilInputEnded()
        }
    }
}
