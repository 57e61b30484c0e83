import LinkerdProxyCore
import Testing

@Suite("Metric labels")
struct MetricLabelsTests {
    @Test("pairs render in order as name=\"value\" joined by commas")
    func rendering() {
        let labels: MetricLabels = ["direction": "inbound", "tls": "true"]
        #expect(labels.text == #"direction="inbound",tls="true""#)
        #expect(labels.pairs.map(\.name) == ["direction", "tls"])
        #expect(labels.pairs.map(\.value) == ["inbound", "true"])
        #expect(MetricLabels([]).text == "")
    }

    @Test("values escape backslash, double quote and line feed, and nothing else")
    func escaping() {
        let labels = MetricLabels([(name: "v", value: "a\\b\"c\nd\r\ne\té")])
        #expect(labels.text == "v=\"a\\\\b\\\"c\\nd\r\\ne\té\"")
    }

    @Test("appending extends the text and the pairs")
    func appending() {
        let base: MetricLabels = ["direction": "outbound"]
        let extended = base.appending("errno", "").appending("error", "h2(\"x\")")
        #expect(extended.text == #"direction="outbound",errno="",error="h2(\"x\")""#)
        #expect(extended.pairs.map(\.name) == ["direction", "errno", "error"])
        #expect(MetricLabels([]).appending("a", "b").text == #"a="b""#)
        #expect(base.text == #"direction="outbound""#)
    }

    @Test("equal and hashed by text, so order matters")
    func identity() {
        let built = MetricLabels([(name: "a", value: "1")]).appending("b", "2")
        let literal: MetricLabels = ["a": "1", "b": "2"]
        let reversed: MetricLabels = ["b": "2", "a": "1"]
        #expect(built == literal)
        #expect(built.hashValue == literal.hashValue)
        #expect(built != reversed)
        #expect(Set([built, literal, reversed]).count == 2)
    }
}
