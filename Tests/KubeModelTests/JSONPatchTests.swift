import Foundation
import KubeModel
import Testing

private func json(_ text: String) throws -> JSONValue {
    try JSONValue(json: Data(text.utf8))
}

private func patch(_ text: String) throws -> JSONPatch {
    try JSONDecoder().decode(JSONPatch.self, from: Data(text.utf8))
}

@Suite("RFC 6902 JSON patch")
struct JSONPatchTests {
    /// Cases from RFC 6902 appendix A, plus Kubernetes-shaped ones.
    @Test(
        "applies",
        arguments: [
            (#"{"foo":"bar"}"#, #"[{"op":"add","path":"/baz","value":"qux"}]"#, #"{"baz":"qux","foo":"bar"}"#),
            (
                #"{"foo":["bar","baz"]}"#, #"[{"op":"add","path":"/foo/1","value":"qux"}]"#,
                #"{"foo":["bar","qux","baz"]}"#
            ),
            (#"{"baz":"qux","foo":"bar"}"#, #"[{"op":"remove","path":"/baz"}]"#, #"{"foo":"bar"}"#),
            (#"{"foo":["bar","qux","baz"]}"#, #"[{"op":"remove","path":"/foo/1"}]"#, #"{"foo":["bar","baz"]}"#),
            (
                #"{"baz":"qux","foo":"bar"}"#, #"[{"op":"replace","path":"/baz","value":"boo"}]"#,
                #"{"baz":"boo","foo":"bar"}"#
            ),
            (
                #"{"foo":{"bar":"baz","waldo":"fred"},"qux":{"corge":"grault"}}"#,
                #"[{"op":"move","from":"/foo/waldo","path":"/qux/thud"}]"#,
                #"{"foo":{"bar":"baz"},"qux":{"corge":"grault","thud":"fred"}}"#
            ),
            (
                #"{"foo":["all","grass","cows","eat"]}"#, #"[{"op":"move","from":"/foo/1","path":"/foo/3"}]"#,
                #"{"foo":["all","cows","eat","grass"]}"#
            ),
            (
                #"{"foo":"bar"}"#, #"[{"op":"add","path":"/child","value":{"grandchild":{}}}]"#,
                #"{"child":{"grandchild":{}},"foo":"bar"}"#
            ),
            (
                #"{"foo":["bar"]}"#, #"[{"op":"add","path":"/foo/-","value":["abc","def"]}]"#,
                #"{"foo":["bar",["abc","def"]]}"#
            ),
            (#"{"a":1}"#, #"[{"op":"copy","from":"/a","path":"/b"}]"#, #"{"a":1,"b":1}"#),
            (
                #"{"baz":"qux","foo":["a",2,"c"]}"#,
                #"[{"op":"test","path":"/baz","value":"qux"},{"op":"test","path":"/foo/1","value":2}]"#,
                #"{"baz":"qux","foo":["a",2,"c"]}"#
            ),
            (
                #"{"metadata":{"annotations":{}}}"#,
                #"[{"op":"add","path":"/metadata/annotations/linkerd.io~1inject","value":"enabled"},{"op":"add","path":"/metadata/annotations/a~0b","value":"x"}]"#,
                #"{"metadata":{"annotations":{"a~b":"x","linkerd.io/inject":"enabled"}}}"#
            ),
            (#"{"a":1}"#, #"[{"op":"replace","path":"","value":[1,2]}]"#, #"[1,2]"#),
        ])
    func applies(document: String, operations: String, expected: String) throws {
        let result = try patch(operations).apply(to: json(document))
        #expect(result == (try json(expected)))
    }

    @Test(
        "rejects with a precise reason",
        arguments: [
            (#"{"foo":"bar"}"#, #"[{"op":"add","path":"/baz/bat","value":"qux"}]"#, "path /baz/bat does not exist"),
            (#"{"baz":"qux"}"#, #"[{"op":"test","path":"/baz","value":"bar"}]"#, "test failed at /baz"),
            (#"{"foo":"bar"}"#, #"[{"op":"remove","path":"/nope"}]"#, "path /nope does not exist"),
            (#"{"foo":"bar"}"#, #"[{"op":"replace","path":"/nope","value":1}]"#, "path /nope does not exist"),
            (#"{"foo":[1]}"#, #"[{"op":"add","path":"/foo/5","value":1}]"#, "out of bounds"),
            (#"{"foo":[1]}"#, #"[{"op":"add","path":"/foo/01","value":1}]"#, "out of bounds"),
            (#"{"foo":"bar"}"#, #"[{"op":"add","path":"foo","value":1}]"#, "must start with /"),
            (#"{"foo":"bar"}"#, #"[{"op":"add","path":"/a~2b","value":1}]"#, "~ must be followed by 0 or 1"),
            (#"{"a":{"b":1}}"#, #"[{"op":"move","from":"/a","path":"/a/c"}]"#, "into its own child"),
            (#"{"a":1}"#, #"[{"op":"test","path":"/a","value":1},{"op":"remove","path":"/x"}]"#, "operation 1 failed"),
        ])
    func rejects(document: String, operations: String, reason: String) throws {
        let error = #expect(throws: JSONPatchError.self) {
            try patch(operations).apply(to: json(document))
        }
        #expect(error?.description.contains(reason) == true, "\(error?.description ?? "no error")")
    }

    @Test("an unknown op is a decoding error naming it")
    func unknownOperation() {
        #expect(throws: DecodingError.self) {
            try patch(#"[{"op":"frobnicate","path":"/a"}]"#)
        }
    }

    @Test("patches encode back to the RFC 6902 form")
    func encodes() throws {
        let original = JSONPatch([
            .add(path: "/a", value: 1), .remove(path: "/b"), .replace(path: "/c", value: "x"),
            .move(from: "/d", path: "/e"), .copy(from: "/f", path: "/g"), .test(path: "/h", value: nil),
        ])
        let decoded = try JSONDecoder().decode(JSONPatch.self, from: JSONEncoder().encode(original))
        #expect(decoded == original)
    }

    @Test("pointer escaping round-trips")
    func pointerEscaping() throws {
        let pointer = JSONPointer(tokens: ["metadata", "annotations", "config.linkerd.io/a~b"])
        #expect(pointer.description == "/metadata/annotations/config.linkerd.io~1a~0b")
        #expect(try JSONPointer(parsing: pointer.description) == pointer)
    }
}

@Suite("RFC 7386 JSON merge patch")
struct JSONMergePatchTests {
    /// The examples of RFC 7386 appendix A.
    @Test(
        "merges",
        arguments: [
            (#"{"a":"b"}"#, #"{"a":"c"}"#, #"{"a":"c"}"#),
            (#"{"a":"b"}"#, #"{"b":"c"}"#, #"{"a":"b","b":"c"}"#),
            (#"{"a":"b"}"#, #"{"a":null}"#, #"{}"#),
            (#"{"a":"b","b":"c"}"#, #"{"a":null}"#, #"{"b":"c"}"#),
            (#"{"a":["b"]}"#, #"{"a":"c"}"#, #"{"a":"c"}"#),
            (#"{"a":"c"}"#, #"{"a":["b"]}"#, #"{"a":["b"]}"#),
            (#"{"a":{"b":"c"}}"#, #"{"a":{"b":"d","c":null}}"#, #"{"a":{"b":"d"}}"#),
            (#"{"a":[{"b":"c"}]}"#, #"{"a":[1]}"#, #"{"a":[1]}"#),
            (#"["a","b"]"#, #"["c","d"]"#, #"["c","d"]"#),
            (#"{"a":"b"}"#, #"["c"]"#, #"["c"]"#),
            (#"{"a":"foo"}"#, #"null"#, #"null"#),
            (#"{"a":"foo"}"#, #""bar""#, #""bar""#),
            (#"{"e":null}"#, #"{"a":1}"#, #"{"a":1,"e":null}"#),
            (#"[1,2]"#, #"{"a":"b","c":null}"#, #"{"a":"b"}"#),
            (#"{}"#, #"{"a":{"bb":{"ccc":null}}}"#, #"{"a":{"bb":{}}}"#),
        ])
    func merges(document: String, patch: String, expected: String) throws {
        #expect(JSONMergePatch.apply(try json(patch), to: try json(document)) == (try json(expected)))
    }
}
