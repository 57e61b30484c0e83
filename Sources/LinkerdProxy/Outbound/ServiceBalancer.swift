import LinkerdCore
import LinkerdProxyCore
import NIOCore
import NIOHTTP1
import Synchronization

/// The balancer of one logical service (reference proxy §3.4): the endpoints its Destination resolution gives, a
/// power-of-two-choices pick by Peak-EWMA load per request (``P2CBalancer``), and the bounded queue with fail-fast in
/// front of it (``BalancerQueue``). The pure state machines decide; this class keeps them under one lock, holds the
/// waiting requests' promises, and arms the failfast timers.
///
/// Discovery feeds it through ``apply(_:)``, from a control-plane task; requests take endpoints through
/// ``endpoint(on:)`` on their event loops, and give their RTT back through the route's completion. It is a
/// ``HTTPRequestRouter`` for the HTTP requests of connections to the service.
public final class ServiceBalancer: HTTPRequestRouter, Sendable {
    /// The endpoint a request was given, and what to call when it is done.
    struct Pick: Sendable {
        var endpoint: Endpoint
        var address: SocketAddress
        var metrics: HTTPEndpointMetrics?
    }

    private struct State: Sendable {
        var endpoints = EndpointSet()
        var addresses: [SocketAddress: Endpoint] = [:]
        /// Each endpoint's metrics handle, looked up once when it is added.
        var metrics: [SocketAddress: HTTPEndpointMetrics] = [:]
        var p2c: P2CBalancer<SocketAddress>
        var queue: BalancerQueue
        var waiting: [UInt64: EventLoopPromise<Pick>] = [:]
        var random = SystemRandomNumberGenerator()
    }

    /// The logical name and port, such as `web.emojivoto.svc.cluster.local:8080`.
    public let name: String
    private let state: Mutex<State>
    /// The connections using the balancer now, and when the last one closed: discovery keeps the balancer (and its
    /// `Get` stream) while any uses it, and for its idle timeout afterwards.
    private let connections = Atomic(0)
    private let lastReleased = Atomic<UInt64>(0)
    private let metricsLookup: (@Sendable (Endpoint) -> HTTPEndpointMetrics?)?

    /// - Parameters:
    ///   - queue: the queue in front of the balancer, as `LINKERD2_PROXY_OUTBOUND_HTTP_QUEUE_{CAPACITY,FAILFAST_TIMEOUT}`
    ///     size it (10000, 3 s).
    ///   - metrics: the request metrics of an endpoint (the registry's handle for its labels); nil records none.
    public init(
        name: String, queue: BalancerQueue, defaultRTT: Duration = .milliseconds(30),
        decay: Duration = .seconds(10), metrics: (@Sendable (Endpoint) -> HTTPEndpointMetrics?)? = nil
    ) {
        self.name = name
        self.metricsLookup = metrics
        state = Mutex(
            State(p2c: P2CBalancer(defaultRTT: defaultRTT, decay: decay), queue: queue))
    }

    /// A connection starts using the balancer; balance it with ``connectionClosed()``.
    func connectionOpened() {
        connections.wrappingAdd(1, ordering: .relaxed)
    }

    /// A connection that used the balancer closed.
    func connectionClosed() {
        lastReleased.store(NIODeadline.now().uptimeNanoseconds, ordering: .relaxed)
        connections.wrappingSubtract(1, ordering: .relaxed)
    }

    /// Whether a connection uses the balancer, or when the last one closed (0 if none ever did).
    var usage: (inUse: Bool, lastReleased: UInt64) {
        (connections.load(ordering: .relaxed) > 0, lastReleased.load(ordering: .relaxed))
    }

    /// The endpoints known now.
    public var endpoints: [Endpoint] { state.withLock { $0.endpoints.endpoints } }

    /// Applies a Destination update; requests waiting for an endpoint are dispatched once one is ready.
    public func apply(_ update: EndpointUpdate) {
        let now = NIODeadline.now().uptimeNanoseconds
        let dispatched: [(EventLoopPromise<Pick>, Pick)] = state.withLock { state in
            state.endpoints.apply(update)
            var addresses: [SocketAddress: Endpoint] = [:]
            /// Each endpoint's metrics handle, looked up once when it is added.
            var metrics: [SocketAddress: HTTPEndpointMetrics] = [:]
            for endpoint in state.endpoints.endpoints {
                if let address = try? SocketAddress(endpoint.address) {
                    addresses[address] = endpoint
                }
            }
            state.addresses = addresses
            if let lookup = self.metricsLookup {
                var handles: [SocketAddress: HTTPEndpointMetrics] = [:]
                for (address, endpoint) in addresses {
                    if let known = state.metrics[address] {
                        handles[address] = known
                    } else if let created = lookup(endpoint) {
                        handles[address] = created
                    }
                }
                state.metrics = handles
            }
            state.p2c.replaceEndpoints(with: addresses.keys, now: now)
            guard state.p2c.readyCount > 0 else {
                state.queue.endpointsBecameUnready()
                return []
            }
            var dispatched: [(EventLoopPromise<Pick>, Pick)] = []
            for id in state.queue.endpointsBecameReady() {
                guard let promise = state.waiting.removeValue(forKey: id), let pick = Self.pick(&state, now: now)
                else { continue }
                dispatched.append((promise, pick))
            }
            return dispatched
        }
        for (promise, pick) in dispatched {
            promise.succeed(pick)
        }
    }

