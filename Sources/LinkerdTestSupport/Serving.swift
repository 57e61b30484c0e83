/// Runs a server (`run`, its `run()`) in a child task for the duration of `body`, which gets the port `bound`
/// reports; then cancels the server and waits for it to return.
public func whileServing(
    _ run: @escaping @Sendable () async throws -> Void, bound: () async throws -> Int,
    _ body: (Int) async throws -> Void
) async throws {
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await run() }
        do {
            try await body(try await bound())
        } catch {
            group.cancelAll()
            throw error
        }
        group.cancelAll()
        try await group.waitForAll()
    }
}
