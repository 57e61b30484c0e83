/// The comma-separated list syntax shared by ``PortList`` and ``CIDR/parseList(_:)``.
enum ListSyntax {
    /// Parses `string` as a list of entries separated by commas.
    ///
    /// Whitespace around each entry is ignored, and an empty or all-whitespace string is the empty list. An empty
    /// entry (as in `80,,443` or `80,`) or one that `parseEntry` rejects is reported as a ``ParseError`` about the
    /// whole of `string`, described as a valid `expected`, whose reason names the entry by its 1-based position.
    static func parse<Element>(
        _ string: String,
        expected: String,
        entry parseEntry: (String) throws(ParseError) -> Element
    ) throws(ParseError) -> [Element] {
        if string.allSatisfy(\.isWhitespace) {
            return []
        }
        var elements: [Element] = []
        for (offset, rawEntry) in string.split(separator: ",", omittingEmptySubsequences: false).enumerated() {
            let entry = rawEntry.trimmingWhitespace
            guard !entry.isEmpty else {
                throw ParseError(value: string, expected: expected, reason: "entry \(offset + 1) is empty")
            }
            do throws(ParseError) {
                elements.append(try parseEntry(entry))
            } catch {
                throw ParseError(
                    value: string,
                    expected: expected,
                    reason: "entry \(offset + 1) \(entry.quoted): \(error.reason)"
                )
            }
        }
        return elements
    }
}
