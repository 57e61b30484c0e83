import Foundation
import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOPosix

// An open-loop load client at a fixed request rate, for `proxy-bench.sh`:
//
//   HTTPLoad h1|h2 PORT RATE SECONDS [WARMUP_SECONDS] [CONNECTIONS]
//
// GETs http://127.0.0.1:PORT/ RATE times a second for WARMUP_SECONDS (default 2, not measured) then SECONDS, on one
// event-loop thread. Request i is due at start + i/RATE whatever happened to the earlier ones, and its latency runs
// from that due time to the end of its response, so a stall shows in every request it delays (no coordinated
// omission). HTTP/1.1: CONNECTIONS keep-alive connections (default 16), a due request takes an idle one or waits for
// the first to free up. HTTP/2 (prior knowledge): CONNECTIONS connections (default 1), a stream per request, round
// robin. A connection that closes is replaced; its request in flight counts as an error, as does any status other
// than 2xx. Everything stops SECONDS + WARMUP + 10 s after the start at the latest.
//
// Prints one line: `requests=N errors=N rate=R p50_us=N p90_us=N p99_us=N p999_us=N max_us=N`.

enum Protocol: String { case h1, h2 }

struct Options {
    var proto: Protocol
    var port: Int
    var rate: Int
    var seconds: Int
    var warmup: Int
    var connections: Int

    init(_ arguments: [String]) {
        func usage() -> Never {
            FileHandle.standardError.write(
                Data("usage: HTTPLoad h1|h2 PORT RATE SECONDS [WARMUP_SECONDS] [CONNECTIONS]\n".utf8))
            exit(64)
        }
        guard arguments.count >= 4, arguments.count <= 6, let proto = Protocol(rawValue: arguments[0]),
            let port = Int(arguments[1]), let rate = Int(arguments[2]), rate > 0, rate <= 1_000_000,
            let seconds = Int(arguments[3]), seconds > 0, seconds <= 600
        else { usage() }
        self.proto = proto
        self.port = port
        self.rate = rate
        self.seconds = seconds
        warmup = arguments.count > 4 ? Int(arguments[4]) ?? -1 : 2
        connections = arguments.count > 5 ? Int(arguments[5]) ?? 0 : (proto == .h1 ? 16 : 1)
        guard (0...60).contains(warmup), (1...1000).contains(connections) else { usage() }
    }
}

/// The run's state. Every property is touched on the driver's event loop only.
final class Driver: @unchecked Sendable {
    let options: Options
    let eventLoop: any EventLoop
    let bootstrap: ClientBootstrap
    let interval: Int64
    let total: Int
    let finished: EventLoopPromise<Void>

    private var start = NIODeadline.now()
    private var measureFrom = NIODeadline.now()
    private var next = 0
    private var outstanding = 0
    private var stopped = false
    private var reconnects = 0
    private(set) var latencies: [Int64] = []
    private(set) var errors = 0
    private(set) var firstMeasuredDue: NIODeadline?
    private(set) var lastMeasuredEnd: NIODeadline?

    // HTTP/1.1
    private var idle: [HTTP1Connection] = []
    private var pending: [NIODeadline] = []
    private var pendingHead = 0
    // HTTP/2
    private var multiplexers: [ObjectIdentifier: NIOHTTP2Handler.StreamMultiplexer] = [:]
    private var multiplexerOrder: [ObjectIdentifier] = []
    private var roundRobin = 0

