import Foundation
import KubeModel
import Testing

@testable import KubeClient

@Suite("watch stream decoding")
struct WatchDecodingTests {
    func lines(_ data: [Data]) -> [String] {
        data.map { String(decoding: $0, as: UTF8.self) }
    }

    @Test func splitsLinesAcrossAndWithinChunks() throws {
        var splitter = WatchLineSplitter(maximumLineSize: 1024)
        #expect(try splitter.append(Array("{\"a\":".utf8)).isEmpty)
        #expect(try splitter.append(Array("1".utf8)).isEmpty)
        #expect(lines(try splitter.append(Array("}\n{\"b\":2}\n\n{\"c\"".utf8))) == ["{\"a\":1}", "{\"b\":2}"])
        #expect(lines(try splitter.append(Array(":3}\r\n".utf8))) == ["{\"c\":3}"])
        #expect(lines(try splitter.append(Array("{\"d\":4}".utf8))) == [])
        #expect(splitter.finish().map { String(decoding: $0, as: UTF8.self) } == "{\"d\":4}")
        #expect(splitter.finish() == nil)
    }

    @Test func chunksOfOneByte() throws {
        var splitter = WatchLineSplitter(maximumLineSize: 1024)
        var result: [String] = []
        for byte in "{\"x\":1}\n{\"y\":2}\n".utf8 {
            result += lines(try splitter.append([byte]))
        }
        #expect(result == ["{\"x\":1}", "{\"y\":2}"])
    }

    @Test func rejectsOverlongLines() throws {
        var splitter = WatchLineSplitter(maximumLineSize: 8)
        #expect(try splitter.append(Array("12345678\n".utf8)).count == 1)
        _ = try splitter.append(Array("12345".utf8))
        let error = #expect(throws: KubeError.self) { _ = try splitter.append(Array("6789".utf8)) }
        #expect(error?.code == .decoding)
        var single = WatchLineSplitter(maximumLineSize: 8)
        #expect(throws: KubeError.self) { _ = try single.append(Array("123456789\n".utf8)) }
    }

    let decoder = WatchEventDecoder<ConfigMap>()

    func decode(_ line: String) throws(KubeError) -> WatchEvent<ConfigMap> {
        try decoder.decode(Data(line.utf8))
    }

    @Test func decodesObjectEvents() throws {
        let object =
            #"{"apiVersion":"v1","kind":"ConfigMap","#
            + #""metadata":{"name":"a","namespace":"default","resourceVersion":"7"},"data":{"k":"v"}}"#
        var expected = ConfigMap(metadata: ObjectMeta(name: "a", namespace: "default"), data: ["k": "v"])
        expected.metadata.resourceVersion = "7"
        #expect(try decode(#"{"type":"ADDED","object":\#(object)}"#) == .added(expected))
        #expect(try decode(#"{"object":\#(object),"type":"MODIFIED"}"#) == .modified(expected))
        #expect(try decode(#"{"type":"DELETED","object":\#(object)}"#) == .deleted(expected))
    }

    @Test func decodesBookmarks() throws {
        let line =
            #"{"type":"BOOKMARK","object":{"kind":"ConfigMap","apiVersion":"v1","#
            + #""metadata":{"resourceVersion":"12345","annotations":{"k8s.io/initial-events-end":"true"}}}}"#
        #expect(try decode(line) == .bookmark(resourceVersion: "12345"))
        let error = #expect(throws: KubeError.self) { _ = try decode(#"{"type":"BOOKMARK","object":{"metadata":{}}}"#) }
        #expect(error?.code == .decoding)
    }

    @Test func errorEventsThrowTheStatus() {
        let gone = #expect(throws: KubeError.self) {
            _ = try decode(
                #"{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure","#
                    + #""message":"too old resource version: 1 (5)","reason":"Expired","code":410}}"#
            )
        }
        #expect(gone?.code == .gone)
        #expect(gone?.message == "too old resource version: 1 (5)")
        #expect(gone?.status?.reason == "Expired")
        let uncoded = #expect(throws: KubeError.self) {
            _ = try decode(#"{"type":"ERROR","object":{"status":"Failure","reason":"Gone","message":"gone"}}"#)
        }
        #expect(uncoded?.code == .gone)
        let internalError = #expect(throws: KubeError.self) {
            _ = try decode(#"{"type":"ERROR","object":{"status":"Failure","message":"boom","code":500}}"#)
        }
        #expect(internalError?.code == .server(statusCode: 500))
    }

    @Test func garbageAndUnknownTypesAreDecodingErrors() {
        for line in [
            "not json", #"{"type":"ADDED"}"#, #"{"type":"ADDED","object":{"metadata":"x"}}"#, #"{"object":{}}"#, "[]",
        ] {
            let error = #expect(throws: KubeError.self) { _ = try decode(line) }
            #expect(error?.code == .decoding, "\(line)")
            #expect(error?.message.contains("the line starts with") == true)
        }
        let unknown = #expect(throws: KubeError.self) { _ = try decode(#"{"type":"SYNC","object":{}}"#) }
        #expect(unknown?.code == .decoding)
        #expect(unknown?.message.contains("unknown type \"SYNC\"") == true)
    }

    @Test func decodesIntoJSONValue() throws {
        let event = try WatchEventDecoder<JSONValue>().decode(
            Data(#"{"type":"ADDED","object":{"metadata":{"name":"x"},"n":1}}"#.utf8))
        #expect(event == .added(["metadata": ["name": "x"], "n": 1]))
    }
}
