import Foundation
import LinkerdCore

/// `metav1.LabelSelector` as it appears in objects (webhook `namespaceSelector`, Deployment `selector`).
public struct LabelSelector: Codable, Hashable, Sendable {
    public var matchLabels: [String: String]?
    public var matchExpressions: [Requirement]?

    public struct Requirement: Codable, Hashable, Sendable {
        public var key: String
        /// `In`, `NotIn`, `Exists` or `DoesNotExist`.
        public var `operator`: String
        public var values: [String]?

        public init(key: String, operator: String, values: [String]? = nil) {
            self.key = key
            self.operator = `operator`
            self.values = values
        }
    }

    public init(matchLabels: [String: String]? = nil, matchExpressions: [Requirement]? = nil) {
        self.matchLabels = matchLabels
        self.matchExpressions = matchExpressions
    }

    /// An empty selector matches everything, as in Kubernetes. An unknown operator matches nothing.
    public func matches(_ labels: [String: String]) -> Bool {
        for (key, value) in matchLabels ?? [:] where labels[key] != value {
            return false
        }
        for requirement in matchExpressions ?? [] {
            let values = requirement.values ?? []
            switch requirement.operator {
            case "In": guard let value = labels[requirement.key], values.contains(value) else { return false }
            case "NotIn": if let value = labels[requirement.key], values.contains(value) { return false }
            case "Exists": if labels[requirement.key] == nil { return false }
            case "DoesNotExist": if labels[requirement.key] != nil { return false }
            default: return false
            }
        }
        return true
    }
}

/// Why a selector string could not be parsed.
public struct SelectorParseError: Error, Hashable, Sendable, CustomStringConvertible {
    public var selector: String
    public var reason: String

    public var description: String {
        "\(selector.quoted) is not a valid selector: \(reason)"
    }
}

/// A label selector in its query-string form: `app=web,tier!=db,env in (prod,staging),!canary,release`.
public struct LabelQuery: Hashable, Sendable, CustomStringConvertible {
    public enum Requirement: Hashable, Sendable {
        case equals(String, String)
        case notEquals(String, String)
        case `in`(String, Set<String>)
        case notIn(String, Set<String>)
        case exists(String)
        case doesNotExist(String)
    }

    public var requirements: [Requirement]
    public let description: String

    public init(parsing text: String) throws(SelectorParseError) {
        description = text
        requirements = []
        for clause in try Self.splitClauses(text) {
            requirements.append(try Self.parseClause(clause, in: text))
        }
    }

    public func matches(_ labels: [String: String]) -> Bool {
        requirements.allSatisfy { requirement in
            switch requirement {
            case .equals(let key, let value): labels[key] == value
            case .notEquals(let key, let value): labels[key] != value
            case .in(let key, let values): labels[key].map(values.contains) ?? false
            case .notIn(let key, let values): !(labels[key].map(values.contains) ?? false)
            case .exists(let key): labels[key] != nil
            case .doesNotExist(let key): labels[key] == nil
            }
        }
    }

    /// Splits on commas outside parentheses.
    private static func splitClauses(_ text: String) throws(SelectorParseError) -> [String] {
        var clauses: [String] = []
        var current = ""
        var depth = 0
        for character in text {
            switch character {
            case "(":
                depth += 1
                current.append(character)
            case ")":
                depth -= 1
                guard depth >= 0 else { throw SelectorParseError(selector: text, reason: "unbalanced parenthesis") }
                current.append(character)
            case "," where depth == 0:
                clauses.append(current)
                current = ""
            default:
                current.append(character)
            }
        }
        guard depth == 0 else { throw SelectorParseError(selector: text, reason: "unbalanced parenthesis") }
        clauses.append(current)
        let trimmed = clauses.map { $0.trimmingWhitespace }
        if trimmed == [""] { return [] }
        if trimmed.contains("") { throw SelectorParseError(selector: text, reason: "empty requirement") }
        return trimmed
    }

