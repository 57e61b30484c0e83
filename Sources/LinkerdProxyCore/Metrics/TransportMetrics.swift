import Synchronization

/// The TCP metrics of one transport label set (`tcp_open_total`, `tcp_open_connections`, `tcp_read_bytes_total`,
/// `tcp_write_bytes_total`, `tcp_close_total`): a handle the I/O layer gets once per connection from
/// ``ProxyMetricsRegistry/transport(_:now:)`` and keeps until the connection closes, so recording never takes the
/// registry's lock.
///
/// Byte counts are relaxed atomic adds, cheap enough for every read and write; a connection that would rather add
/// up its bytes itself can hand them over in bulk with ``recordTransferred(read:written:)``. Closes are counted by
/// `errno` label in a per-handle mutex, taken once per connection. Opening and closing store `now` as the time of
/// the last update; byte counts do not, since a series with open connections is never evicted anyway.
public final class TransportMetrics: Sendable, MetricsHandle {
    /// The transport labels the series start with.
    public let labels: MetricLabels
    private let openedCount = Atomic<UInt64>(0)
    private let openCount = Atomic<Int>(0)
    private let readByteCount = Atomic<UInt64>(0)
    private let writtenByteCount = Atomic<UInt64>(0)
    private let lastUpdate: LastUpdate
    /// Closes by `errno` label value: empty for a clean close, else the error's name. Keyed by name, not number,
    /// because the numbers without a name share `UNKNOWN_ERRNO` and must add up in one series.
    private let closeCounts = Mutex<[String: UInt64]>([:])

    init(labels: MetricLabels, now: UInt64) {
        self.labels = labels
        self.lastUpdate = LastUpdate(now)
    }

    /// Counts an opened connection (`tcp_open_total`) and adds it to the open ones (`tcp_open_connections`).
    public func recordOpened(now: UInt64) {
        openedCount.wrappingAdd(1, ordering: .relaxed)
        openCount.wrappingAdd(1, ordering: .relaxed)
        markUpdated(now: now)
    }

    /// Counts a closed connection (`tcp_close_total`) and takes it from the open ones; each call must follow a
    /// ``recordOpened(now:)`` on the same handle.
    ///
    /// - Parameter errno: the error number the connection failed with, its `errno` label (by name, such as
    ///   `ECONNRESET`); nil for a clean close, labelled `errno=""`.
    public func recordClosed(errno: Int32?, now: UInt64) {
        let errnoLabel = errno.map(ErrnoLabel.value) ?? ""
        closeCounts.withLock { $0[errnoLabel, default: 0] &+= 1 }
        openCount.wrappingSubtract(1, ordering: .relaxed)
        markUpdated(now: now)
    }

    /// Counts bytes read from the peer (`tcp_read_bytes_total`); `bytes` must not be negative.
    public func recordRead(_ bytes: Int) {
        readByteCount.wrappingAdd(UInt64(bytes), ordering: .relaxed)
    }

    /// Counts bytes written to the peer (`tcp_write_bytes_total`); `bytes` must not be negative.
    public func recordWritten(_ bytes: Int) {
        writtenByteCount.wrappingAdd(UInt64(bytes), ordering: .relaxed)
    }

    /// Counts bytes read and written that the connection added up itself, for instance on its event loop between
    /// flushes, or all at once when it closes; zero counts touch nothing. Neither may be negative.
    public func recordTransferred(read: Int, written: Int) {
        if read != 0 {
            recordRead(read)
        }
        if written != 0 {
            recordWritten(written)
        }
    }

    func markUpdated(now: UInt64) {
        lastUpdate.record(now)
    }

    /// A series with an open connection is never evictable, whatever its last update: the gauge must stay visible.
    func isEvictable(now: UInt64, retainIdleNanoseconds: UInt64) -> Bool {
        openCount.load(ordering: .relaxed) <= 0
            && lastUpdate.isIdle(now: now, retainIdleNanoseconds: retainIdleNanoseconds)
    }

    var openedTotal: UInt64 { openedCount.load(ordering: .relaxed) }
    var openConnections: Int { openCount.load(ordering: .relaxed) }
    var readBytesTotal: UInt64 { readByteCount.load(ordering: .relaxed) }
    var writtenBytesTotal: UInt64 { writtenByteCount.load(ordering: .relaxed) }

    /// Appends this transport's `tcp_close_total` series, ordered by `errno` label: clean closes (`""`) first.
    func appendCloseSeries(to output: inout String) {
        closeCounts.withLock { counts in
            for (errnoLabel, count) in counts.sorted(by: { $0.key < $1.key }) {
                PrometheusText.appendSample(
                    name: "tcp_close_total", labels: labels.appending("errno", errnoLabel).text, value: String(count),
                    to: &output)
            }
        }
    }
}
