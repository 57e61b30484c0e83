import Foundation
import KubeModel

/// Cuts a watch response body, which arrives in arbitrary chunks, into its newline-terminated JSON lines.
///
/// A line may span several chunks and a chunk may hold several lines. Blank lines are skipped, and a `\r` before the
/// newline is dropped. A line longer than the limit is an error rather than unbounded buffering.
struct WatchLineSplitter {
    /// The longest line accepted, in bytes, not counting the line break.
    let maximumLineSize: Int
    /// The start of a line whose end has not arrived yet. It never contains a newline.
    private var pending: [UInt8] = []

    init(maximumLineSize: Int) {
        self.maximumLineSize = maximumLineSize
    }

    /// The lines completed by `chunk`, in order.
    ///
    /// - Throws: `KubeError` code `.decoding` when a line exceeds ``maximumLineSize``.
    mutating func append<Chunk: Collection<UInt8>>(_ chunk: Chunk) throws(KubeError) -> [Data] {
        var lines: [Data] = []
        var start = chunk.startIndex
        while let newline = chunk[start...].firstIndex(of: UInt8(ascii: "\n")) {
            let piece = chunk[start..<newline]
            try checkSize(pending.count + piece.count)
            if pending.isEmpty {
                appendLine(Data(piece), to: &lines)
            } else {
                pending += piece
                appendLine(Data(pending), to: &lines)
                pending.removeAll(keepingCapacity: true)
            }
            start = chunk.index(after: newline)
        }
        let rest = chunk[start...]
        try checkSize(pending.count + rest.count)
        pending += rest
        return lines
    }

    /// The unterminated last line, when the body ended without a final newline.
    mutating func finish() -> Data? {
        var lines: [Data] = []
        appendLine(Data(pending), to: &lines)
        pending.removeAll()
        return lines.first
    }

    private func checkSize(_ size: Int) throws(KubeError) {
        guard size <= maximumLineSize else {
            throw KubeError(
                code: .decoding, message: "a watch event is longer than the limit of \(maximumLineSize) bytes")
        }
    }

    private func appendLine(_ line: Data, to lines: inout [Data]) {
        var line = line
        if line.last == UInt8(ascii: "\r") {
            line.removeLast()
        }
        let isBlank = line.allSatisfy {
            $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") || $0 == UInt8(ascii: "\r")
        }
        if !isBlank {
            lines.append(line)
        }
    }
}
