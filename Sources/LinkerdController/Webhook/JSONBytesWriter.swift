import KubeModel

/// Writes `JSONValue`s and `JSONPatch`es as compact JSON bytes, for the webhook's hot path (`JSONEncoder` builds an
/// intermediate tree and costs several times more for a proxy patch).
///
/// Object keys come out in the dictionary's order, which is not stable; `/` is not escaped; control characters,
/// `"` and `\` are. A double that JSON cannot hold (infinite or NaN, which no parsed document and no injector patch
/// contains) is written as `null`.
enum JSONBytesWriter {
    /// The RFC 6902 array: `[{"op": "add", "path": ..., "value": ...}, ...]`.
    static func write(_ patch: JSONPatch) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(4096)
        output.append(UInt8(ascii: "["))
        for (index, operation) in patch.operations.enumerated() {
            if index > 0 { output.append(UInt8(ascii: ",")) }
            switch operation {
            case .add(let path, let value): write(op: "add", path: path, value: value, into: &output)
            case .replace(let path, let value): write(op: "replace", path: path, value: value, into: &output)
            case .test(let path, let value): write(op: "test", path: path, value: value, into: &output)
            case .remove(let path): write(op: "remove", path: path, into: &output)
            case .move(let from, let path): write(op: "move", path: path, from: from, into: &output)
            case .copy(let from, let path): write(op: "copy", path: path, from: from, into: &output)
            }
        }
        output.append(UInt8(ascii: "]"))
        return output
    }

    private static func write(
        op: String, path: String, value: JSONValue? = nil, from: String? = nil, into output: inout [UInt8]
    ) {
        output.append(contentsOf: #"{"op":"#.utf8)
        write(string: op, into: &output)
        if let from {
            output.append(contentsOf: #","from":"#.utf8)
            write(string: from, into: &output)
        }
        output.append(contentsOf: #","path":"#.utf8)
        write(string: path, into: &output)
        if let value {
            output.append(contentsOf: #","value":"#.utf8)
            write(value, into: &output)
        }
        output.append(UInt8(ascii: "}"))
    }

    static func write(_ value: JSONValue, into output: inout [UInt8]) {
        switch value {
        case .null:
            output.append(contentsOf: "null".utf8)
        case .bool(let flag):
            output.append(contentsOf: (flag ? "true" : "false").utf8)
        case .integer(let integer):
            output.append(contentsOf: String(integer).utf8)
        case .double(let double):
            output.append(contentsOf: (double.isFinite ? "\(double)" : "null").utf8)
        case .string(let text):
            write(string: text, into: &output)
        case .array(let elements):
            output.append(UInt8(ascii: "["))
            for (index, element) in elements.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                write(element, into: &output)
            }
            output.append(UInt8(ascii: "]"))
        case .object(let members):
            output.append(UInt8(ascii: "{"))
            var first = true
            for (key, member) in members {
                if !first { output.append(UInt8(ascii: ",")) }
                first = false
                write(string: key, into: &output)
                output.append(UInt8(ascii: ":"))
                write(member, into: &output)
            }
            output.append(UInt8(ascii: "}"))
        }
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    static func write(string: String, into output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        var string = string
        string.withUTF8 { bytes in
            // Copy runs that need no escaping in one go.
            var runStart = 0
            for index in 0..<bytes.count {
                let byte = bytes[index]
                guard byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") || byte < 0x20 else { continue }
                output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<index]))
                runStart = index + 1
                switch byte {
                case UInt8(ascii: "\""): output.append(contentsOf: #"\""#.utf8)
                case UInt8(ascii: "\\"): output.append(contentsOf: #"\\"#.utf8)
                case 0x0A: output.append(contentsOf: #"\n"#.utf8)
                case 0x0D: output.append(contentsOf: #"\r"#.utf8)
                case 0x09: output.append(contentsOf: #"\t"#.utf8)
                default:
                    output.append(contentsOf: #"\u00"#.utf8)
                    output.append(hexDigits[Int(byte >> 4)])
                    output.append(hexDigits[Int(byte & 0x0F)])
                }
            }
            output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<bytes.count]))
        }
        output.append(UInt8(ascii: "\""))
    }
}
