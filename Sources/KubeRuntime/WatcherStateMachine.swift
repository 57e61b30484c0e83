import KubeModel

/// Decides what a watcher does next: list (page by page), watch from a resourceVersion, or wait.
///
/// ```
///   initial ──list──▶ listing(page n) ──last page──▶ watching(rv) ──event──▶ watching(rv')
///      ▲                  │  error: backoff, list again      │ stream ended: watch again from rv
///      │                  ▼                                   │ error: backoff, watch again from rv
///      └──────── 410 Gone (list or watch): list again at once ◀┘
/// ```
///
/// The machine holds no objects and does no I/O; `Watcher` performs its actions and reports the outcomes back.
/// A failure never stops the machine: every error leads to another attempt, after a backoff unless the error
/// was `410 Gone` (the cure for which is an immediate re-list, as client-go does).
public struct WatcherStateMachine: Sendable {
    public enum Action: Equatable, Sendable {
        /// List a page; `continueToken` nil starts a fresh, consistent list.
        case list(continueToken: String?)
        /// Watch for changes after `resourceVersion`.
        case watch(resourceVersion: String)
        /// Wait before the next action.
        case wait(Duration)
    }

    private enum State: Sendable {
        case initial
        case listing(continueToken: String)
        case watching(resourceVersion: String)
    }

    private var state: State = .initial
    private var pendingWait: Duration?
    private var backoff: Backoff
    private var goneInARow = 0

    public init(backoff: Backoff = Backoff()) {
        self.backoff = backoff
    }

    /// The resourceVersion the next watch would start from, once the initial list is complete.
    public var resourceVersion: String? {
        if case .watching(let resourceVersion) = state { return resourceVersion }
        return nil
    }

    /// Consecutive failures so far (0 once anything succeeds).
    public var consecutiveFailures: Int { backoff.attempts }

    public mutating func nextAction() -> Action {
        if let wait = pendingWait {
            pendingWait = nil
            return .wait(wait)
        }
        switch state {
        case .initial: return .list(continueToken: nil)
        case .listing(let token): return .list(continueToken: token)
        case .watching(let resourceVersion): return .watch(resourceVersion: resourceVersion)
        }
    }

    /// A list page arrived. Returns true when it was the last page, so the listed snapshot is complete.
    public mutating func listPageReceived(resourceVersion: String, continueToken: String?) -> Bool {
        backoff.reset()
        goneInARow = 0
        if let continueToken, !continueToken.isEmpty {
            state = .listing(continueToken: continueToken)
            return false
        }
        state = .watching(resourceVersion: resourceVersion)
        return true
    }

    /// A watch event (or bookmark) carrying `resourceVersion` arrived.
    public mutating func watchEventReceived(resourceVersion: String?) {
        backoff.reset()
        if let resourceVersion, !resourceVersion.isEmpty, case .watching = state {
            state = .watching(resourceVersion: resourceVersion)
        }
    }

    /// The server ended the watch stream cleanly (its timeout). A stream that ended without delivering anything
    /// counts as a failure, so a server that keeps closing at once is not hammered.
    public mutating func watchEnded(receivedEvents: Bool) {
        if !receivedEvents {
            pendingWait = backoff.next()
        }
    }

    /// The last action failed. Returns the delay before the next attempt (zero for an immediate re-list).
    @discardableResult
    public mutating func failed(_ error: any Error) -> Duration {
        if let error = error as? KubeError, error.code == .gone {
            // The resourceVersion (or continue token) is too old: only a fresh list can resynchronize. A second
            // Gone in a row is still retried, but no longer at once.
            state = .initial
            goneInARow += 1
            if goneInARow == 1 { return .zero }
        }
        if case .listing = state {
            // Pages of an interrupted list are not consistent with a later one: start the list over.
            state = .initial
        }
        var delay = backoff.next()
        if let error = error as? KubeError, let retryAfter = error.retryAfter, retryAfter > delay {
            delay = retryAfter
        }
        pendingWait = delay
        return delay
    }
}
