import AsyncHTTPClient
import KubeModel
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

extension KubeClient {
    /// Opens a watch and returns its events as they arrive.
    ///
    /// The call returns once the server has accepted the watch; a non-2xx answer (such as `410 Gone` for an expired
    /// `resourceVersion`) is thrown from the call itself. The stream then
    /// - yields `ADDED`, `MODIFIED`, `DELETED` and `BOOKMARK` events in order;
    /// - ends when the server ends the response (its `timeoutSeconds` passed);
    /// - throws the `KubeError` of an `ERROR` event (`410` gives code `.gone`), `.transport` when the connection
    ///   breaks, `.timeout` when no byte arrives for the configuration's `watchIdleTimeout`, and `.decoding` for a
    ///   line that is not a watch event of `T`.
    ///
    /// At most the configuration's `maximumBufferedWatchEvents` events wait for the consumer; past that the stream
    /// delivers what it holds and then throws `.transport`, so the caller resumes from its last event. Cancelling
    /// the consuming task, or dropping the stream, cancels the HTTP request and frees its connection.
    public func watch<T: Decodable & Sendable>(
        _ resource: ResourceType, namespace: String?, options: WatchOptions, as type: T.Type
    ) async throws -> AsyncThrowingStream<WatchEvent<T>, any Error> {
        let target = RequestTarget.watch(resource, namespace: namespace, options: options)
        let operation = "WATCH \(target.path)"
        let body = try await openWatch(target, operation: operation)
        logger.debug("Kubernetes watch opened", metadata: ["operation": "\(operation)"])

        let (stream, continuation) = AsyncThrowingStream<WatchEvent<T>, any Error>.makeStream(
            bufferingPolicy: .bufferingOldest(max(1, configuration.maximumBufferedWatchEvents)))
        let reader = WatchReader<T>(
            operation: operation, idleTimeout: configuration.watchIdleTimeout,
            maximumLineSize: configuration.maximumWatchEventSize, logger: logger)
        let task = Task {
            await reader.run(body, into: continuation)
        }
        continuation.onTermination = { _ in
            task.cancel()
        }
        return stream
    }

    /// Sends the watch request and returns the body of a 2xx response, retrying once after a `401` when the token
    /// file has a new token.
    ///
    /// - Throws: `KubeError` for a non-2xx status, a transport failure, or no response head within the request
    ///   timeout.
    private func openWatch(_ target: RequestTarget, operation: String) async throws -> HTTPClientResponse.Body {
        do {
            let token = try tokens.token()
            var response = try await startWatch(target, token: token)
            if response.status == .unauthorized, tokens.isRefreshable,
                let fresh = try tokens.refresh(), fresh != token
            {
                _ = try await response.body.collect(upTo: configuration.maximumResponseBodySize)
                logger.debug(
                    "Kubernetes API rejected the token; retrying with the re-read token file",
                    metadata: ["operation": "\(operation)"])
                response = try await startWatch(target, token: fresh)
            }
            guard (200..<300).contains(response.status.code) else {
                let body = try await response.body.collect(upTo: configuration.maximumResponseBodySize)
                throw Self.statusError(
                    status: Int(response.status.code), headers: response.headers, body: body, operation: operation)
            }
            return response.body
        } catch {
            let failure = TransportFailure.classify(error, operation: operation)
            logger.debug(
                "Kubernetes watch could not be opened", metadata: ["operation": "\(operation)", "error": "\(failure)"])
            throw failure
        }
    }

    private func startWatch(_ target: RequestTarget, token: String?) async throws -> HTTPClientResponse {
        try await httpClient.execute(
            makeRequest(.GET, target, token: token), deadline: .now() + .timeAmount(configuration.requestTimeout))
    }
}

/// Reads one watch response body into a stream of events, and closes it when it goes quiet for too long.
private struct WatchReader<T: Decodable & Sendable>: Sendable {
    let operation: String
    let idleTimeout: Duration
    let maximumLineSize: Int
    let logger: Logger

    /// Decodes `body` into `continuation` until the body ends (finishing the stream) or fails (finishing it with the
    /// classified error). Returns when both the reading and its idle watchdog have stopped.
    func run(
        _ body: HTTPClientResponse.Body, into continuation: AsyncThrowingStream<WatchEvent<T>, any Error>.Continuation
    ) async {
        let activity = ActivityMonitor()
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await read(body, into: continuation, activity: activity)
                }
                group.addTask {
                    try await watchdog(activity)
                }
                try await group.next()
                group.cancelAll()
            }
            logger.debug("Kubernetes watch ended by the server", metadata: ["operation": "\(operation)"])
            continuation.finish()
        } catch {
            let failure = TransportFailure.classify(error, operation: operation)
            logger.debug("Kubernetes watch failed", metadata: ["operation": "\(operation)", "error": "\(failure)"])
            continuation.finish(throwing: failure)
        }
    }

    private func read(
        _ body: HTTPClientResponse.Body, into continuation: AsyncThrowingStream<WatchEvent<T>, any Error>.Continuation,
        activity: ActivityMonitor
    ) async throws {
        var splitter = WatchLineSplitter(maximumLineSize: maximumLineSize)
        let decoder = WatchEventDecoder<T>()
        for try await chunk in body {
            activity.record()
            for line in try splitter.append(chunk.readableBytesView) {
                try deliver(decoder.decode(line), to: continuation)
            }
        }
        if let line = splitter.finish() {
            try deliver(decoder.decode(line), to: continuation)
        }
    }

    private func deliver(
        _ event: WatchEvent<T>, to continuation: AsyncThrowingStream<WatchEvent<T>, any Error>.Continuation
    ) throws {
        if case .dropped = continuation.yield(event) {
            throw KubeError(
                code: .transport,
                message: "\(operation): the consumer fell too many events behind; closing the watch so it resumes")
        }
    }

    /// Throws `KubeError` code `.timeout` once `idleTimeout` passes without activity; runs until cancelled otherwise.
    private func watchdog(_ activity: ActivityMonitor) async throws {
        while true {
            let deadline = activity.last + idleTimeout
            guard ContinuousClock.now < deadline else {
                throw KubeError(
                    code: .timeout, message: "\(operation): the watch received nothing for \(idleTimeout)")
            }
            try await Task.sleep(until: deadline, clock: .continuous)
        }
    }
}

/// When bytes last arrived on a watch.
private final class ActivityMonitor: Sendable {
    private let instant = Mutex(ContinuousClock.now)

    var last: ContinuousClock.Instant {
        instant.withLock { $0 }
    }

    func record() {
        instant.withLock { $0 = .now }
    }
}
