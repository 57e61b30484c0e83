import Foundation
import KubeModel
import LinkerdCore
import LinkerdInject
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
        // Encoding fails only for a non-finite double. ``objects(in:)`` never returns one (JSON has none and YAML's
        // are rejected) and the transforms add none; a caller that builds one gets `null` for the whole output.
        let data = (try? encoder.encode(document)) ?? Data("null".utf8)
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    // MARK: - Reading YAML

    private static func yamlDocuments(
        in source: ManifestSource
    ) throws(ManifestError) -> [(index: Int, value: JSONValue)] {
        var documents: [(index: Int, value: JSONValue)] = []
        // One budget for the whole input, so that many documents cannot each expand to the bound.
        var budget = YAMLConversion.maximumValues
        do {
            let parser = try Parser(yaml: source.text)
            while let root = try parser.nextRoot() {
                documents.append((documents.count + 1, try YAMLConversion.json(from: root, budget: &budget)))
            }
        } catch let error as YamlError {
            throw ManifestError(
                source: source.name, document: documents.count + 1, reason: "invalid YAML: \(describe(error))")
        } catch let error as YAMLConversion.Failure {
            throw ManifestError(source: source.name, document: documents.count + 1, reason: error.description)
        } catch {
            throw ManifestError(source: source.name, document: documents.count + 1, reason: "\(error)")
        }
        return documents
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
