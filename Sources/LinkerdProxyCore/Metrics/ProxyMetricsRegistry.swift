import Synchronization

/// The proxy's legacy ("linkerd viz") HTTP and TCP metrics, as the admin server's `/metrics` serves them: the
/// registry of the per-label-set handles the I/O layer records into, their rendering in the Prometheus text format,
/// and the eviction of series nobody updates any more.
///
/// The I/O layer looks a handle up once per target or connection (``httpEndpoint(_:now:)``,
/// ``transport(_:now:)``), which takes the registry's lock, and keeps it; recording goes through the handle alone.
///
/// Eviction (``evictIdle(now:retainIdle:)``, `LINKERD2_PROXY_METRICS_RETAIN_IDLE`) follows the reference proxy: a
/// series goes when it was not updated for longer than the retention **and** no one but the registry holds its
/// handle. A handle in use is therefore never evicted, so a connection's counts cannot be recorded into a handle
/// the registry has forgotten, and no re-insertion is needed; a TCP series with open connections is kept as well,
/// even if its handle was dropped without the close being recorded. A series looked up again after its eviction
/// starts from zero, which Prometheus reads as a counter reset.
///
/// A scrape lists HTTP families, then TCP ones, then the error counters (``ProxyErrorMetrics``); within each
/// family, series are sorted by their label text, so the output does not depend on the order of lookups or
/// evictions. A group of families is left out altogether while it has no series, as the reference proxy does.
public final class ProxyMetricsRegistry: Sendable {
    private let handles = Mutex(Handles())
    /// The `*_errors_total` families, rendered after the TCP ones.
    public let errors = ProxyErrorMetrics()

    private struct Handles {
        var httpEndpoints: [MetricLabels: HTTPEndpointMetrics] = [:]
        var transports: [MetricLabels: TransportMetrics] = [:]
    }

    public init() {}

    /// The handle of an endpoint's HTTP series, created when new; a lookup counts as an update of the series.
    public func httpEndpoint(_ labels: MetricLabels, now: UInt64) -> HTTPEndpointMetrics {
        handles.withLock { Self.handle(for: labels, now: now, in: &$0.httpEndpoints) }
    }

    /// The handle of a transport's TCP series, created when new; a lookup counts as an update of the series.
    public func transport(_ labels: MetricLabels, now: UInt64) -> TransportMetrics {
        handles.withLock { Self.handle(for: labels, now: now, in: &$0.transports) }
    }

    /// Drops the series not updated for longer than `retainIdle` before `now` whose handles only the registry
    /// holds, and, for TCP series, that have no open connection.
    ///
    /// Whether a handle is held elsewhere is read from its reference count under the registry's lock: a new
    /// reference can only come from a lookup, which needs that lock, so a handle found unreferenced cannot be handed
    /// out while it is being removed.
    public func evictIdle(now: UInt64, retainIdle: Duration) {
        let retainIdleNanoseconds = Self.nanoseconds(retainIdle)
        handles.withLock { handles in
            Self.evict(from: &handles.httpEndpoints, now: now, retainIdleNanoseconds: retainIdleNanoseconds)
            Self.evict(from: &handles.transports, now: now, retainIdleNanoseconds: retainIdleNanoseconds)
        }
    }

    /// The Prometheus text exposition of every series.
    public func render() -> String {
        var output = ""
        render(into: &output)
        return output
    }

    /// Appends the Prometheus text exposition of every series to `output`.
    ///
    /// The registry's lock is held only to copy the list of handles; each handle's lines are formatted outside it,
    /// so lookups by new connections do not wait for the scrape.
    public func render(into output: inout String) {
        let (httpEndpoints, transports) = handles.withLock { handles in
            (Array(handles.httpEndpoints.values), Array(handles.transports.values))
        }
        Self.appendHTTPFamilies(httpEndpoints.sorted { $0.labels.text < $1.labels.text }, to: &output)
        Self.appendTransportFamilies(transports.sorted { $0.labels.text < $1.labels.text }, to: &output)
        errors.render(into: &output)
    }

