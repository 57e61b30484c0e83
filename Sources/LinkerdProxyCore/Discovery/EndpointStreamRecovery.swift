/// Turns the updates of successive `Get` streams for one destination into one sequence of ``EndpointUpdate``s that
/// an ``EndpointSet`` can apply across reconnections (reference proxy §3.2: a reconnect followed by the first
/// message replaces the state).
///
/// The first stream's updates pass unchanged. Once anything has been delivered, the first update of every later
/// stream describes the whole set as the service now sees it, so it is turned into a replacement: an `add` becomes
/// ``EndpointUpdate/reset(_:)``, a `remove` (nothing left that this stream added) becomes `reset([])`, and
/// `noEndpoints`, which already empties the set, passes unchanged. Until that first update arrives, the endpoints
/// known before the reconnection stay in use.
public struct EndpointStreamRecovery: Hashable, Sendable {
    private var hasDelivered = false
    private var awaitingFirstOfStream = false

    public init() {}

    /// Records that a new stream was opened; its first update will replace the set if anything was delivered
    /// before.
    public mutating func streamStarted() {
        awaitingFirstOfStream = hasDelivered
    }

    /// The update to deliver for `update`, the next one received on the current stream.
    public mutating func deliver(_ update: EndpointUpdate) -> EndpointUpdate {
        defer {
            hasDelivered = true
            awaitingFirstOfStream = false
        }
        guard awaitingFirstOfStream else { return update }
        switch update {
        case .add(let endpoints), .reset(let endpoints): return .reset(endpoints)
        case .remove: return .reset([])
        case .noEndpoints: return update
        }
    }
}
