import LinkerdCore

/// The nat table as `iptables-save -t nat` prints it: its chains and its rules, in order.
///
/// Planning starts from this snapshot so that installing is idempotent (a chain that exists is flushed rather than
/// created, a jump that exists is not added twice) and so that cleanup and rollback know exactly what to remove.
public struct NATTable: Sendable, Hashable {
    /// Every chain declared with `:NAME POLICY [packets:bytes]`, in order, built-in ones included.
    public var chains: [String]
    /// Every `-A` line, in order.
    public var rules: [NATRule]

    /// The table with no chains and no rules: what `iptables-save -t nat` prints (nothing) when the nat table is not
    /// loaded.
    public static let empty = NATTable(chains: [], rules: [])

    /// A table with the given chains and rules, as given.
    public init(chains: [String], rules: [NATRule]) {
        self.chains = chains
        self.rules = rules
    }

    /// Parses the output of `iptables-save -t nat` (legacy or nft, IPv4 or IPv6).
    ///
    /// Accepted lines: blank lines and `#` comments anywhere; `*nat` opening the nat section; `:NAME POLICY` chain
    /// declarations with optional `[packets:bytes]` counters; `-A CHAIN arguments...` rules, whose arguments are
    /// split as iptables-restore splits them (on spaces and tabs; `"..."` quotes, in which a backslash escapes the next
    /// character); and `COMMIT` closing the section. Sections of any other table (`*filter`, ...) are skipped whole.
    /// Empty text is the empty table.
    ///
    /// - Throws: ``ParseError`` about the whole text, expected `iptables-save output`, whose reason names the line by
    ///   number, quotes it and says what is wrong: a line that is none of the above inside the nat section or
    ///   outside any section, an unterminated quote, a rule for a chain not declared before it, a chain declared
    ///   twice, a second nat section, or a section without `COMMIT`.
    public init(parsingSave text: String) throws(ParseError) {
        var parser = SaveParser(text: text)
        self = try parser.parse()
    }

    /// Whether the table declares a chain called `name`.
    public func hasChain(_ name: String) -> Bool {
        chains.contains(name)
    }

    /// The rules of chain `chain`, in order.
    public func rules(in chain: String) -> [NATRule] {
        rules.filter { $0.chain == chain }
    }
}

/// One rule of the nat table: a `-A <chain> <arguments>` line of `iptables-save`.
public struct NATRule: Sendable, Hashable {
    /// The chain the rule is in.
    public var chain: String
    /// The tokens after `-A <chain>`, unquoted (iptables-save quotes with `"..."` and backslash escapes).
    public var arguments: [String]
    /// The value after `-j` / `--jump` (or `-g` / `--goto`), if any: the chain or target the rule sends packets to.
    public var target: String?

    /// The rule in `chain` with `arguments`; ``target`` is read from them.
    public init(chain: String, arguments: [String]) {
        self.chain = chain
        self.arguments = arguments
        let jump = arguments.indices.dropLast().last { ["-j", "--jump", "-g", "--goto"].contains(arguments[$0]) }
        target = jump.map { arguments[$0 + 1] }
    }
}

/// The state of one pass over the lines of `iptables-save` output.
private struct SaveParser {
    /// Where the parser is between sections.
    private enum Section {
        /// Outside any `*table` ... `COMMIT` section.
        case none
        /// In the nat section, opened on the given 1-based line.
        case nat(openedOn: Int)
        /// In another table's section, which is skipped; opened on the given line.
        case other(openedOn: Int)
    }

    let text: String
    private var chains: [String] = []
    private var declared: Set<String> = []
    private var rules: [NATRule] = []
    private var section = Section.none
    private var sawNat = false

    init(text: String) {
        self.text = text
    }

    mutating func parse() throws(ParseError) -> NATTable {
        let lines = text.split(omittingEmptySubsequences: false) { $0 == "\n" || $0 == "\r\n" }
        for (offset, line) in lines.enumerated() {
            try parseLine(String(line), number: offset + 1)
        }
        switch section {
        case .none:
            return NATTable(chains: chains, rules: rules)
        case .nat(let line), .other(let line):
            throw failure("the section opened on line \(line) is not closed by COMMIT")
        }
    }

    /// Takes in `line`, the `number`th (from 1), reporting a problem as an error about the whole text.
    private mutating func parseLine(_ line: String, number: Int) throws(ParseError) {
        do throws(LineProblem) {
            try take(line, number: number)
        } catch {
            throw failure("line \(number) \(line.quoted) \(error.text)")
        }
    }