    init(options: Options, eventLoop: any EventLoop) {
        self.options = options
        self.eventLoop = eventLoop
        interval = 1_000_000_000 / Int64(options.rate)
        total = options.rate * (options.warmup + options.seconds)
        finished = eventLoop.makePromise()
        latencies.reserveCapacity(options.rate * options.seconds)
        bootstrap = ClientBootstrap(group: eventLoop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
    }

    // MARK: connections

    func connect() -> EventLoopFuture<Void> {
        let opened = (0..<options.connections).map { _ in openConnection() }
        return EventLoopFuture.andAllSucceed(opened, on: eventLoop)
    }

    private func openConnection() -> EventLoopFuture<Void> {
        let driver = self
        switch options.proto {
        case .h1:
            return bootstrap.channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(HTTP1Connection(driver: driver))
                }
            }
            .connect(host: "127.0.0.1", port: options.port).map { _ in }
        case .h2:
            return bootstrap.connect(host: "127.0.0.1", port: options.port).flatMapThrowing { channel in
                let multiplexer = try channel.pipeline.syncOperations.configureHTTP2Pipeline(
                    mode: .client, connectionConfiguration: .init(), streamConfiguration: .init()
                ) { stream in stream.close() }
                let id = ObjectIdentifier(channel)
                driver.multiplexers[id] = multiplexer
                driver.multiplexerOrder.append(id)
                channel.closeFuture.whenComplete { _ in
                    driver.multiplexers[id] = nil
                    driver.multiplexerOrder.removeAll { $0 == id }
                    driver.replaceConnection()
                }
            }
        }
    }

    /// Opens a connection in place of one that closed, while the run goes on (at most 1,000 times).
    func replaceConnection() {
        guard !stopped, reconnects < 1000 else { return }
        reconnects += 1
        openConnection().whenFailure { _ in }
    }

    func connectionIdle(_ connection: HTTP1Connection) {
        if pendingHead < pending.count {
            let due = pending[pendingHead]
            pendingHead += 1
            if pendingHead > 4096, pendingHead * 2 > pending.count {
                pending.removeFirst(pendingHead)
                pendingHead = 0
            }
            connection.send(due: due)
        } else {
            idle.append(connection)
        }
    }

    func connectionClosed(_ connection: HTTP1Connection) {
        idle.removeAll { $0 === connection }
        replaceConnection()
    }

    // MARK: the schedule

    func begin() {
        start = NIODeadline.now() + .milliseconds(10)
        measureFrom = start + .seconds(Int64(options.warmup))
        eventLoop.scheduleTask(deadline: start) { self.tick() }
        eventLoop.scheduleTask(deadline: start + .seconds(Int64(options.warmup + options.seconds + 10))) {
            self.stop()
        }
    }

    private func due(_ index: Int) -> NIODeadline {
        start + .nanoseconds(Int64(index) * interval)
    }

    private func tick() {
        guard !stopped else { return }
        let now = NIODeadline.now()
        while next < total, due(next) <= now {
            dispatch(due: due(next))
            next += 1
        }
        if next < total {
            eventLoop.scheduleTask(deadline: due(next)) { self.tick() }
        } else {
            finishIfDone()
        }
    }

    private func dispatch(due: NIODeadline) {
        outstanding += 1
        switch options.proto {
        case .h1:
            if let connection = idle.popLast() {
                connection.send(due: due)
            } else {
                pending.append(due)
            }
        case .h2:
            guard !multiplexerOrder.isEmpty else {
                complete(due: due, ok: false)
                return
            }
            roundRobin = (roundRobin + 1) % multiplexerOrder.count
            guard let multiplexer = multiplexers[multiplexerOrder[roundRobin]] else {
                complete(due: due, ok: false)
                return
            }
            let driver = self
            let port = options.port
            multiplexer.createStreamChannel { stream in
                stream.eventLoop.makeCompletedFuture {
                    try stream.pipeline.syncOperations.addHandler(
                        HTTP2FramePayloadToHTTP1ClientCodec(httpProtocol: .http))
                    try stream.pipeline.syncOperations.addHandler(HTTP2Exchange(driver: driver, due: due, port: port))
                }
            }.whenFailure { _ in driver.complete(due: due, ok: false) }
        }
    }

    func complete(due: NIODeadline, ok: Bool) {
        outstanding -= 1
        if due >= measureFrom, !stopped {
            if ok {
                let end = NIODeadline.now()
                latencies.append((end - due).nanoseconds)
                if firstMeasuredDue == nil { firstMeasuredDue = due }
                lastMeasuredEnd = end
            } else {
                errors += 1
            }
        }
        finishIfDone()
    }

    private func finishIfDone() {
        if next >= total, outstanding == 0 { stop() }
    }

    private func stop() {
        guard !stopped else { return }
        stopped = true
        // Requests still unanswered at the hard deadline are errors.
        errors += outstanding
        finished.succeed()
    }
}