    private static func appendHTTPFamilies(_ endpoints: [HTTPEndpointMetrics], to output: inout String) {
        guard !endpoints.isEmpty else { return }
        var latencies = ""
        var responseTotals = ""
        PrometheusText.appendHeader(
            name: "request_total", type: "counter", help: "Total count of HTTP requests.", to: &output)
        for endpoint in endpoints {
            PrometheusText.appendSample(
                name: "request_total", labels: endpoint.labels.text, value: String(endpoint.requestTotal),
                to: &output)
            endpoint.appendResponseSeries(latencies: &latencies, totals: &responseTotals)
        }
        PrometheusText.appendHeader(
            name: "response_latency_ms", type: "histogram",
            help: "Elapsed times between a request's headers being received and its response stream completing",
            to: &output)
        output += latencies
        PrometheusText.appendHeader(
            name: "response_total", type: "counter", help: "Total count of HTTP responses.", to: &output)
        output += responseTotals
    }

    private static func appendTransportFamilies(_ transports: [TransportMetrics], to output: inout String) {
        guard !transports.isEmpty else { return }
        func appendFamily(name: String, type: String, help: String, value: (TransportMetrics) -> String) {
            PrometheusText.appendHeader(name: name, type: type, help: help, to: &output)
            for transport in transports {
                PrometheusText.appendSample(
                    name: name, labels: transport.labels.text, value: value(transport), to: &output)
            }
        }
        appendFamily(name: "tcp_open_total", type: "counter", help: "Total count of opened connections") {
            String($0.openedTotal)
        }
        appendFamily(name: "tcp_open_connections", type: "gauge", help: "Number of currently-open connections") {
            String($0.openConnections)
        }
        appendFamily(name: "tcp_read_bytes_total", type: "counter", help: "Total count of bytes read from peers") {
            String($0.readBytesTotal)
        }
        appendFamily(name: "tcp_write_bytes_total", type: "counter", help: "Total count of bytes written to peers") {
            String($0.writtenBytesTotal)
        }
        PrometheusText.appendHeader(
            name: "tcp_close_total", type: "counter", help: "Total count of closed connections", to: &output)
        for transport in transports {
            transport.appendCloseSeries(to: &output)
        }
    }

    private static func handle<Handle: MetricsHandle>(
        for labels: MetricLabels, now: UInt64, in handles: inout [MetricLabels: Handle]
    ) -> Handle {
        if let existing = handles[labels] {
            existing.markUpdated(now: now)
            return existing
        }
        let created = Handle(labels: labels, now: now)
        handles[labels] = created
        return created
    }

    /// Removes the evictable entries whose handle the dictionary alone references.
    ///
    /// The evictable keys are collected first and the dictionary is modified only after that iteration ends:
    /// checking uniqueness while an iterator (or any copy of the dictionary) is alive would count its reference.
    private static func evict<Handle: MetricsHandle>(
        from handles: inout [MetricLabels: Handle], now: UInt64, retainIdleNanoseconds: UInt64
    ) {
        let evictableLabels = handles.compactMap { labels, handle in
            handle.isEvictable(now: now, retainIdleNanoseconds: retainIdleNanoseconds) ? labels : nil
        }
        for labels in evictableLabels where isKnownUniquelyReferenced(&handles[labels]!) {
            handles[labels] = nil
        }
    }

    /// A duration as whole nanoseconds, zero when negative, saturating at `UInt64.max` (585 years).
    private static func nanoseconds(_ duration: Duration) -> UInt64 {
        guard duration > .zero else { return 0 }
        let (seconds, attoseconds) = duration.components
        let (wholeSeconds, overflow) = UInt64(seconds).multipliedReportingOverflow(by: 1_000_000_000)
        guard !overflow else { return .max }
        let (total, carry) = wholeSeconds.addingReportingOverflow(UInt64(attoseconds / 1_000_000_000))
        return carry ? .max : total
    }
}
