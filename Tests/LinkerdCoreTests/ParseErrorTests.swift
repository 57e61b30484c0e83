import LinkerdCore
import Testing

@Suite struct ParseErrorTests {
    @Test func descriptionNamesValueKindAndReason() {
        let error = ParseError(
            value: "80-70",
            expected: "port range",
            reason: "the start 80 is greater than the end 70"
        )
        #expect(error.description == #""80-70" is not a valid port range: the start 80 is greater than the end 70"#)
    }

    @Test(arguments: [
        ("a\"b", #""a\"b""#),
        ("a\\b", #""a\\b""#),
        ("line\nbreak", #""line\nbreak""#),
        ("tab\there", #""tab\there""#),
        ("bell\u{7}", #""bell\u{7}""#),
        ("µs", #""µs""#),
    ])
    func descriptionEscapesTheValueOntoOneLine(value: String, quoted: String) {
        let error = ParseError(value: value, expected: "thing", reason: "no")
        #expect(error.description == "\(quoted) is not a valid thing: no")
    }
}
