/// The labels of one Prometheus series: name–value pairs in a fixed order, rendered once, when the value is made,
/// into the exposition text `name="value",…`. A scrape then copies that text instead of formatting labels again,
/// and a registry lookup hashes one string whose hash is computed once.
///
/// Two label sets are equal when their texts are, so the same pairs in another order are another series: the order
/// is the order of the scrape's output, and each family builds its labels in one fixed order.
///
/// Values are escaped as the text format requires (backslash, double quote, line feed). Names are not checked: they
/// must be distinct, valid Prometheus label names (`[a-zA-Z_][a-zA-Z0-9_]*`), as the proxy's own are; a caller that
/// takes names from elsewhere, such as the Destination service's metric labels, must keep them to that form.
public struct MetricLabels: Hashable, Sendable, ExpressibleByDictionaryLiteral {
    /// The pairs, in order.
    public let pairs: [(name: String, value: String)]
    /// The exposition text: `name="value"` for each pair, values escaped, joined by commas; empty without pairs.
    public let text: String
    /// The hash of ``text``, computed once: the registry hashes a label set on every lookup.
    private let textHash: Int

    /// Labels with these pairs, in this order.
    public init(_ pairs: [(name: String, value: String)]) {
        var text = ""
        for (name, value) in pairs {
            Self.appendPair(name: name, value: value, to: &text)
        }
        self.init(pairs: pairs, text: text)
    }

    /// Labels with the literal's pairs, in the literal's order: `["direction": "inbound", "tls": "true"]`.
    public init(dictionaryLiteral elements: (String, String)...) {
        self.init(elements.map { (name: $0.0, value: $0.1) })
    }

    private init(pairs: [(name: String, value: String)], text: String) {
        self.pairs = pairs
        self.text = text
        self.textHash = text.hashValue
    }

    /// These labels followed by one more pair; the text is extended, not rendered again.
    public func appending(_ name: String, _ value: String) -> MetricLabels {
        var text = self.text
        Self.appendPair(name: name, value: value, to: &text)
        return MetricLabels(pairs: pairs + [(name: name, value: value)], text: text)
    }

    public static func == (lhs: MetricLabels, rhs: MetricLabels) -> Bool {
        lhs.text == rhs.text
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(textHash)
    }

    private static func appendPair(name: String, value: String, to text: inout String) {
        if !text.isEmpty {
            text += ","
        }
        text += name
        text += "=\""
        PrometheusText.appendEscapedLabelValue(value, to: &text)
        text += "\""
    }
}
