import LinkerdCore
import Testing

/// Expects `body` to throw a ``ParseError`` for `value`, described as a valid `expected`, whose reason contains
/// `reason`, and whose description has the module's stable shape.
func expectParseError<Value>(
    _ value: String,
    expected: String,
    reason: String,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () throws -> Value
) {
    do {
        let parsed = try body()
        Issue.record("expected \(value.debugDescription) to be rejected, got \(parsed)", sourceLocation: sourceLocation)
    } catch let error as ParseError {
        #expect(error.value == value, sourceLocation: sourceLocation)
        #expect(error.expected == expected, sourceLocation: sourceLocation)
        #expect(error.reason.contains(reason), "\(error.reason)", sourceLocation: sourceLocation)
        #expect(
            error.description == "\(value.debugDescription) is not a valid \(expected): \(error.reason)",
            sourceLocation: sourceLocation
        )
    } catch {
        Issue.record("expected a ParseError, got \(error)", sourceLocation: sourceLocation)
    }
}