    /// An endpoint for one request, on `eventLoop`: at once when one is ready, after waiting in the queue otherwise;
    /// fails with ``HTTPProxyError/failFast(service:timeout:)`` when none becomes ready within the failfast timeout
    /// (and at once while the gate is shut), ``HTTPProxyError/loadShed`` when the queue is full.
    func endpoint(on eventLoop: any EventLoop) -> EventLoopFuture<Pick> {
        let now = NIODeadline.now().uptimeNanoseconds
        let promise = eventLoop.makePromise(of: Pick.self)
        let (decision, pick, timeout): (BalancerQueue.Arrival, Pick?, Duration) = state.withLock { state in
            let arrival = state.queue.requestArrived(now: now)
            switch arrival {
            case .dispatch:
                return (arrival, Self.pick(&state, now: now), state.queue.failfastTimeout)
            case .enqueued(let id, _):
                state.waiting[id] = promise
                return (arrival, nil, state.queue.failfastTimeout)
            case .failFast, .loadShed:
                return (arrival, nil, state.queue.failfastTimeout)
            }
        }
        switch decision {
        case .dispatch:
            if let pick {
                promise.succeed(pick)
            } else {
                promise.fail(HTTPProxyError.unexpected("the balancer had no endpoint to dispatch to"))
            }
        case .enqueued(_, let deadline?):
            eventLoop.scheduleTask(deadline: NIODeadline.uptimeNanoseconds(deadline)) { [self] in
                failfastTimerFired()
            }
        case .enqueued(_, nil):
            break
        case .failFast:
            promise.fail(HTTPProxyError.failFast(service: name, timeout: TimeAmount(timeout)))
        case .loadShed:
            promise.fail(HTTPProxyError.loadShed)
        }
        return promise.futureResult
    }

    /// Records the end of a request sent to `address`: its RTT sample, or nil when it failed.
    func finished(_ address: SocketAddress, rttNanoseconds: UInt64?) {
        let now = NIODeadline.now().uptimeNanoseconds
        state.withLock { state in
            state.p2c.requestFinished(
                address, rtt: rttNanoseconds.map { Duration.nanoseconds(Int64(clamping: $0)) }, now: now)
        }
    }

    func route(_ head: HTTPRequestHead, on eventLoop: any EventLoop) -> EventLoopFuture<UpstreamRoute> {
        endpoint(on: eventLoop).map { pick in
            var route = OutboundEndpoint(pick).route(for: head)
            route.metrics = pick.metrics
            let address = pick.address
            route.onComplete = { [self] rtt in finished(address, rttNanoseconds: rtt) }
            return route
        }
    }

    private func failfastTimerFired() {
        let now = NIODeadline.now().uptimeNanoseconds
        let (failed, timeout): ([EventLoopPromise<Pick>], Duration) = state.withLock { state in
            let ids = state.queue.failfastTimerFired(now: now)
            return (ids.compactMap { state.waiting.removeValue(forKey: $0) }, state.queue.failfastTimeout)
        }
        for promise in failed {
            promise.fail(HTTPProxyError.failFast(service: name, timeout: TimeAmount(timeout)))
        }
    }

    private static func pick(_ state: inout State, now: UInt64) -> Pick? {
        guard let address = state.p2c.pick(now: now, using: &state.random), let endpoint = state.addresses[address]
        else { return nil }
        state.p2c.requestStarted(address)
        return Pick(endpoint: endpoint, address: address, metrics: state.metrics[address])
    }
}

extension OutboundEndpoint {
    /// The endpoint a balancer picked, with discovery's identity, server name and hint.
    init(_ pick: ServiceBalancer.Pick) {
        self.init(
            address: pick.address, identity: pick.endpoint.tlsIdentity, serverName: pick.endpoint.tlsServerName,
            protocolHint: pick.endpoint.protocolHint)
    }
}
