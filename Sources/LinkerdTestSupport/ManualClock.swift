import Foundation
import LinkerdCore
import Synchronization

/// A `WallClock` that moves only when a test calls `advance(by:)`.
///
/// Sleepers registered with `sleep(for:)` or `sleep(until:)` resume, in deadline order, once the clock has been advanced past their
/// deadline; cancelling a sleeper resumes it at once with `CancellationError`. `sleeperCount` and
/// `waitForSleepers(atLeast:)` let a test wait until the code under test is parked before moving time.
public final class ManualClock: WallClock {
    private struct Sleeper {
        let id: UInt64
        let deadline: Date
        let continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var now: Date
        var nextID: UInt64 = 0
        var sleepers: [Sleeper] = []
        var cancelledBeforeRegistering: Set<UInt64> = []
    }

    private let state: Mutex<State>

    public init(start: Date = Date(timeIntervalSince1970: 1_700_000_000)) {
        state = Mutex(State(now: start))
    }

    public func now() -> Date {
        state.withLock { $0.now }
    }

    public func sleep(for duration: Duration) async throws {
        try await sleep(until: now().addingTimeInterval(duration.inSeconds))
    }

    public func sleep(until deadline: Date) async throws {
        let id = state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let resumeNow: (any Error)?? = state.withLock { state in
                    if state.cancelledBeforeRegistering.remove(id) != nil { return .some(CancellationError()) }
                    if deadline <= state.now { return .some(nil) }
                    state.sleepers.append(Sleeper(id: id, deadline: deadline, continuation: continuation))
                    return .none
                }
                switch resumeNow {
                case .some(.some(let error)): continuation.resume(throwing: error)
                case .some(.none): continuation.resume()
                case .none: break
                }
            }
        } onCancel: {
            let sleeper: Sleeper? = state.withLock { state in
                guard let index = state.sleepers.firstIndex(where: { $0.id == id }) else {
                    state.cancelledBeforeRegistering.insert(id)
                    return nil
                }
                return state.sleepers.remove(at: index)
            }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Moves time forward and wakes every sleeper whose deadline has been reached.
    public func advance(by duration: Duration) {
        let due: [Sleeper] = state.withLock { state in
            state.now = state.now.addingTimeInterval(duration.inSeconds)
            let now = state.now
            let due = state.sleepers.filter { $0.deadline <= now }.sorted { $0.deadline < $1.deadline }
            state.sleepers.removeAll { $0.deadline <= now }
            return due
        }
        for sleeper in due {
            sleeper.continuation.resume()
        }
    }

    /// How many tasks are sleeping on this clock right now.
    public var sleeperCount: Int {
        state.withLock { $0.sleepers.count }
    }

    /// Waits (in real time, up to `timeout`) until at least `count` tasks sleep on this clock.
    public func waitForSleepers(atLeast count: Int, timeout: Duration = .seconds(10)) async throws {
        try await eventually("\(count) sleepers on the manual clock", timeout: timeout) { self.sleeperCount >= count }
    }
}

/// Thrown by `eventually` when its condition did not become true in time.
public struct EventuallyTimeout: Error, CustomStringConvertible {
    public let condition: String
    public let timeout: Duration

    public var description: String { "timed out after \(timeout) waiting for \(condition)" }
}

/// Polls `condition` every few milliseconds of real time until it holds, or throws `EventuallyTimeout`.
public func eventually(
    _ condition: String, timeout: Duration = .seconds(10), _ check: () async throws -> Bool
) async throws {
    let clock = ContinuousClock()
    let deadline = clock.now.advanced(by: timeout)
    while clock.now < deadline {
        if try await check() { return }
        try await Task.sleep(for: .milliseconds(5))
    }
    if try await check() { return }
    throw EventuallyTimeout(condition: condition, timeout: timeout)
}
