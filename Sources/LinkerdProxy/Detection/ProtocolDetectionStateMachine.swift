import LinkerdProxyCore
import NIOCore

/// The decisions of ``ProtocolDetectionHandler``: what to do with each read, the timeout, end of input and the
/// configurator's answer. It buffers the bytes and runs ``DetectionMode/decide(buffered:)``; it does no I/O, so each
/// method returns what the handler must do.
///
/// Lifecycle: `detecting` (buffering, timeout armed) → `configuring` (a result was handed to the configurator; reads
/// keep being buffered, and a half-closure is held back) → `finished` (the bytes were replayed, or the connection
/// failed or closed).
struct ProtocolDetectionStateMachine {
    private enum State {
        case detecting(buffered: ByteBuffer?)
        case configuring(buffered: ByteBuffer?, inputClosed: Bool)
        case finished
        /// Held only inside a mutating method, so that the buffer in the state is uniquely referenced while it grows.
        case modifying
    }

    private var state = State.detecting(buffered: nil)
    private let mode: DetectionMode

    init(mode: DetectionMode) {
        self.mode = mode
    }

    enum ReadAction {
        /// Buffered; nothing to do until the next event.
        case wait
        /// The bytes decided: cancel the timeout and hand `result` to the configurator.
        case configure(DetectedProtocol)
        /// Detection is over; pass the read on.
        case forward
    }

    mutating func channelRead(_ data: ByteBuffer) -> ReadAction {
        switch state {
        case .detecting(var buffered):
            state = .modifying
            Self.append(data, to: &buffered)
            let mode = self.mode
            if let result = buffered?.withUnsafeReadableBytes({ mode.decide(buffered: $0) }) {
                state = .configuring(buffered: buffered, inputClosed: false)
                return .configure(result)
            }
            state = .detecting(buffered: buffered)
            return .wait
        case .configuring(var buffered, let inputClosed):
            state = .modifying
            Self.append(data, to: &buffered)
            state = .configuring(buffered: buffered, inputClosed: inputClosed)
            return .wait
        case .finished:
            return .forward
        case .modifying:
            preconditionFailure("Internal inconsistency: re-entered the protocol detection state machine")
        }
    }

    /// Whether the next stage is being configured, when reads from the socket are held back.
    var isConfiguring: Bool {
        if case .configuring = state { true } else { false }
    }

    /// Whether a read-complete event is passed on: not while reads are being held back.
    var forwardsReadComplete: Bool {
        if case .finished = state { true } else { false }
    }

    /// The detect timeout fired; returns the result to configure, or `nil` when detection had already decided.
    mutating func timedOut() -> DetectedProtocol? {
        guard case .detecting(let buffered) = state else { return nil }
        state = .configuring(buffered: buffered, inputClosed: false)
        return .timedOut
    }

    enum InputClosedAction {
        /// Hold the event back (or drop it); nothing to do now.
        case wait
        /// The peer closed before the bytes decided: cancel the timeout, report `error` and close the channel.
        case failAndClose(ProtocolDetectionError)
        /// Detection is over; pass the event on.
        case forward
    }

    /// The peer half-closed its side of the connection (`ChannelEvent.inputClosed`).
    mutating func inputClosed() -> InputClosedAction {
        switch state {
        case .detecting(let buffered):
            state = .finished
            return .failAndClose(.closedBeforeDetection(bufferedBytes: buffered?.readableBytes ?? 0))
        case .configuring(let buffered, _):
            state = .configuring(buffered: buffered, inputClosed: true)
            return .wait
        case .finished:
            return .forward
        case .modifying:
            preconditionFailure("Internal inconsistency: re-entered the protocol detection state machine")
        }
    }

    /// The channel became inactive. Returns the error to report before passing the event on, when detection had not
    /// decided; buffered bytes are dropped, as nothing can be done with them.
    mutating func channelInactive() -> ProtocolDetectionError? {
        defer { state = .finished }
        guard case .detecting(let buffered) = state else { return nil }
        return .closedBeforeDetection(bufferedBytes: buffered?.readableBytes ?? 0)
    }

    enum ConfiguredAction {
        /// Pass `buffered` on (when there is any), then the held-back half-closure if `inputClosed`, and remove the
        /// handler.
        case replayAndRemove(buffered: ByteBuffer?, inputClosed: Bool)
        /// Report `error` and close the channel.
        case failAndClose(any Error)
        /// The channel closed meanwhile; nothing to do.
        case none
    }

    /// The configurator's future completed.
    mutating func configured(_ result: Result<Void, any Error>) -> ConfiguredAction {
        switch state {
        case .configuring(let buffered, let inputClosed):
            state = .finished
            switch result {
            case .success: return .replayAndRemove(buffered: buffered, inputClosed: inputClosed)
            case .failure(let error): return .failAndClose(error)
            }
        case .finished:
            return .none
        case .detecting, .modifying:
            preconditionFailure("Internal inconsistency: the configurator completed before a result was handed to it")
        }
    }

    /// The handler is leaving the pipeline. Returns the bytes it still holds, which must be passed on so that no
    /// byte of the stream is lost when the handler is removed before it finished.
    mutating func handlerRemoved() -> ByteBuffer? {
        defer { state = .finished }
        switch state {
        case .detecting(let buffered), .configuring(let buffered, _): return buffered
        case .finished, .modifying: return nil
        }
    }

    /// Appends `data` to `buffered`; the first read becomes the buffer itself, uncopied.
    private static func append(_ data: ByteBuffer, to buffered: inout ByteBuffer?) {
        if buffered == nil {
            buffered = data
        } else {
            buffered?.writeImmutableBuffer(data)
        }
    }
}
