import Synchronization

/// A lock-protected value that, unlike a `Mutex`, can be captured by escaping closures and passed around: tests use
/// it to record what concurrent code did.
public final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>

    public init(_ value: Value) {
        mutex = Mutex(value)
    }

    public func withLock<Result>(_ body: (inout sending Value) throws -> sending Result) rethrows -> sending Result {
        try mutex.withLock(body)
    }

    public var value: Value {
        mutex.withLock { $0 }
    }
}
