import Foundation

/// Runs `body` with a fresh directory under the system's temporary directory, and removes the directory afterwards.
func withTemporaryDirectory<Result>(
    _ body: (TemporaryDirectory) async throws -> Result
) async throws -> Result {
    let directory = try TemporaryDirectory()
    defer { directory.remove() }
    return try await body(directory)
}

/// A throw-away directory and helpers to write files in it.
struct TemporaryDirectory: Sendable {
    let path: String

    init() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent(
            "kube-client-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        path = url.path
    }

    /// Writes `contents` to `name` (which may contain subdirectories) and returns the file's absolute path.
    @discardableResult
    func write(_ name: String, _ contents: String) throws -> String {
        let url = URL(fileURLWithPath: path).appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(contents.utf8).write(to: url, options: .atomic)
        return url.path
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}
