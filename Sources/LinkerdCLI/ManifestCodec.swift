import Foundation
import KubeModel
import LinkerdCore
import Yams

/// One input of a command: the text of a file, or of standard input.
public struct ManifestSource: Sendable, Hashable {
    /// How messages name the input: the path as given, or `stdin`.
    public var name: String
    public var text: String

    public init(name: String, text: String) {
        self.name = name
        self.text = text
    }
}

/// An input that cannot be read or is not a stream of Kubernetes objects.
public struct ManifestError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The input's name, as in ``ManifestSource/name``.
    public var source: String
    /// The 1-based position of the document in the input's stream (empty documents count); nil for the whole input.
    public var document: Int?
    public var reason: String

    public init(source: String, document: Int? = nil, reason: String) {
        self.source = source
        self.document = document
        self.reason = reason
    }

    /// `<source>: document <n>: <reason>`, or `<source>: <reason>`.
    public var description: String {
        guard let document else { return "\(source): \(reason)" }
        return "\(source): document \(document): \(reason)"
    }
}

/// Reads YAML and JSON streams of Kubernetes objects into ``JSONValue``s, and writes them back.
///
/// Reading: an input whose first non-blank character is `{` is read as one JSON object when it is valid JSON;
/// everything else (JSON that is also YAML included) is read as a YAML stream of documents separated by `---`.
/// YAML scalars take the types of YAML's core schema: `null`, booleans, integers (kept exact in `Int64`; larger
/// ones become doubles), floats; every other scalar, quoted or a timestamp, is a string. Mapping keys are their
/// text. Empty documents are dropped. Every document must be a mapping with a non-empty string `kind`.
///
/// Writing: YAML documents separated by `---`, keys sorted (``JSONValue`` does not keep the input's key order),
/// strings quoted whenever a YAML 1.1 reader (kubectl's) would take them for another type, multi-line strings as
/// literal blocks.
public enum ManifestCodec {
    /// The objects in `source`, in order.
    ///
    /// - Throws: ``ManifestError`` naming the document and, for YAML syntax errors, the line and column.
    public static func objects(in source: ManifestSource) throws(ManifestError) -> [JSONValue] {
        let documents: [(index: Int, value: JSONValue)]
        if source.text.first(where: { !$0.isWhitespace }) == "{",
            let object = try? JSONValue(json: Data(source.text.utf8))
        {
            documents = [(1, object)]
        } else {
            documents = try yamlDocuments(in: source)
        }
        var objects: [JSONValue] = []
        for (index, document) in documents {
            switch document {
            case .null:
                continue
            case .object:
                guard case .string(let kind)? = document["kind"], !kind.isEmpty else {
                    throw ManifestError(
                        source: source.name, document: index,
                        reason: "not a Kubernetes object: it has no \"kind\" string")
                }
                objects.append(document)
            default:
                throw ManifestError(
                    source: source.name, document: index,
                    reason: "not a Kubernetes object: the document is of type \(document.typeName), not a mapping")
            }
        }
        return objects
    }

    /// The objects as YAML documents separated by `---` lines; the empty string for no objects.
    public static func yaml(_ objects: [JSONValue]) -> String {
        objects.map { object in
            // Serializing a node built from JSON cannot fail: every scalar is valid UTF-8 text and no node has an
            // anchor or a custom tag.
            (try? Yams.serialize(node: node(for: object), width: -1, allowUnicode: true)) ?? ""
        }.joined(separator: "---\n")
    }

