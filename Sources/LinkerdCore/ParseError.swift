/// A string that could not be parsed as one of this module's values.
///
/// Every parser in `LinkerdCore` throws this one type. Its ``description`` has a stable shape,
/// `"<value>" is not a valid <expected>: <reason>`, for example:
///
///     "80-70" is not a valid port range: the start 80 is greater than the end 70
///
/// The value is printed in double quotes with `"`, `\` and control characters escaped, so a message always fits
/// on one line of a log.
public struct ParseError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The complete input that was rejected, exactly as it was given.
    public let value: String
    /// What the input should have been, as a noun phrase such as `port range` or `duration`.
    public let expected: String
    /// Why the input was rejected, naming the offending part of it.
    public let reason: String

    /// Creates an error for `value`, which is not a valid `expected` because of `reason`.
    public init(value: String, expected: String, reason: String) {
        self.value = value
        self.expected = expected
        self.reason = reason
    }

    /// `"<value>" is not a valid <expected>: <reason>`.
    public var description: String {
        "\(value.quoted) is not a valid \(expected): \(reason)"
    }
}
