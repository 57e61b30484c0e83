import NIOCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

extension Channel {
    /// The original destination of this accepted TCP connection: where it was going before a `nat` `REDIRECT` or
    /// `DNAT` rule sent it here. See ``OriginalDestination`` for what the kernel needs (conntrack and the rule).
    ///
    /// Call it on an accepted child channel, typically in the server's child channel initializer or a handler's
    /// `channelActive`. The future fails with an ``OriginalDestinationError``: `notRedirected` (naming the local
    /// address) when no rule rewrote the connection, `systemCallFailed` when `getsockopt` fails (`EBADF` once the
    /// channel is closed), or `unsupportedSocket` for a channel without an IP socket (such as an `EmbeddedChannel`).
    ///
    /// Why a future rather than a synchronous throwing call: NIO gives no access to a channel's descriptor, only
    /// socket options through `SocketOptionProvider`. Called on the channel's event loop (as it is from the
    /// initializer or a handler), the provider runs `getsockopt` at once and returns an already-completed future, so
    /// callbacks chained on it run inline, without an event-loop hop. The cost per connection is NIO's option buffer,
    /// the option future and this call's promise; the local address it compares with is the one NIO keeps for the
    /// channel, so there is no `getsockname`. Called from elsewhere, the read is submitted to the event loop.
    public func originalDestination() -> EventLoopFuture<SocketAddress> {
        guard let provider = self as? any SocketOptionProvider else {
            return eventLoop.makeFailedFuture(
                OriginalDestinationError.unsupportedSocket(
                    reason: "the channel (\(type(of: self))) gives no access to socket options"))
        }
        guard let local = localAddress else {
            return eventLoop.makeFailedFuture(
                OriginalDestinationError.unsupportedSocket(
                    reason: "the channel has no local address (it is closed or not bound)"))
        }
        let query: OriginalDestinationQuery
        do {
            query = try OriginalDestinationQuery(localAddress: local)
        } catch {
            return eventLoop.makeFailedFuture(error)
        }
        let level = NIOBSDSocket.OptionLevel(rawValue: query.level)
        let name = NIOBSDSocket.Option(rawValue: OriginalDestinationQuery.optionName)
        let promise = eventLoop.makePromise(of: SocketAddress.self)
        switch query {
        case .ipv4:
            let option: EventLoopFuture<sockaddr_in> = provider.unsafeGetSocketOption(level: level, name: name)
            option.whenComplete { promise.completeWith(query.interpret($0.map(SocketAddress.init), local: local)) }
        case .ipv6:
            let option: EventLoopFuture<sockaddr_in6> = provider.unsafeGetSocketOption(level: level, name: name)
            option.whenComplete { promise.completeWith(query.interpret($0.map(SocketAddress.init), local: local)) }
        }
        return promise.futureResult
    }
}

extension OriginalDestinationQuery {
    /// The answer for a `getsockopt` done by NIO, whose failures are `IOError`s carrying the errno.
    fileprivate func interpret(
        _ result: Result<SocketAddress, any Error>,
        local: SocketAddress
    ) -> Result<SocketAddress, any Error> {
        switch result {
        case .success(let destination):
            return Result { () throws(OriginalDestinationError) in try checked(destination, localAddress: local) }
                .mapError { $0 }
        case .failure(let error as IOError):
            return .failure(failure(errno: error.errnoCode, localAddress: local))
        case .failure(let error):
            return .failure(error)
        }
    }
}
