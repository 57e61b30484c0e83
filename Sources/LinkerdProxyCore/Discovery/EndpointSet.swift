import LinkerdCore

/// The endpoints of one logical destination, kept current by applying the ``EndpointUpdate``s of its resolution in
/// order; what a balancer reads to choose among ready endpoints.
///
/// It holds at most one endpoint per address. Applying an update never fails: updates about addresses the set does
/// not hold are ignored, as the Destination service may repeat or reorder what it knows.
public struct EndpointSet: Hashable, Sendable {
    /// What the resolution has said about the destination so far.
    public enum Status: Hashable, Sendable {
        /// No update has been applied yet: the destination may or may not exist, so requests should wait (until
        /// their failfast timeout) rather than fail.
        case awaitingFirstUpdate
        /// The destination exists; ``EndpointSet/endpoints`` may still be empty.
        case resolved
        /// The Destination service said the name does not exist (`no_endpoints{exists: false}`).
        case doesNotExist
    }

    public private(set) var status: Status = .awaitingFirstUpdate
    private var byAddress: [AddressKey: Endpoint] = [:]

    /// An empty set that has not seen any update.
    public init() {}

    /// The set after applying `updates`, in order, to an empty set.
    public init(applying updates: some Sequence<EndpointUpdate>) {
        for update in updates {
            apply(update)
        }
    }

    /// Applies one update:
    /// - ``EndpointUpdate/add(_:)`` inserts each endpoint, replacing one with the same address;
    /// - ``EndpointUpdate/remove(_:)`` drops the endpoints with those addresses;
    /// - ``EndpointUpdate/noEndpoints(exists:)`` empties the set;
    /// - ``EndpointUpdate/reset(_:)`` replaces the set with its endpoints.
    ///
    /// Every update but `noEndpoints(exists: false)` leaves the status ``Status/resolved``.
    public mutating func apply(_ update: EndpointUpdate) {
        switch update {
        case .add(let endpoints):
            insert(endpoints)
            status = .resolved
        case .remove(let addresses):
            for address in addresses {
                byAddress.removeValue(forKey: AddressKey(address))
            }
            status = .resolved
        case .noEndpoints(let exists):
            byAddress.removeAll()
            status = exists ? .resolved : .doesNotExist
        case .reset(let endpoints):
            byAddress.removeAll()
            insert(endpoints)
            status = .resolved
        }
    }

    /// The endpoints, ordered by address (IPv4 before IPv6, then by address and port), so that every reader sees
    /// the same order for the same set.
    public var endpoints: [Endpoint] {
        byAddress.values.sorted { Self.precedes($0.address, $1.address) }
    }

    /// The endpoint at `address`, if the set holds one.
    public subscript(address: IPSocketAddress) -> Endpoint? {
        byAddress[AddressKey(address)]
    }

    public var count: Int {
        byAddress.count
    }

    public var isEmpty: Bool {
        byAddress.isEmpty
    }

    private mutating func insert(_ endpoints: [Endpoint]) {
        for endpoint in endpoints {
            byAddress[AddressKey(endpoint.address)] = endpoint
        }
    }

    private static func precedes(_ lhs: IPSocketAddress, _ rhs: IPSocketAddress) -> Bool {
        switch (lhs.ip, rhs.ip) {
        case (.v4(let left), .v4(let right)) where left != right: left < right
        case (.v6(let left), .v6(let right)) where left != right: left < right
        case (.v4, .v6): true
        case (.v6, .v4): false
        default: lhs.port < rhs.port
        }
    }
}

/// An ``IPSocketAddress`` as a dictionary key made of 64-bit words.
///
/// Swift 6.3's debug builds on x86-64 miscompile functions that take an `IPSocketAddress` parameter (a `UInt128`
/// payload, so 16-byte aligned) and pass it on to generic code such as `Dictionary`'s subscript: the parameter is
/// spilled to an 8-byte-aligned stack slot and reloaded with an aligned SSE load, which crashes. Keying by words
/// keeps the set's lookups off that path.
private struct AddressKey: Hashable {
    let high: UInt64
    let low: UInt64
    let isV6: Bool
    let port: UInt16

    init(_ address: IPSocketAddress) {
        switch address.ip {
        case .v4(let value):
            (high, low, isV6) = (0, UInt64(value), false)
        case .v6(let value):
            (high, low, isV6) = (UInt64(truncatingIfNeeded: value >> 64), UInt64(truncatingIfNeeded: value), true)
        }
        port = address.port
    }
}
