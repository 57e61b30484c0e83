import Synchronization

/// What ``ProxyMetricsRegistry`` needs of the handles it hands out: to make one for a label set, to count a lookup
/// as an update, and to tell whether its series may be evicted.
protocol MetricsHandle: AnyObject, Sendable {
    init(labels: MetricLabels, now: UInt64)
    func markUpdated(now: UInt64)
    /// Whether the series may be evicted as far as its own state goes (whether the handle is still held is the
    /// registry's part): idle for longer than `retainIdleNanoseconds` and, for TCP, without an open connection.
    func isEvictable(now: UInt64, retainIdleNanoseconds: UInt64) -> Bool
}

/// When a series was last updated, in nanoseconds of the monotonic clock `now` is read from.
///
/// Stored with relaxed ordering and without a maximum: records racing each other may leave a time a little older
/// than the newest, which could only matter to a retention of microseconds.
struct LastUpdate: ~Copyable, Sendable {
    private let nanoseconds: Atomic<UInt64>

    init(_ now: UInt64) {
        nanoseconds = Atomic(now)
    }

    func record(_ now: UInt64) {
        nanoseconds.store(now, ordering: .relaxed)
    }

    /// Whether `now` is more than `retainIdleNanoseconds` after the last update; never when the update is later.
    func isIdle(now: UInt64, retainIdleNanoseconds: UInt64) -> Bool {
        let lastUpdate = nanoseconds.load(ordering: .relaxed)
        return now > lastUpdate && now - lastUpdate > retainIdleNanoseconds
    }
}
