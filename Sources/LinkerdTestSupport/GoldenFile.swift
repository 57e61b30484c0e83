import Foundation

/// Golden files: expected output kept next to the tests, compared as text, and rewritten from the current output
/// when the environment has `UPDATE_GOLDEN=1` (then review the diff before committing it).
///
/// The comparison returns a message rather than recording an issue itself, so that this library stays free of a
/// test framework: `if let mismatch = try GoldenFile.mismatch(...) { Issue.record(Comment(rawValue: mismatch)) }`.
public enum GoldenFile {
    /// Whether golden files are being rewritten (`UPDATE_GOLDEN=1`).
    public static var isUpdating: Bool {
        ProcessInfo.processInfo.environment["UPDATE_GOLDEN"] == "1"
    }

    /// Compares `actual` with the contents of `file`, or writes `actual` there when updating.
    ///
    /// - Parameter name: how the message names the file, such as `patch.golden.json of default-pod`.
    /// - Returns: nil when they are equal (or the file was rewritten); otherwise a message naming the file (or
    ///   saying it is missing) with the differing lines.
    /// - Throws: when rewriting the file fails.
    public static func mismatch(_ actual: String, file: URL, name: String? = nil) throws -> String? {
        if isUpdating {
            try actual.write(to: file, atomically: true, encoding: .utf8)
            return nil
        }
        guard let expected = try? String(contentsOf: file, encoding: .utf8) else {
            return "missing golden file \(file.path); run with UPDATE_GOLDEN=1"
        }
        guard expected != actual else { return nil }
        return "\(name ?? file.lastPathComponent) differs (run with UPDATE_GOLDEN=1 to accept):\n"
            + lineDiff(expected: expected, actual: actual)
    }

    /// The differing middle of two texts, line by line: what they share at the start and end is left out, and each
    /// side is cut after 40 lines.
    public static func lineDiff(expected: String, actual: String) -> String {
        let old = expected.split(separator: "\n", omittingEmptySubsequences: false)
        let new = actual.split(separator: "\n", omittingEmptySubsequences: false)
        var start = 0
        while start < old.count, start < new.count, old[start] == new[start] {
            start += 1
        }
        var oldEnd = old.count
        var newEnd = new.count
        while oldEnd > start, newEnd > start, old[oldEnd - 1] == new[newEnd - 1] {
            oldEnd -= 1
            newEnd -= 1
        }
        let limit = 40
        var lines = ["@@ line \(start + 1) @@"]
        lines += old[start..<oldEnd].prefix(limit).map { "- \($0)" }
        if oldEnd - start > limit { lines.append("- … \(oldEnd - start - limit) more lines") }
        lines += new[start..<newEnd].prefix(limit).map { "+ \($0)" }
        if newEnd - start > limit { lines.append("+ … \(newEnd - start - limit) more lines") }
        return lines.joined(separator: "\n")
    }
}
