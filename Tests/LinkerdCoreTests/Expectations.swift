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

/// A deterministic SplitMix64 generator, so that sampled tests are reproducible.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var mixed = state
        mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
        return mixed ^ (mixed >> 31)
    }
}