    private static func parseClause(_ clause: String, in text: String) throws(SelectorParseError) -> Requirement {
        if clause.hasPrefix("!") {
            return .doesNotExist(try validKey(String(clause.dropFirst()).trimmingWhitespace, in: text))
        }
        for (op, build) in [("!=", Requirement.notEquals), ("==", Requirement.equals), ("=", Requirement.equals)] {
            if let range = clause.range(of: op) {
                let key = try validKey(String(clause[..<range.lowerBound]).trimmingWhitespace, in: text)
                let value = try validValue(String(clause[range.upperBound...]).trimmingWhitespace, in: text)
                return build(key, value)
            }
        }
        let words = clause.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true).map(String.init)
        if words.count == 1 {
            return .exists(try validKey(words[0], in: text))
        }
        guard words.count == 3, words[1] == "in" || words[1] == "notin" else {
            throw SelectorParseError(
                selector: text,
                reason: "\(clause.quoted) is not key=value, key!=value, key in (...), key notin (...), key or !key")
        }
        let list = words[2].trimmingWhitespace
        guard list.hasPrefix("("), list.hasSuffix(")") else {
            throw SelectorParseError(selector: text, reason: "the values of \(clause.quoted) must be in parentheses")
        }
        var values = Set<String>()
        for value in list.dropFirst().dropLast().split(separator: ",", omittingEmptySubsequences: false) {
            values.insert(try validValue(String(value).trimmingWhitespace, in: text))
        }
        let key = try validKey(words[0], in: text)
        return words[1] == "in" ? .in(key, values) : .notIn(key, values)
    }

    private static func validKey(_ key: String, in text: String) throws(SelectorParseError) -> String {
        guard !key.isEmpty, key.count <= 317, key.allSatisfy({ $0.isLabelCharacter || $0 == "/" }) else {
            throw SelectorParseError(selector: text, reason: "\(key.quoted) is not a valid label key")
        }
        return key
    }

    private static func validValue(_ value: String, in text: String) throws(SelectorParseError) -> String {
        guard value.count <= 63, value.allSatisfy(\.isLabelCharacter) else {
            throw SelectorParseError(selector: text, reason: "\(value.quoted) is not a valid label value")
        }
        return value
    }
}

/// A field selector: `metadata.name=web,status.phase!=Running`. Fields are dotted JSON paths.
public struct FieldQuery: Hashable, Sendable, CustomStringConvertible {
    public struct Requirement: Hashable, Sendable {
        public var field: String
        public var value: String
        public var negated: Bool
    }

    public var requirements: [Requirement]
    public let description: String

    public init(parsing text: String) throws(SelectorParseError) {
        description = text
        requirements = []
        for clause in text.split(separator: ",", omittingEmptySubsequences: false).map({ String($0).trimmingWhitespace }
        )
        where !(clause.isEmpty && !text.contains(",")) {
            guard !clause.isEmpty else { throw SelectorParseError(selector: text, reason: "empty requirement") }
            var parsed: Requirement?
            for (op, negated) in [("!=", true), ("==", false), ("=", false)] {
                if let range = clause.range(of: op) {
                    parsed = Requirement(
                        field: String(clause[..<range.lowerBound]).trimmingWhitespace,
                        value: String(clause[range.upperBound...]).trimmingWhitespace,
                        negated: negated
                    )
                    break
                }
            }
            guard let parsed, !parsed.field.isEmpty else {
                throw SelectorParseError(selector: text, reason: "\(clause.quoted) is not field=value or field!=value")
            }
            requirements.append(parsed)
        }
    }

    /// Matches against an object's JSON; a missing field compares as the empty string, as the API server does.
    public func matches(_ object: JSONValue) -> Bool {
        requirements.allSatisfy { requirement in
            let actual: String
            switch object.value(atPath: requirement.field) {
            case .string(let text): actual = text
            case .bool(let flag): actual = String(flag)
            case .integer(let number): actual = String(number)
            default: actual = ""
            }
            return (actual == requirement.value) != requirement.negated
        }
    }
}

extension Character {
    fileprivate var isLabelCharacter: Bool {
        isASCII && (isLetter || isNumber || self == "-" || self == "_" || self == ".")
    }
}
