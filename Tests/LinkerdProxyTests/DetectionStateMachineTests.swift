import LinkerdProxyCore
import NIOCore
import Testing

@testable import LinkerdProxy

/// The detection state machine on its own, with no channel.
@Suite struct DetectionStateMachineTests {
    private static let request = ByteBuffer(string: "GET / HTTP/1.1\r\n\r\n")

    @Test func readsAreBufferedUntilTheyDecide() throws {
        var machine = ProtocolDetectionStateMachine(mode: .tls)
        guard case .wait = machine.channelRead(ByteBuffer(bytes: [0x16, 0x03])) else {
            Issue.record("a TLS record prefix decided")
            return
        }
        #expect(!machine.forwardsReadComplete)
        guard case .configure(let result) = machine.channelRead(ByteBuffer(bytes: [0x02])) else {
            Issue.record("a bad record version did not decide")
            return
        }
        #expect(result == .opaque)
        #expect(machine.timedOut() == nil)
        guard case .replayAndRemove(let buffered, let inputClosed) = machine.configured(.success(())) else {
            Issue.record("a successful configuration did not replay")
            return
        }
        #expect(buffered == ByteBuffer(bytes: [0x16, 0x03, 0x02]))
        #expect(!inputClosed)
        #expect(machine.forwardsReadComplete)
        guard case .forward = machine.channelRead(Self.request) else {
            Issue.record("a read after detection was not forwarded")
            return
        }
    }

    @Test func timeoutDecidesOnceAndKeepsTheBytes() {
        var machine = ProtocolDetectionStateMachine(mode: .tlsThenHTTP)
        _ = machine.channelRead(ByteBuffer(bytes: [0x16]))
        #expect(machine.timedOut() == .timedOut)
        #expect(machine.timedOut() == nil)
        guard case .wait = machine.channelRead(ByteBuffer(bytes: [0x03])) else {
            Issue.record("a read while configuring was not held back")
            return
        }
        guard case .replayAndRemove(let buffered, _) = machine.configured(.success(())) else {
            Issue.record("a successful configuration did not replay")
            return
        }
        #expect(buffered == ByteBuffer(bytes: [0x16, 0x03]))
    }

    @Test func halfCloseWhileConfiguringIsReplayedAfterTheBytes() {
        var machine = ProtocolDetectionStateMachine(mode: .http)
        _ = machine.channelRead(Self.request)
        guard case .wait = machine.inputClosed() else {
            Issue.record("a half-close while configuring was not held back")
            return
        }
        guard case .replayAndRemove(let buffered, let inputClosed) = machine.configured(.success(())) else {
            Issue.record("a successful configuration did not replay")
            return
        }
        #expect(buffered == Self.request)
        #expect(inputClosed)
    }

    @Test func halfCloseWhileDetectingFails() {
        var machine = ProtocolDetectionStateMachine(mode: .tls)
        _ = machine.channelRead(ByteBuffer(bytes: [0x16, 0x03, 0x01]))
        guard case .failAndClose(let error) = machine.inputClosed() else {
            Issue.record("a half-close while detecting did not fail")
            return
        }
        #expect(error == .closedBeforeDetection(bufferedBytes: 3))
        #expect(machine.timedOut() == nil)
        #expect(machine.handlerRemoved() == nil)
    }

    @Test func inactiveWhileDetectingFailsAndWhileConfiguringDropsTheBytes() {
        var detecting = ProtocolDetectionStateMachine(mode: .http)
        #expect(detecting.channelInactive() == .closedBeforeDetection(bufferedBytes: 0))

        var configuring = ProtocolDetectionStateMachine(mode: .http)
        _ = configuring.channelRead(Self.request)
        #expect(configuring.channelInactive() == nil)
        guard case .none = configuring.configured(.success(())) else {
            Issue.record("a configuration finishing after the channel closed did something")
            return
        }
    }

    @Test func failedConfigurationFails() {
        struct Failure: Error {}
        var machine = ProtocolDetectionStateMachine(mode: .http)
        _ = machine.channelRead(Self.request)
        guard case .failAndClose(let error) = machine.configured(.failure(Failure())) else {
            Issue.record("a failed configuration did not fail")
            return
        }
        #expect(error is Failure)
    }

    @Test func removalBeforeTheEndHandsBackTheBytes() {
        var machine = ProtocolDetectionStateMachine(mode: .tls)
        _ = machine.channelRead(ByteBuffer(bytes: [0x16, 0x03]))
        _ = machine.channelRead(ByteBuffer(bytes: [0x03]))
        #expect(machine.handlerRemoved() == ByteBuffer(bytes: [0x16, 0x03, 0x03]))
        #expect(machine.handlerRemoved() == nil)
    }
}
