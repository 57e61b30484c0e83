/// A latency histogram with the reference proxy's millisecond buckets: 1–5, 10–50, 100–500, 1000–5000 and
/// 10000–50000 (the first five multiples of each power of ten), then `+Inf`.
///
/// Observations are kept in nanoseconds, so the sum is exact and rendered as fractional milliseconds; a value goes
/// into the first bucket whose bound it does not exceed (`le`, less than or equal), so 1 ms exactly counts under
/// `le="1"` and 1.5 ms under `le="2"`. Counts are stored per bucket and made cumulative when rendered, as Prometheus
/// requires. Sums and counts wrap instead of trapping: at a nanosecond resolution the sum wraps after 584 years of
/// latency, and a crash of the proxy would be worse than a counter reset.
struct LatencyHistogram {
    /// The finite upper bounds in milliseconds; `+Inf` follows.
    private static let boundsInMilliseconds: [UInt64] = [
        1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500,
        1_000, 2_000, 3_000, 4_000, 5_000, 10_000, 20_000, 30_000, 40_000, 50_000,
    ]
    private static let boundsInNanoseconds = boundsInMilliseconds.map { $0 * 1_000_000 }
    /// The `le` label values, `+Inf` last, one for each element of ``bucketCounts``.
    private static let bucketLabelValues = boundsInMilliseconds.map { String($0) } + ["+Inf"]

    /// The observations in each bucket alone (not cumulative), the last one being `+Inf`.
    private var bucketCounts = [UInt64](repeating: 0, count: boundsInMilliseconds.count + 1)
    private var sumNanoseconds: UInt64 = 0

    mutating func record(nanoseconds: UInt64) {
        let bucket = Self.boundsInNanoseconds.firstIndex { nanoseconds <= $0 } ?? Self.boundsInNanoseconds.count
        bucketCounts[bucket] &+= 1
        sumNanoseconds &+= nanoseconds
    }

    /// Appends the series `name_bucket{labels,le="…"}` for each bucket, cumulatively, then `name_count` and
    /// `name_sum` (the reference proxy's order).
    func append(name: String, labels: MetricLabels, to output: inout String) {
        let bucketName = name + "_bucket"
        let bucketLabelsPrefix = labels.text.isEmpty ? "le=\"" : labels.text + ",le=\""
        var cumulativeCount: UInt64 = 0
        for (bound, count) in zip(Self.bucketLabelValues, bucketCounts) {
            cumulativeCount &+= count
            PrometheusText.appendSample(
                name: bucketName, labels: bucketLabelsPrefix + bound + "\"", value: String(cumulativeCount),
                to: &output)
        }
        PrometheusText.appendSample(
            name: name + "_count", labels: labels.text, value: String(cumulativeCount), to: &output)
        PrometheusText.appendSample(
            name: name + "_sum", labels: labels.text,
            value: PrometheusText.milliseconds(nanoseconds: sumNanoseconds), to: &output)
    }
}
