import Foundation

/// One-line descriptions of `DecodingError`s, which by default print their whole context.
enum DecodingFailure {
    /// Where in the document decoding failed and why, such as `items[3].metadata.name is not a String`.
    static func describe(_ error: any Error) -> String {
        guard let error = error as? DecodingError else {
            return "\(error)"
        }
        func path(_ codingPath: [any CodingKey]) -> String {
            let text = codingPath.map { key in key.intValue.map { "[\($0)]" } ?? ".\(key.stringValue)" }.joined()
            return text.isEmpty ? "the document" : String(text.drop { $0 == "." })
        }
        switch error {
        case .typeMismatch(let type, let context):
            return "\(path(context.codingPath)) is not a \(type)"
        case .valueNotFound(let type, let context):
            return "\(path(context.codingPath)) has no \(type) value"
        case .keyNotFound(let key, let context):
            return "\(path(context.codingPath + [key])) is missing"
        case .dataCorrupted(let context):
            let underlying =
                context.underlyingError.map { error in
                    ": " + (String(describing: error).split(separator: "\n").first.map(String.init) ?? "\(error)")
                } ?? ""
            return "\(path(context.codingPath)): \(context.debugDescription)\(underlying)"
        @unknown default:
            return "\(error)"
        }
    }
}
