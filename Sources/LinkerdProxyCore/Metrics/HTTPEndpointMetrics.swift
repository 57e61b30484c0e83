import Synchronization

/// The HTTP metrics of one endpoint label set (`request_total`, `response_latency_ms`, `response_total`): a handle
/// the I/O layer gets once per target from ``ProxyMetricsRegistry/httpEndpoint(_:now:)`` and keeps while it serves
/// that target, so recording never takes the registry's lock.
///
/// The request count is an atomic; responses go into a per-handle mutex, held only to bump a count and a histogram
/// bucket (and by a scrape while it formats this endpoint's lines), so it is seldom contended. Every record stores
/// `now` as the time of the last update: once no one holds the handle, the series is kept for the retention after
/// that.
public final class HTTPEndpointMetrics: Sendable, MetricsHandle {
    /// The endpoint labels the series start with.
    public let labels: MetricLabels
    private let requestCount = Atomic<UInt64>(0)
    private let lastUpdate: LastUpdate
    private let responses = Mutex(ResponseStatistics())

    init(labels: MetricLabels, now: UInt64) {
        self.labels = labels
        self.lastUpdate = LastUpdate(now)
    }

    /// Counts a request (`request_total`).
    public func recordRequest(now: UInt64) {
        requestCount.wrappingAdd(1, ordering: .relaxed)
        markUpdated(now: now)
    }

    /// Counts a response (`response_total`) and its latency (`response_latency_ms`).
    ///
    /// - Parameters:
    ///   - statusCode: the HTTP status, the `status_code` label of both families.
    ///   - grpcStatus: the `grpc-status` of a gRPC response, its `grpc_status` label; nil for other responses, which
    ///     then have no such label.
    ///   - isFailure: whether the response classifies as `failure` rather than `success`.
    ///   - error: why the response failed without a status of its own, such as `timeout`, `h2(PROTOCOL_ERROR)` or
    ///     `unclassified`, the `error` label; nil for none, which then has no such label.
    ///   - latencyNanoseconds: from the request's headers being received to the response stream completing.
    public func recordResponse(
        statusCode: Int, grpcStatus: Int?, isFailure: Bool, error: String?, latencyNanoseconds: UInt64, now: UInt64
    ) {
        let responseClass = ResponseClass(
            statusCode: statusCode, grpcStatus: grpcStatus, isFailure: isFailure, error: error)
        responses.withLock { statistics in
            statistics.counts[responseClass, default: 0] &+= 1
            statistics.latencies[statusCode, default: LatencyHistogram()].record(nanoseconds: latencyNanoseconds)
        }
        markUpdated(now: now)
    }

    func markUpdated(now: UInt64) {
        lastUpdate.record(now)
    }

    func isEvictable(now: UInt64, retainIdleNanoseconds: UInt64) -> Bool {
        lastUpdate.isIdle(now: now, retainIdleNanoseconds: retainIdleNanoseconds)
    }

    var requestTotal: UInt64 { requestCount.load(ordering: .relaxed) }

    /// Appends this endpoint's `response_latency_ms` series, by status code, and its `response_total` series, by
    /// status code and then class (see ``ResponseClass``), each in ascending order.
    func appendResponseSeries(latencies: inout String, totals: inout String) {
        responses.withLock { statistics in
            for (statusCode, histogram) in statistics.latencies.sorted(by: { $0.key < $1.key }) {
                histogram.append(
                    name: "response_latency_ms", labels: labels.appending("status_code", String(statusCode)),
                    to: &latencies)
            }
            for (responseClass, count) in statistics.counts.sorted(by: { $0.key < $1.key }) {
                PrometheusText.appendSample(
                    name: "response_total", labels: responseClass.labels(extending: labels).text,
                    value: String(count), to: &totals)
            }
        }
    }
}

/// What one endpoint's responses added up to.
private struct ResponseStatistics {
    var counts: [ResponseClass: UInt64] = [:]
    var latencies: [Int: LatencyHistogram] = [:]
}

/// The labels that tell one `response_total` series of an endpoint from another.
private struct ResponseClass: Hashable, Comparable {
    var statusCode: Int
    var grpcStatus: Int?
    var isFailure: Bool
    var error: String?

    /// The endpoint labels, then `status_code`, `classification`, and `grpc_status` and `error` when present.
    func labels(extending endpointLabels: MetricLabels) -> MetricLabels {
        var labels =
            endpointLabels
            .appending("status_code", String(statusCode))
            .appending("classification", isFailure ? "failure" : "success")
        if let grpcStatus {
            labels = labels.appending("grpc_status", String(grpcStatus))
        }
        if let error {
            labels = labels.appending("error", error)
        }
        return labels
    }

    /// By status code; then without a gRPC status before with one, by gRPC status; success before failure; and
    /// without an error before with one, by error.
    static func < (lhs: ResponseClass, rhs: ResponseClass) -> Bool {
        lhs.sortKey < rhs.sortKey
    }

    private var sortKey: (Int, Int, Int, Int, Int, String) {
        (statusCode, grpcStatus == nil ? 0 : 1, grpcStatus ?? 0, isFailure ? 1 : 0, error == nil ? 0 : 1, error ?? "")
    }
}
