import Prometheus
import Testing

@testable import LinkerdController

@Suite("Webhook metrics keep a bounded number of series")
struct WebhookMetricsTests {
    @Test func labelSetsBeyondTheLimitShareTheOverflowSeries() {
        let registry = PrometheusCollectorRegistry()
        let family = BoundedCounterFamily(
            label: "test_total", labelNames: ["namespace"], factory: PrometheusMetricsFactory(registry: registry))
        for index in 0..<(AdmissionMetrics.maximumSeries + 5) {
            family.increment(["ns-\(index)"])
        }
        family.increment(["ns-0"])
        let samples = registry.emitToString().split(separator: "\n").filter { $0.hasPrefix("test_total{") }
        #expect(samples.count == AdmissionMetrics.maximumSeries + 1)
        #expect(samples.contains(#"test_total{namespace="overflow"} 5"#))
        #expect(samples.contains(#"test_total{namespace="ns-0"} 2"#))
    }

    @Test func longLabelValuesAreCut() {
        let registry = PrometheusCollectorRegistry()
        let family = BoundedCounterFamily(
            label: "test_total", labelNames: ["value"], factory: PrometheusMetricsFactory(registry: registry))
        family.increment([String(repeating: "x", count: 500)])
        let expected = "test_total{value=\"\(String(repeating: "x", count: AdmissionMetrics.maximumValueLength))\"} 1"
        #expect(registry.emitToString().contains(expected))
    }

    @Test func annotationLabelNamesFollowUpstream() {
        #expect(AdmissionMetrics.annotationLabelNames.contains("proxy_cpu_request"))
        #expect(AdmissionMetrics.annotationLabelNames.contains("proxy_enable_native_sidecar"))
        #expect(Set(AdmissionMetrics.annotationLabelNames).count == AdmissionMetrics.labelledAnnotations.count)
    }
}