    /// The objects as indented JSON with sorted keys: one object as itself, several as the items of a `v1` `List`
    /// (which `kubectl apply -f` accepts), none as the empty string.
    public static func json(_ objects: [JSONValue]) -> String {
        let document: JSONValue
        switch objects.count {
        case 0: return ""
        case 1: document = objects[0]
        default: document = ["apiVersion": "v1", "kind": "List", "items": .array(objects)]
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        // Every JSONValue that came from YAML or JSON text is finite, so encoding cannot fail.
        let data = (try? encoder.encode(document)) ?? Data("null".utf8)
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    // MARK: - Reading YAML

    private static func yamlDocuments(
        in source: ManifestSource
    ) throws(ManifestError) -> [(index: Int, value: JSONValue)] {
        var documents: [(index: Int, value: JSONValue)] = []
        do {
            let parser = try Parser(yaml: source.text)
            while let root = try parser.nextRoot() {
                documents.append((documents.count + 1, try json(from: root)))
            }
        } catch let error as YamlError {
            throw ManifestError(
                source: source.name, document: documents.count + 1, reason: "invalid YAML: \(describe(error))")
        } catch let error as NodeError {
            throw ManifestError(source: source.name, document: documents.count + 1, reason: error.description)
        } catch {
            throw ManifestError(source: source.name, document: documents.count + 1, reason: "\(error)")
        }
        return documents
    }

    /// A YAML node that has no JSON form.
    private struct NodeError: Error, CustomStringConvertible {
        var description: String
    }

    private static func json(from node: Node) throws(NodeError) -> JSONValue {
        switch node {
        case .scalar(let scalar):
            // `Tag.name` is internal to Yams; a tag's description is its resolved name.
            switch Tag.Name(rawValue: node.tag.description) {
            case .null:
                return .null
            case .bool:
                return node.bool.map(JSONValue.bool) ?? .string(scalar.string)
            case .int:
                if let integer = Int64.construct(from: scalar) { return .integer(integer) }
                return node.float.map(JSONValue.double) ?? .string(scalar.string)
            case .float:
                return node.float.map(JSONValue.double) ?? .string(scalar.string)
            default:
                return .string(scalar.string)
            }
        case .mapping(let mapping):
            var members: [String: JSONValue] = [:]
            for (key, value) in mapping {
                guard case .scalar(let keyScalar) = key else {
                    throw NodeError(description: "a mapping key at \(location(key.mark)) is not a scalar")
                }
                guard members.updateValue(try json(from: value), forKey: keyScalar.string) == nil else {
                    throw NodeError(
                        description: "the key \(keyScalar.string.quoted) at \(location(key.mark)) appears twice")
                }
            }
            return .object(members)
        case .sequence(let sequence):
            var elements: [JSONValue] = []
            for element in sequence {
                elements.append(try json(from: element))
            }
            return .array(elements)
        case .alias:
            // The composer replaces each alias with the node it names, so an alias node is never read.
            throw NodeError(description: "an unresolved alias at \(location(node.mark))")
        }
    }

    private static func location(_ mark: Mark?) -> String {
        guard let mark else { return "an unknown position" }
        return "line \(mark.line), column \(mark.column)"
    }

    /// One line: the problem, where it is, and the context libyaml gives (Yams' own description adds the input).
    private static func describe(_ error: YamlError) -> String {
        func with(_ context: YamlError.Context?, _ problem: String, _ mark: Mark) -> String {
            var text = "\(problem) at line \(mark.line), column \(mark.column)"
            if let context, !context.text.isEmpty {
                text += " (\(context.text) at line \(context.mark.line), column \(context.mark.column))"
            }
            return text
        }
        switch error {
        case .scanner(let context, let problem, let mark, _),
            .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            return with(context, problem, mark)
        case .reader(let problem, let offset, _, _):
            return offset.map { "\(problem) at byte \($0)" } ?? problem
        case .duplicatedKeysInMapping(let duplicates, let context):
            return "duplicate keys \(duplicates.map(\.quoted).joined(separator: ", ")) at line \(context.mark.line)"
        default:
            return "\(error)"
        }
    }

    // MARK: - Writing YAML

    private static func node(for value: JSONValue) -> Node {
        switch value {
        case .null:
            return Node("null", Tag(.null))
        case .bool(let flag):
            return Node(flag ? "true" : "false", Tag(.bool))
        case .integer(let integer):
            return Node(String(integer), Tag(.int))
        case .double(let double):
            return Node(yamlText(double), Tag(.float))
        case .string(let string):
            return stringNode(string)
        case .array(let elements):
            return Node(elements.map(node(for:)))
        case .object(let members):
            return Node(members.sorted { $0.key < $1.key }.map { (stringNode($0.key), node(for: $0.value)) })
        }
    }

    private static func yamlText(_ double: Double) -> String {
        if double.isNaN { return ".nan" }
        if double.isInfinite { return double < 0 ? "-.inf" : ".inf" }
        return "\(double)"
    }

    /// Scalars YAML 1.1 (go-yaml v2, kubectl) reads as booleans beyond those of Yams' resolver.
    private static let yaml11Booleans: Set<String> = ["y", "Y", "n", "N"]

    private static func stringNode(_ string: String) -> Node {
        if string.contains("\n") {
            // libyaml falls back to a quoted style when a literal block cannot hold the text exactly.
            return Node(string, Tag(.str), .literal)
        }
        let plain = Node(string)
        if Tag.Name(rawValue: plain.tag.description) == .str && !yaml11Booleans.contains(string) {
            return plain
        }
        return Node(string, Tag(.str), .singleQuoted)
    }
}
