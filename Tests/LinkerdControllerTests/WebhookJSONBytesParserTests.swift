import Foundation
import KubeModel
import Testing

@testable import LinkerdController

@Suite("JSONBytesParser: the webhook's JSON reader")
struct WebhookJSONBytesParserTests {
    @Test(
        "gives the values JSONDecoder gives",
        arguments: [
            #"{"a": [1, -2, 0, 1.5, 1e3, 1.0, -0.0, 2.5e-7, 9223372036854775807, -9223372036854775808]}"#,
            #"[9223372036854775808, -9223372036854775809, 123456789012345678901234567890, 1E2, 0.1e1]"#,
            #"{"s": "plain", "e": "tab\tnew\nline \"quoted\" back\\slash \/ \u00e9 \ud83d\ude00", "raw": "é ✓"}"#,
            #" { "nested" : { "deeper" : [ [ ] , { } , null , true , false ] } } "#,
            #"{"a": 1, "a": 2}"#,
            #""just a string""#,
            "42",
            "null",
        ])
    func matchesJSONDecoder(_ text: String) throws {
        let expected = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
        #expect(try JSONBytesParser.parse(Data(text.utf8)) == expected)
    }

    @Test(
        "rejects what is not JSON, with the reason and where",
        arguments: [
            ("", "unexpected end of input at byte 0"),
            ("{", "unexpected end of input in an object at byte 1"),
            ("[1,]", "unexpected character ']' at byte 3"),
            (#"{"a" 1}"#, "expected ':' after an object key at byte 5"),
            ("{1: 2}", "expected a string key at byte 1"),
            ("tru", "unexpected end of input at byte 0"),
            ("nul!", "invalid literal, expected null at byte 0"),
            ("01", "unexpected data after the JSON value at byte 1"),
            ("{} x", "unexpected data after the JSON value at byte 3"),
            ("-", "invalid number at byte 1"),
            ("1.", "invalid number at byte 2"),
            ("1e400", "number 1e400 is out of range at byte 0"),
            ("\"a\u{01}\"", "unescaped control character in a string at byte 2"),
            (#""\ud800""#, "unpaired UTF-16 surrogate in a \\u escape at byte 7"),
            (#""\x""#, "invalid escape \\'x' at byte 2"),
            (#""\u12G4""#, "invalid hexadecimal digit in a \\u escape at byte 5"),
            (#""open"#, "unterminated string at byte 5"),
        ])
    func rejects(_ text: String, _ message: String) {
        #expect {
            _ = try JSONBytesParser.parse(Data(text.utf8))
        } throws: { error in
            "\(error)" == message
        }
    }

    @Test func rejectsInvalidUTF8() {
        #expect(throws: JSONBytesParser.SyntaxError.self) {
            _ = try JSONBytesParser.parse([UInt8(ascii: "\""), 0xFF, UInt8(ascii: "\"")])
        }
        #expect(throws: JSONBytesParser.SyntaxError.self) {
            _ = try JSONBytesParser.parse([
                UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "n"), 0xC3, UInt8(ascii: "\""),
            ])
        }
    }

    @Test func deepNestingIsAnErrorNotACrash() {
        let deep = String(repeating: "[", count: 100_000)
        #expect {
            _ = try JSONBytesParser.parse(Data(deep.utf8))
        } throws: { error in
            "\(error)".hasPrefix("nesting deeper than 512 levels")
        }
        let allowed = String(repeating: "[", count: 512) + String(repeating: "]", count: 512)
        #expect(throws: Never.self) { _ = try JSONBytesParser.parse(Data(allowed.utf8)) }
    }
}

@Suite("JSONBytesWriter: the webhook's JSON writer")
struct WebhookJSONBytesWriterTests {
    private func write(_ value: JSONValue) -> [UInt8] {
        var output: [UInt8] = []
        JSONBytesWriter.write(value, into: &output)
        return output
    }

    @Test func valuesRoundTripThroughJSONDecoder() throws {
        let value: JSONValue = [
            "string": "quote \" backslash \\ slash / newline \n tab \t bell \u{07} é 😀",
            "numbers": [0, -7, 9_223_372_036_854_775_807, 1.5, -0.25, 1e-7, 3.0e20],
            "flags": [true, false, nil],
            "nested": ["empty object": [:], "empty array": []],
        ]
        let bytes = write(value)
        #expect(try JSONDecoder().decode(JSONValue.self, from: Data(bytes)) == value)
        #expect(try JSONBytesParser.parse(bytes) == value)
        #expect(String(decoding: write(["bell": "\u{07}"]), as: UTF8.self) == #"{"bell":"\u0007"}"#)
    }

    @Test func patchesRoundTripThroughJSONDecoder() throws {
        let patch = JSONPatch([
            .add(path: "/metadata/annotations/config.linkerd.io~1opaque-ports", value: "3306"),
            .remove(path: "/spec/a"),
            .replace(path: "/spec/b", value: ["x": 1]),
            .move(from: "/spec/c", path: "/spec/d"),
            .copy(from: "/spec/e", path: "/spec/f"),
            .test(path: "/spec/g", value: nil),
        ])
        let bytes = JSONBytesWriter.write(patch)
        #expect(try JSONDecoder().decode(JSONPatch.self, from: Data(bytes)) == patch)
        #expect(
            String(decoding: JSONBytesWriter.write(JSONPatch([.remove(path: "/a")])), as: UTF8.self)
                == #"[{"op":"remove","path":"/a"}]"#)
    }

    @Test func nonFiniteDoublesBecomeNull() {
        #expect(String(decoding: write([.double(.infinity), .double(.nan)]), as: UTF8.self) == "[null,null]")
    }
}