    private mutating func take(_ line: String, number: Int) throws(LineProblem) {
        let trimmed = line.trimmingWhitespace
        if trimmed.isEmpty || trimmed.hasPrefix("#") {
            return
        }
        switch section {
        case .none:
            guard trimmed.hasPrefix("*") else {
                throw LineProblem("is outside a table section; expected a line such as *nat")
            }
            guard trimmed == "*nat" else {
                section = .other(openedOn: number)
                return
            }
            guard !sawNat else {
                throw LineProblem("opens a second nat section")
            }
            sawNat = true
            section = .nat(openedOn: number)
        case .other:
            if trimmed == "COMMIT" {
                section = .none
            }
        case .nat:
            if trimmed == "COMMIT" {
                section = .none
            } else if trimmed.hasPrefix(":") {
                try declareChain(trimmed.dropFirst())
            } else if trimmed.prefix(while: { !$0.isWhitespace }) == "-A" {
                try appendRule(trimmed.dropFirst(2))
            } else {
                throw LineProblem(
                    "is not a chain declaration (:NAME POLICY [packets:bytes]), a rule (-A CHAIN ...) or COMMIT")
            }
        }
    }

    /// Declares the chain of `declaration`, a line without its leading `:`.
    private mutating func declareChain(_ declaration: Substring) throws(LineProblem) {
        let fields = declaration.split(whereSeparator: \.isWhitespace)
        guard fields.count == 2 || fields.count == 3 else {
            throw LineProblem("is not a chain declaration: expected :NAME POLICY [packets:bytes]")
        }
        if fields.count == 3, !Self.isCounters(fields[2]) {
            throw LineProblem("has counters \(fields[2].quoted) that are not [packets:bytes]")
        }
        let name = String(fields[0])
        guard declared.insert(name).inserted else {
            throw LineProblem("declares the chain \(name.quoted) a second time")
        }
        chains.append(name)
    }

    /// Appends the rule of `rest`, a line without its leading `-A`.
    private mutating func appendRule(_ rest: Substring) throws(LineProblem) {
        guard let tokens = Self.tokens(of: rest) else {
            throw LineProblem("has a quote that is not closed")
        }
        guard let chain = tokens.first else {
            throw LineProblem("names no chain after -A")
        }
        guard declared.contains(chain) else {
            throw LineProblem("appends to the chain \(chain.quoted), which is not declared before it")
        }
        rules.append(NATRule(chain: chain, arguments: Array(tokens.dropFirst())))
    }

    private func failure(_ reason: String) -> ParseError {
        ParseError(value: text, expected: "iptables-save output", reason: reason)
    }

    /// Whether `field` is `[packets:bytes]`, two decimal numbers.
    private static func isCounters(_ field: Substring) -> Bool {
        guard field.hasPrefix("["), field.hasSuffix("]") else { return false }
        let numbers = field.dropFirst().dropLast().split(separator: ":", omittingEmptySubsequences: false)
        return numbers.count == 2 && numbers.allSatisfy { !$0.isEmpty && $0.allSatisfy(\.isASCIIDigit) }
    }

    /// The tokens of a rule line as iptables-restore reads them, or nil when a quote is not closed.
    ///
    /// Tokens are separated by spaces and tabs. A `"` opens a quoted part of a token, in which spaces are kept and a
    /// backslash makes the next character literal; the next unescaped `"` closes it. Outside quotes a backslash is an
    /// ordinary character. `""` is an empty token.
    static func tokens(of line: Substring) -> [String]? {
        var tokens: [String] = []
        var current = ""
        var inToken = false
        var quoted = false
        var escaped = false
        for character in line {
            if quoted {
                if escaped {
                    current.append(character)
                    escaped = false
                } else if character == "\\" {
                    escaped = true
                } else if character == "\"" {
                    quoted = false
                } else {
                    current.append(character)
                }
            } else if character == " " || character == "\t" {
                if inToken {
                    tokens.append(current)
                    current = ""
                    inToken = false
                }
            } else {
                inToken = true
                if character == "\"" {
                    quoted = true
                } else {
                    current.append(character)
                }
            }
        }
        guard !quoted else { return nil }
        if inToken {
            tokens.append(current)
        }
        return tokens
    }
}

/// What is wrong with one line, as the end of a sentence whose subject is the line.
private struct LineProblem: Error {
    let text: String

    init(_ text: String) {
        self.text = text
    }
}

extension Character {
    /// Whether this is one of the ASCII digits `0` to `9`.
    fileprivate var isASCIIDigit: Bool {
        ("0"..."9").contains(self)
    }
}
