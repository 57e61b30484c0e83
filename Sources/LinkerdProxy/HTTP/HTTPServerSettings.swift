import LinkerdProxyCore
import NIOCore
import NIOHTTP2
import Synchronization

/// How the proxy's HTTP servers of one side (inbound or outbound) treat their clients: HTTP/2 settings from
/// `LINKERD2_PROXY_{INBOUND,OUTBOUND}_SERVER_HTTP2_*` and the in-flight request limit
/// (`LINKERD2_PROXY_{INBOUND,OUTBOUND}_MAX_IN_FLIGHT`, excess load-shed with 503).
public struct HTTPServerSettings: Sendable {
    /// `SETTINGS_MAX_CONCURRENT_STREAMS`; 100 unless configured, a bound on one connection's streams.
    public var maxConcurrentStreams = 100
    /// `SETTINGS_MAX_HEADER_LIST_SIZE`; 64 KiB unless configured.
    public var maxHeaderListSize = maximumHeaderListSize
    /// `SETTINGS_MAX_FRAME_SIZE`; the protocol's 16384 unless configured.
    public var maxFrameSize: Int?
    /// The initial stream window (fixed windows; 65535 by default, as upstream).
    public var initialStreamWindowSize = 65535
    /// Pings every `interval`, closing a connection whose peer does not answer within `timeout`; nil sends none.
    public var keepAlive: (interval: TimeAmount, timeout: TimeAmount)?
    /// The most requests in flight on this side at once; more are answered 503 at once.
    public var maxInFlightRequests = 100_000

    public init() {}

    /// The settings a side's configuration gives.
    public init(http2: ProxyConfiguration.HTTP2Server, maxInFlightRequests: Int) {
        self.init()
        if let streams = http2.maxConcurrentStreams { maxConcurrentStreams = streams }
        if let headers = http2.maxHeaderListSize { maxHeaderListSize = headers }
        maxFrameSize = http2.maxFrameSize
        if case .fixed(let windows) = http2.flowControl { initialStreamWindowSize = windows.initialStreamWindowSize }
        keepAlive = http2.keepAlive.map { (TimeAmount($0.interval), TimeAmount($0.timeout)) }
        self.maxInFlightRequests = maxInFlightRequests
    }

    /// The HTTP/2 settings the proxy's server sends.
    var initialSettings: HTTP2Settings {
        var settings = [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: maxConcurrentStreams),
            HTTP2Setting(parameter: .maxHeaderListSize, value: maxHeaderListSize),
            HTTP2Setting(parameter: .initialWindowSize, value: initialStreamWindowSize),
        ]
        if let maxFrameSize {
            settings.append(HTTP2Setting(parameter: .maxFrameSize, value: maxFrameSize))
        }
        return settings
    }
}

/// The requests in flight on one proxy side, against ``HTTPServerSettings/maxInFlightRequests``.
final class InFlightRequests: Sendable {
    private let count = Atomic(0)
    let limit: Int

    init(limit: Int) {
        self.limit = limit
    }

    /// Counts a new request; false (and nothing counted) when the limit is reached.
    func admit() -> Bool {
        let after = count.wrappingAdd(1, ordering: .relaxed).newValue
        guard after <= limit else {
            count.wrappingSubtract(1, ordering: .relaxed)
            return false
        }
        return true
    }

    func release() {
        count.wrappingSubtract(1, ordering: .relaxed)
    }
}
