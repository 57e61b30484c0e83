/// An environment held in a dictionary, for tests and for configuration assembled in code.
public struct DictionaryEnvironment: EnvironmentReader, Hashable, ExpressibleByDictionaryLiteral {
    /// The variables, by name.
    public var values: [String: String]

    /// An environment holding `values`.
    public init(_ values: [String: String] = [:]) {
        self.values = values
    }

    /// An environment holding the given variables; when a name repeats, its last value wins.
    public init(dictionaryLiteral elements: (String, String)...) {
        self.init(Dictionary(elements) { _, last in last })
    }

    /// The value of `name` in ``values``.
    public func value(_ name: String) -> String? {
        values[name]
    }
}
