import Foundation
import LinkerdCore

/// An RFC 6902 JSON Patch: an ordered list of operations applied to a JSON document.
public struct JSONPatch: Hashable, Sendable, Codable {
    public var operations: [Operation]

    public init(_ operations: [Operation]) {
        self.operations = operations
    }

    /// One RFC 6902 operation. `path` and `from` are RFC 6901 JSON pointers.
    public enum Operation: Hashable, Sendable {
        case add(path: String, value: JSONValue)
        case remove(path: String)
        case replace(path: String, value: JSONValue)
        case move(from: String, path: String)
        case copy(from: String, path: String)
        case test(path: String, value: JSONValue)
    }

    public init(from decoder: any Decoder) throws {
        operations = try decoder.singleValueContainer().decode([Operation].self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(operations)
    }

    /// Applies every operation in order; the document is unchanged if any operation fails.
    public func apply(to document: JSONValue) throws(JSONPatchError) -> JSONValue {
        var result = document
        for (index, operation) in operations.enumerated() {
            do {
                try operation.apply(to: &result)
            } catch {
                throw JSONPatchError(operationIndex: index, reason: error.reason)
            }
        }
        return result
    }
}

/// Why a patch could not be applied; the message names the failing operation and pointer.
public struct JSONPatchError: Error, Hashable, Sendable, CustomStringConvertible {
    public let operationIndex: Int?
    public let reason: String

    public init(operationIndex: Int?, reason: String) {
        self.operationIndex = operationIndex
        self.reason = reason
    }

    public var description: String {
        if let operationIndex { return "JSON patch operation \(operationIndex) failed: \(reason)" }
        return "JSON patch failed: \(reason)"
    }
}

extension JSONPatch.Operation: Codable {
    private enum CodingKeys: String, CodingKey { case op, path, from, value }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let op = try container.decode(String.self, forKey: .op)
        let path = try container.decode(String.self, forKey: .path)
        switch op {
        case "add": self = .add(path: path, value: try container.decode(JSONValue.self, forKey: .value))
        case "remove": self = .remove(path: path)
        case "replace": self = .replace(path: path, value: try container.decode(JSONValue.self, forKey: .value))
        case "move": self = .move(from: try container.decode(String.self, forKey: .from), path: path)
        case "copy": self = .copy(from: try container.decode(String.self, forKey: .from), path: path)
        case "test": self = .test(path: path, value: try container.decode(JSONValue.self, forKey: .value))
        default:
            throw DecodingError.dataCorruptedError(
                forKey: .op, in: container,
                debugDescription:
                    "\(op.quoted) is not a JSON patch operation: expected add, remove, replace, move, copy or test"
            )
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .add(let path, let value):
            try container.encode("add", forKey: .op)
            try container.encode(path, forKey: .path)
            try container.encode(value, forKey: .value)
        case .remove(let path):
            try container.encode("remove", forKey: .op)
            try container.encode(path, forKey: .path)
        case .replace(let path, let value):
            try container.encode("replace", forKey: .op)
            try container.encode(path, forKey: .path)
            try container.encode(value, forKey: .value)
        case .move(let from, let path):
            try container.encode("move", forKey: .op)
            try container.encode(from, forKey: .from)
            try container.encode(path, forKey: .path)
        case .copy(let from, let path):
            try container.encode("copy", forKey: .op)
            try container.encode(from, forKey: .from)
            try container.encode(path, forKey: .path)
        case .test(let path, let value):
            try container.encode("test", forKey: .op)
            try container.encode(path, forKey: .path)
            try container.encode(value, forKey: .value)
        }
    }

