import GRPCCore
import LinkerdProxyAPI
import Synchronization

/// What the fake server closes at shutdown.
protocol ExpectationSink: AnyObject, Sendable {
    /// Ends the call (or the call to come) without a status of the test's choosing, as at server shutdown.
    func close()
}

/// One call a ``FakeDestinationServer`` expects, and the script it plays on it: the messages to send, then how the
/// call ends. The script may be written before or after the call arrives; the call plays it in order and stays open
/// until the script ends it (or the client cancels, or the server shuts down).
public final class ExpectedStream<Message: Sendable>: ExpectationSink, Sendable {
    /// How an expected call ended.
    public enum End: Hashable, Sendable {
        /// The script ended it with status OK (``finish()``).
        case finished
        /// The script failed it with this status (``fail(_:message:)``).
        case failed(RPCError.Code)
        /// The client cancelled the call (or its connection closed) while it was open.
        case cancelledByClient
        /// The server shut down while it was open.
        case serverShutdown
    }

    public let method: FakeDestinationServer.Method
    public let path: String

    private enum Action: Sendable {
        case send(Message)
        case finish
        case fail(RPCError)
    }

    private struct State {
        var call: FakeDestinationServer.Call?
        var end: End?
        var closedByServer = false
    }

    private let actions: AsyncStream<Action>
    private let continuation: AsyncStream<Action>.Continuation
    private let state = Mutex(State())

    init(method: FakeDestinationServer.Method, path: String) {
        self.method = method
        self.path = path
        (actions, continuation) = AsyncStream.makeStream(of: Action.self)
    }

    // MARK: - Script

    /// Sends `message` on the call (once it has arrived, after what was queued before).
    public func send(_ message: Message) {
        continuation.yield(.send(message))
    }

    /// Ends the call with status OK, after what was queued before: the client sees its stream end, as when the
    /// control plane closes it.
    public func finish() {
        continuation.yield(.finish)
        continuation.finish()
    }

    /// Ends the call with `code` and `message`, after what was queued before.
    public func fail(_ code: RPCError.Code, message: String = "failed by the test") {
        continuation.yield(.fail(RPCError(code: code, message: message)))
        continuation.finish()
    }

    // MARK: - Observation

    /// The call that claimed this expectation; nil until it arrives.
    public var call: FakeDestinationServer.Call? {
        state.withLock { $0.call }
    }

    /// How the call ended; nil while it has not arrived or is open.
    public var end: End? {
        state.withLock { $0.end }
    }

    /// Waits (polling, in real time) for the call to arrive.
    ///
    /// - Throws: ``FakeDestinationServerTimeout`` after `timeout`.
    @discardableResult
    public func waitForCall(timeout: Duration = .seconds(10)) async throws -> FakeDestinationServer.Call {
        try await poll("the \(method) call for \(path.debugDescription)", timeout: timeout) { self.call }
    }

    /// Waits (polling, in real time) for the call to end.
    ///
    /// - Throws: ``FakeDestinationServerTimeout`` after `timeout`.
    @discardableResult
    public func waitForEnd(timeout: Duration = .seconds(10)) async throws -> End {
        try await poll("the end of the \(method) call for \(path.debugDescription)", timeout: timeout) { self.end }
    }

    // MARK: - Playing

    func close() {
        state.withLock { $0.closedByServer = true }
        continuation.finish()
    }

    /// Plays the script on `writer` for `call`, until the script ends it, the client cancels or the server closes.
    func play(call: FakeDestinationServer.Call, on writer: RPCWriter<Message>) async throws {
        state.withLock { $0.call = call }
        let continuation = continuation
        let end: End
        do {
            end = try await withRPCCancellationHandler {
                try await playActions(on: writer)
            } onCancelRPC: {
                continuation.finish()
            }
        } catch let failure as ScriptedFailure {
            record(.failed(failure.error.code))
            throw failure.error
        } catch {
            record(closedEnd())
            throw error
        }
        record(end)
    }

    private func playActions(on writer: RPCWriter<Message>) async throws -> End {
        for await action in actions {
            switch action {
            case .send(let message): try await writer.write(message)
            case .finish: return .finished
            case .fail(let error): throw ScriptedFailure(error: error)
            }
        }
        return closedEnd()
    }

    private func closedEnd() -> End {
        state.withLock { $0.closedByServer } ? .serverShutdown : .cancelledByClient
    }

    private func record(_ end: End) {
        state.withLock { state in
            if state.end == nil {
                state.end = end
            }
        }
    }
}

/// The failure the script asked for, told apart from a failure to write.
private struct ScriptedFailure: Error {
    let error: RPCError
}
