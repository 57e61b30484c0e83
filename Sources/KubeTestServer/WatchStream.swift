import Foundation
import KubeModel
import Synchronization

/// The body of one watch response: a queue of events that `ServerCore` fills (under its lock, so every watch sees
/// events in resourceVersion order) and the HTTP connection drains, one line of JSON per event.
///
/// While stalled nothing is handed out (events queue up). `abort()` wins over everything queued: the connection is
/// then closed without the terminating chunk. Single consumer.
final class WatchStream: StreamingBody {
    enum Item: Sendable {
        /// `{"type": type, "object": object}`.
        case event(type: String, object: JSONValue)
        /// The end of the stream (the terminating chunk; the connection stays open).
        case end
    }

    private struct State: Sendable {
        var queue: [Item] = []
        var stalled: Bool
        var aborted = false
        var finished = false
        var waiter: CheckedContinuation<Void, Never>?

        var hasChunk: Bool {
            aborted || (!stalled && !queue.isEmpty)
        }
    }

    private let state: Mutex<State>
    private let onFinish: @Sendable () -> Void

    /// - Parameter onFinish: called once, when the connection stops consuming the stream.
    init(stalled: Bool, onFinish: @escaping @Sendable () -> Void) {
        state = Mutex(State(stalled: stalled))
        self.onFinish = onFinish
    }

    func enqueue(_ item: Item) {
        update { $0.queue.append(item) }
    }

    func setStalled(_ stalled: Bool) {
        update { $0.stalled = stalled }
    }

    /// Makes the connection close abruptly, even when stalled.
    func abort() {
        update { $0.aborted = true }
    }

    func nextChunk() async -> StreamChunk {
        await withTaskCancellationHandler {
            while true {
                let item: Item? = state.withLock { state in
                    if state.aborted || state.stalled || state.queue.isEmpty { return nil }
                    return state.queue.removeFirst()
                }
                switch item {
                case .event(let type, let object):
                    let line = JSONValue.object(["type": .string(type), "object": object]).jsonString + "\n"
                    return .data(Data(line.utf8))
                case .end:
                    return .end
                case nil:
                    if state.withLock({ $0.aborted }) { return .abort }
                    await withCheckedContinuation { continuation in
                        let ready = state.withLock { state in
                            if state.hasChunk { return true }
                            state.waiter = continuation
                            return false
                        }
                        if ready { continuation.resume() }
                    }
                }
            }
        } onCancel: {
            abort()
        }
    }

    func finish() {
        let first = state.withLock { state in
            defer { state.finished = true }
            return !state.finished
        }
        abort()
        if first { onFinish() }
    }

    /// Applies a change and wakes the consumer if it now has something to do.
    private func update(_ change: (inout State) -> Void) {
        let waiter: CheckedContinuation<Void, Never>? = state.withLock { state in
            change(&state)
            guard state.hasChunk else { return nil }
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }
}