    func apply(to document: inout JSONValue) throws(JSONPatchError) {
        switch self {
        case .add(let path, let value):
            try document.insert(value, at: JSONPointer(parsing: path))
        case .remove(let path):
            _ = try document.remove(at: JSONPointer(parsing: path))
        case .replace(let path, let value):
            let pointer = try JSONPointer(parsing: path)
            _ = try document.lookup(pointer)
            try document.set(value, at: pointer)
        case .move(let from, let path):
            let source = try JSONPointer(parsing: from)
            let target = try JSONPointer(parsing: path)
            if target.tokens.starts(with: source.tokens), target.tokens.count > source.tokens.count {
                throw JSONPatchError(operationIndex: nil, reason: "cannot move \(from) into its own child \(path)")
            }
            let value = try document.remove(at: source)
            try document.insert(value, at: target)
        case .copy(let from, let path):
            let value = try document.lookup(JSONPointer(parsing: from))
            try document.insert(value, at: JSONPointer(parsing: path))
        case .test(let path, let value):
            let actual = try document.lookup(JSONPointer(parsing: path))
            guard actual == value else {
                throw JSONPatchError(operationIndex: nil, reason: "test failed at \(path): found \(actual.jsonString)")
            }
        }
    }
}

/// An RFC 6901 JSON pointer (`/metadata/annotations/linkerd.io~1inject`).
public struct JSONPointer: Hashable, Sendable, CustomStringConvertible {
    /// The unescaped reference tokens.
    public var tokens: [String]

    public init(tokens: [String]) {
        self.tokens = tokens
    }

    public init(parsing text: String) throws(JSONPatchError) {
        if text.isEmpty {
            tokens = []
            return
        }
        guard text.hasPrefix("/") else {
            throw JSONPatchError(
                operationIndex: nil, reason: "\(text.quoted) is not a JSON pointer: it must start with /")
        }
        var parsed: [String] = []
        for raw in text.dropFirst().split(separator: "/", omittingEmptySubsequences: false) {
            var token = ""
            var iterator = raw.makeIterator()
            while let character = iterator.next() {
                guard character == "~" else {
                    token.append(character)
                    continue
                }
                switch iterator.next() {
                case "0": token.append("~")
                case "1": token.append("/")
                default:
                    throw JSONPatchError(
                        operationIndex: nil,
                        reason: "\(text.quoted) is not a JSON pointer: ~ must be followed by 0 or 1"
                    )
                }
            }
            parsed.append(token)
        }
        tokens = parsed
    }

    /// Escapes one token (`~` → `~0`, `/` → `~1`).
    public static func escape(_ token: String) -> String {
        token.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1")
    }

    public var description: String {
        tokens.map { "/" + Self.escape($0) }.joined()
    }
}

extension JSONValue {
    fileprivate func lookup(_ pointer: JSONPointer) throws(JSONPatchError) -> JSONValue {
        var current = self
        for token in pointer.tokens {
            switch current {
            case .object(let members):
                guard let next = members[token] else {
                    throw JSONPatchError(operationIndex: nil, reason: "path \(pointer) does not exist")
                }
                current = next
            case .array(let elements):
                guard let index = Self.arrayIndex(token, count: elements.count, allowEnd: false) else {
                    throw JSONPatchError(operationIndex: nil, reason: "path \(pointer) does not exist")
                }
                current = elements[index]
            default:
                throw JSONPatchError(operationIndex: nil, reason: "path \(pointer) does not exist")
            }
        }
        return current
    }

    /// RFC 6902 `add` semantics: objects get the member set, arrays get an insertion (`-` appends).
    fileprivate mutating func insert(_ value: JSONValue, at pointer: JSONPointer) throws(JSONPatchError) {
        try modifyParent(of: pointer) { (parent: inout JSONValue, token: String) throws(JSONPatchError) in
            switch parent {
            case .object(var members):
                members[token] = value
                parent = .object(members)
            case .array(var elements):
                guard let index = Self.arrayIndex(token, count: elements.count, allowEnd: true) else {
                    throw JSONPatchError(
                        operationIndex: nil, reason: "index \(token.quoted) is out of bounds at \(pointer)")
                }
                elements.insert(value, at: index)
                parent = .array(elements)
            default:
                throw JSONPatchError(operationIndex: nil, reason: "parent of \(pointer) is a \(parent.typeName)")
            }
        } whenRoot: { (root: inout JSONValue) in
            root = value
        }
    }

