/// `Codable` support for values encoded as their `description` and decoded by parsing it.
enum StringCoding {
    /// Decodes a single string and parses it, reporting a parse failure as `DecodingError.dataCorrupted`.
    static func decode<Value>(
        from decoder: any Decoder,
        _ parse: (String) throws(ParseError) -> Value
    ) throws -> Value {
        let container = try decoder.singleValueContainer()
        let string = try container.decode(String.self)
        do throws(ParseError) {
            return try parse(string)
        } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.description)
        }
    }

    /// Encodes `value.description` as a single string.
    static func encode(_ value: some CustomStringConvertible, to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(value.description)
    }
}