/// One HTTP/1.1 keep-alive connection: one request at a time.
final class HTTP1Connection: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let driver: Driver
    private var context: ChannelHandlerContext?
    private var inFlight: NIODeadline?
    private var ok = false
    private let head: HTTPRequestHead

    init(driver: Driver) {
        self.driver = driver
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/")
        head.headers.add(name: "host", value: "127.0.0.1:\(driver.options.port)")
        head.headers.add(name: "user-agent", value: "HTTPLoad")
        self.head = head
    }

    func channelActive(context: ChannelHandlerContext) {
        self.context = context
        context.fireChannelActive()
        driver.connectionIdle(self)
    }

    func send(due: NIODeadline) {
        guard let context else {
            driver.complete(due: due, ok: false)
            return
        }
        inFlight = due
        ok = false
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let response):
            ok = (200..<300).contains(response.status.code)
        case .body:
            break
        case .end:
            guard let due = inFlight else { return }
            inFlight = nil
            driver.complete(due: due, ok: ok)
            driver.connectionIdle(self)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.context = nil
        if let due = inFlight {
            inFlight = nil
            driver.complete(due: due, ok: false)
        }
        driver.connectionClosed(self)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// One HTTP/2 request on its own stream.
final class HTTP2Exchange: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let driver: Driver
    private var due: NIODeadline?
    private var ok = false
    private let port: Int

    init(driver: Driver, due: NIODeadline, port: Int) {
        self.driver = driver
        self.due = due
        self.port = port
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { sendRequest(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        sendRequest(context: context)
        context.fireChannelActive()
    }

    private var sent = false
    private func sendRequest(context: ChannelHandlerContext) {
        guard !sent else { return }
        sent = true
        var head = HTTPRequestHead(version: .http2, method: .GET, uri: "/")
        head.headers.add(name: "host", value: "127.0.0.1:\(port)")
        head.headers.add(name: "user-agent", value: "HTTPLoad")
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let response):
            ok = (200..<300).contains(response.status.code)
        case .body:
            break
        case .end:
            if let due {
                self.due = nil
                driver.complete(due: due, ok: ok)
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let due {
            self.due = nil
            driver.complete(due: due, ok: false)
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

let options = Options(Array(CommandLine.arguments.dropFirst()))
let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let eventLoop = group.next()
let driver = Driver(options: options, eventLoop: eventLoop)
do {
    try await eventLoop.flatSubmit { driver.connect() }.get()
} catch {
    FileHandle.standardError.write(Data("HTTPLoad: cannot connect to 127.0.0.1:\(options.port): \(error)\n".utf8))
    exit(1)
}
eventLoop.execute { driver.begin() }
try await driver.finished.futureResult.get()
let (latencies, errors, first, last) = try await eventLoop.submit {
    (driver.latencies.sorted(), driver.errors, driver.firstMeasuredDue, driver.lastMeasuredEnd)
}.get()
func percentile(_ p: Double) -> Int64 {
    guard !latencies.isEmpty else { return 0 }
    return latencies[min(latencies.count - 1, Int((Double(latencies.count) * p).rounded(.down)))] / 1000
}
var rate = 0.0
if let first, let last, latencies.count > 1 {
    rate = Double(latencies.count) / (Double((last - first).nanoseconds) / 1e9)
}
print(
    "requests=\(latencies.count) errors=\(errors) rate=\(String(format: "%.0f", rate)) p50_us=\(percentile(0.5)) "
        + "p90_us=\(percentile(0.9)) p99_us=\(percentile(0.99)) p999_us=\(percentile(0.999)) "
        + "max_us=\(latencies.last.map { $0 / 1000 } ?? 0)")
exit(0)