    fileprivate mutating func set(_ value: JSONValue, at pointer: JSONPointer) throws(JSONPatchError) {
        try modifyParent(of: pointer) { (parent: inout JSONValue, token: String) throws(JSONPatchError) in
            switch parent {
            case .object(var members):
                members[token] = value
                parent = .object(members)
            case .array(var elements):
                guard let index = Self.arrayIndex(token, count: elements.count, allowEnd: false) else {
                    throw JSONPatchError(
                        operationIndex: nil, reason: "index \(token.quoted) is out of bounds at \(pointer)")
                }
                elements[index] = value
                parent = .array(elements)
            default:
                throw JSONPatchError(operationIndex: nil, reason: "parent of \(pointer) is a \(parent.typeName)")
            }
        } whenRoot: { (root: inout JSONValue) in
            root = value
        }
    }

    fileprivate mutating func remove(at pointer: JSONPointer) throws(JSONPatchError) -> JSONValue {
        var removed = JSONValue.null
        try modifyParent(of: pointer) { (parent: inout JSONValue, token: String) throws(JSONPatchError) in
            switch parent {
            case .object(var members):
                guard let value = members.removeValue(forKey: token) else {
                    throw JSONPatchError(operationIndex: nil, reason: "path \(pointer) does not exist")
                }
                removed = value
                parent = .object(members)
            case .array(var elements):
                guard let index = Self.arrayIndex(token, count: elements.count, allowEnd: false) else {
                    throw JSONPatchError(operationIndex: nil, reason: "path \(pointer) does not exist")
                }
                removed = elements.remove(at: index)
                parent = .array(elements)
            default:
                throw JSONPatchError(operationIndex: nil, reason: "path \(pointer) does not exist")
            }
        } whenRoot: { (_: inout JSONValue) throws(JSONPatchError) in
            throw JSONPatchError(operationIndex: nil, reason: "cannot remove the whole document")
        }
        return removed
    }

    private mutating func modifyParent(
        of pointer: JSONPointer,
        _ body: (inout JSONValue, String) throws(JSONPatchError) -> Void,
        whenRoot: (inout JSONValue) throws(JSONPatchError) -> Void
    ) throws(JSONPatchError) {
        guard let last = pointer.tokens.last else {
            try whenRoot(&self)
            return
        }
        try modify(path: pointer.tokens.dropLast()[...], full: pointer) {
            (parent: inout JSONValue) throws(JSONPatchError) in
            try body(&parent, last)
        }
    }

    private mutating func modify(
        path: ArraySlice<String>,
        full: JSONPointer,
        _ body: (inout JSONValue) throws(JSONPatchError) -> Void
    ) throws(JSONPatchError) {
        guard let token = path.first else {
            try body(&self)
            return
        }
        let rest = path.dropFirst()
        switch self {
        case .object(var members):
            guard var child = members[token] else {
                throw JSONPatchError(operationIndex: nil, reason: "path \(full) does not exist")
            }
            members[token] = nil  // keep the child uniquely referenced while it is modified
            try child.modify(path: rest, full: full, body)
            members[token] = child
            self = .object(members)
        case .array(var elements):
            guard let index = Self.arrayIndex(token, count: elements.count, allowEnd: false) else {
                throw JSONPatchError(operationIndex: nil, reason: "path \(full) does not exist")
            }
            var child = elements[index]
            elements[index] = .null
            try child.modify(path: rest, full: full, body)
            elements[index] = child
            self = .array(elements)
        default:
            throw JSONPatchError(operationIndex: nil, reason: "path \(full) does not exist")
        }
    }

    private static func arrayIndex(_ token: String, count: Int, allowEnd: Bool) -> Int? {
        if token == "-" { return allowEnd ? count : nil }
        guard !token.isEmpty, token.allSatisfy(\.isASCIIDigit), token == "0" || !token.hasPrefix("0"),
            let index = Int(token)
        else { return nil }
        return index < count || (allowEnd && index == count) ? index : nil
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}

/// RFC 7386 JSON merge patch: objects merge recursively, `null` deletes, anything else replaces.
public enum JSONMergePatch {
    public static func apply(_ patch: JSONValue, to document: JSONValue) -> JSONValue {
        guard case .object(let patchMembers) = patch else { return patch }
        var members = document.objectValue ?? [:]
        for (key, value) in patchMembers {
            if value == .null {
                members.removeValue(forKey: key)
            } else {
                members[key] = apply(value, to: members[key] ?? .null)
            }
        }
        return .object(members)
    }
}
