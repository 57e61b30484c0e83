import Foundation
import LinkerdInject
import Metrics
import Synchronization

/// The proxy injector's metrics (control-plane.md §2.9), plus two of ours:
///
/// - `proxy_inject_admission_requests_total{owner_kind, namespace, annotation_at, <annotation labels>}`: every
///   reviewed object;
/// - `proxy_inject_admission_responses_total{..., skip, skip_reason}`: every answer with a decision;
///   `skip="true"` only when nothing was patched (a skipped pod that gets the opaque-ports annotation counts as
///   `skip="false"`, as upstream);
/// - `proxy_inject_annotation_warnings_total{namespace, annotation}` (ours): annotation values that were ignored;
/// - `proxy_inject_admission_errors_total` (ours): reviews answered without a patch because of an internal error.
///
/// The annotation labels are one per inheritable proxy annotation (upstream's `inject.ProxyAnnotations`), named
/// after the part after `/` with `-` replaced by `_` (`proxy_cpu_request`), valued with the pod's effective
/// annotation (empty when absent).
///
/// Cardinality is bounded: label values are cut to 64 characters, and each metric keeps at most
/// `maximumSeries` label sets; further label sets are counted in one series whose every label is `overflow`.
final class AdmissionMetrics: Sendable {
    /// The annotations that become labels, in label order (upstream's `inject.ProxyAnnotations`).
    static let labelledAnnotations: [String] = [
        MeshKeys.adminPort, MeshKeys.controlPort, MeshKeys.enableDebugSidecar, MeshKeys.enableExternalProfiles,
        MeshKeys.imagePullPolicy, MeshKeys.inboundPort, MeshKeys.outboundPort, MeshKeys.podInboundPorts,
        MeshKeys.proxyCPULimit, MeshKeys.proxyCPURequest, MeshKeys.proxyImage, MeshKeys.proxyLogFormat,
        MeshKeys.proxyLogLevel, MeshKeys.proxyLogHTTPHeaders, MeshKeys.proxyMemoryLimit, MeshKeys.proxyMemoryRequest,
        MeshKeys.proxyEphemeralStorageLimit, MeshKeys.proxyEphemeralStorageRequest, MeshKeys.proxyUID,
        MeshKeys.proxyGID, MeshKeys.proxyVersionOverride, MeshKeys.requireIdentityInboundPorts,
        MeshKeys.skipInboundPorts, MeshKeys.opaquePorts, MeshKeys.skipOutboundPorts,
        MeshKeys.outboundConnectTimeout, MeshKeys.inboundConnectTimeout, MeshKeys.proxyAwait,
        MeshKeys.defaultInboundPolicy, MeshKeys.skipSubnets, MeshKeys.accessLog, MeshKeys.shutdownGracePeriod,
        MeshKeys.outboundDiscoveryCacheUnusedTimeout, MeshKeys.inboundDiscoveryCacheUnusedTimeout,
        MeshKeys.disableOutboundProtocolDetectTimeout, MeshKeys.disableInboundProtocolDetectTimeout,
        MeshKeys.proxyAdminShutdown, MeshKeys.metricsHostnameLabels, MeshKeys.nativeSidecar,
    ]

    /// `proxy_cpu_request` for `config.linkerd.io/proxy-cpu-request`.
    static let annotationLabelNames: [String] = labelledAnnotations.map { key in
        let name = key.split(separator: "/", maxSplits: 1).last.map(String.init) ?? key
        return name.replacingOccurrences(of: "-", with: "_")
    }

    /// Label sets kept per metric before new ones go to the overflow series.
    static let maximumSeries = 2000
    /// The longest label value kept.
    static let maximumValueLength = 64

    private let requests: BoundedCounterFamily
    private let responses: BoundedCounterFamily
    private let warnings: BoundedCounterFamily
    let errors: Counter

    init(factory: any MetricsFactory) {
        let common = ["owner_kind", "namespace", "annotation_at"] + Self.annotationLabelNames
        requests = BoundedCounterFamily(
            label: "proxy_inject_admission_requests_total", labelNames: common, factory: factory)
        responses = BoundedCounterFamily(
            label: "proxy_inject_admission_responses_total", labelNames: common + ["skip", "skip_reason"],
            factory: factory)
        warnings = BoundedCounterFamily(
            label: "proxy_inject_annotation_warnings_total", labelNames: ["namespace", "annotation"], factory: factory)
        errors = Counter(label: "proxy_inject_admission_errors_total", factory: factory)
    }

    /// Counts one reviewed object and its answer.
    func count(ownerKind: String, namespace: String, report: InjectionReport, patched: Bool) {
        var values = [ownerKind, namespace, report.annotationAt]
        values.reserveCapacity(5 + Self.labelledAnnotations.count)
        for key in Self.labelledAnnotations {
            values.append(report.effectiveAnnotations[key] ?? "")
        }
        requests.increment(values)
        let skipped = !report.injectable && !patched
        values.append(skipped ? "true" : "false")
        values.append(skipped ? report.skipReasons.map(\.rawValue).joined(separator: ",") : "")
        responses.increment(values)
    }

    func countWarning(namespace: String, annotation: String) {
        warnings.increment([namespace, annotation])
    }
}

/// One counter per label set, cached (creating a counter takes the metrics backend's registry lock and sanitises
/// the labels) and capped at `AdmissionMetrics.maximumSeries` label sets.
final class BoundedCounterFamily: Sendable {
    private let label: String
    private let labelNames: [String]
    private let factory: any MetricsFactory
    private let counters = Mutex<(series: [[String]: Counter], overflow: Counter?)>(([:], nil))

    init(label: String, labelNames: [String], factory: any MetricsFactory) {
        self.label = label
        self.labelNames = labelNames
        self.factory = factory
    }

    func increment(_ values: [String]) {
        let values = values.map { value in
            value.count > AdmissionMetrics.maximumValueLength
                ? String(value.prefix(AdmissionMetrics.maximumValueLength)) : value
        }
        let counter = counters.withLock { state in
            if let counter = state.series[values] { return counter }
            if state.series.count < AdmissionMetrics.maximumSeries {
                let counter = Counter(label: label, dimensions: Array(zip(labelNames, values)), factory: factory)
                state.series[values] = counter
                return counter
            }
            if let overflow = state.overflow { return overflow }
            let overflow = Counter(
                label: label, dimensions: labelNames.map { ($0, "overflow") }, factory: factory)
            state.overflow = overflow
            return overflow
        }
        counter.increment()
    }
}
