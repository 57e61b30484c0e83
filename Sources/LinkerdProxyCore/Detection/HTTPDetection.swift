/// What the first read on a plaintext connection says about HTTP.
///
/// Like upstream, detection decides on a single read of at most ``maxReadLength`` bytes and never waits for more:
/// a request whose first read is shorter than ``minimumHTTP1Length`` bytes is ``notHTTP`` even if the rest would
/// have made it HTTP. Clients write at least their request line in one go, so in practice the first read holds it.
///
/// - ``http2``: the read starts with the 14 bytes `PRI * HTTP/2.0`, the start of the HTTP/2 connection preface
///   (prior knowledge, h2c).
/// - ``http1``: otherwise, the read has at least 14 bytes (the length of `GET / HTTP/1.1`) and, after any empty lines,
///   starts with an HTTP/1 request line, complete or cut short: a method token, one space, a request target, one
///   space, `HTTP/1.0` or `HTTP/1.1`, and a line ending. Whatever follows the request line (headers) only has to start
///   like a header name or end the head.
/// - ``notHTTP``: anything else.
public enum HTTPDetection: Hashable, Sendable {
    /// An HTTP/1.0 or HTTP/1.1 request.
    case http1
    /// HTTP/2 with prior knowledge: the connection preface.
    case http2
    /// Neither: the connection is forwarded as opaque TCP.
    case notHTTP

    /// The most bytes of the first read that detection examines: 1024.
    public static let maxReadLength = 1024
    /// The fewest bytes an HTTP/1 first read can have: 14, the length of `GET / HTTP/1.1`.
    public static let minimumHTTP1Length = 14
    /// `PRI * HTTP/2.0`, the first line of the HTTP/2 connection preface.
    public static let http2PrefacePrefix: [UInt8] = Array("PRI * HTTP/2.0".utf8)

    /// Classifies `firstRead`, the bytes of the first read on a connection; only its first ``maxReadLength`` bytes
    /// count.
    public static func detect(firstRead: UnsafeRawBufferPointer) -> HTTPDetection {
        let bytes = UnsafeRawBufferPointer(rebasing: firstRead.prefix(maxReadLength))
        if bytes.starts(with: http2PrefacePrefix) {
            return .http2
        }
        guard bytes.count >= minimumHTTP1Length else { return .notHTTP }
        var scanner = RequestLineScanner(bytes: bytes)
        return scanner.startsWithRequestLine() ? .http1 : .notHTTP
    }

    /// Classifies `firstRead` as the `UnsafeRawBufferPointer` overload does.
    public static func detect(firstRead: some Collection<UInt8>) -> HTTPDetection {
        if let result = firstRead.withContiguousStorageIfAvailable({ detect(firstRead: UnsafeRawBufferPointer($0)) }) {
            return result
        }
        return Array(firstRead).withUnsafeBytes { detect(firstRead: $0) }
    }
}

/// Checks that bytes are a prefix of an HTTP/1 request head, up to the first header name character.
///
/// Running out of bytes anywhere counts as a match (the request line is only cut short), as does reaching a header
/// or the end of the head: the rules are those of an HTTP/1 parser given no room for headers.
private struct RequestLineScanner {
    private let bytes: UnsafeRawBufferPointer
    private var position = 0

    init(bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    /// Whether the bytes start like an HTTP/1 request head.
    mutating func startsWithRequestLine() -> Bool {
        switch scan() {
        case .matches, .endOfInput: true
        case .mismatch: false
        }
    }

    private enum Outcome {
        /// The bytes matched up to a point where a parser would stop (a header, or the end of the head).
        case matches
        /// The bytes matched as far as they go.
        case endOfInput
        case mismatch
    }

    private mutating func scan() -> Outcome {
        // Empty lines before the request line are skipped, as HTTP/1 servers do.
        while let byte = peek(), byte == UInt8(ascii: "\r") || byte == UInt8(ascii: "\n") {
            if let outcome = lineEnding() {
                return outcome
            }
        }
        // Method and request target: each one or more allowed bytes, then exactly one space.
        if let outcome = field(of: Self.isToken) {
            return outcome
        }
        if let outcome = field(of: Self.isTargetByte) {
            return outcome
        }
        // Version: HTTP/1.0 or HTTP/1.1.
        for byte in "HTTP/1.".utf8 {
            if let outcome = expect(byte) {
                return outcome
            }
        }
        guard let minor = next() else { return .endOfInput }
        guard minor == UInt8(ascii: "0") || minor == UInt8(ascii: "1") else { return .mismatch }
        if let outcome = lineEnding() {
            return outcome
        }
        // No room for headers: a line ending here ends the head, and a header name character starts a header that
        // the parser would have no slot for; both mean the request line was complete.
        guard let first = peek() else { return .endOfInput }
        if first == UInt8(ascii: "\r") || first == UInt8(ascii: "\n") {
            return lineEnding() ?? .matches
        }
        return Self.isToken(first) ? .matches : .mismatch
    }

    /// Consumes `\r\n` or `\n`; `nil` when it did.
    private mutating func lineEnding() -> Outcome? {
        guard let byte = next() else { return .endOfInput }
        switch byte {
        case UInt8(ascii: "\n"):
            return nil
        case UInt8(ascii: "\r"):
            return expect(UInt8(ascii: "\n"))
        default:
            return .mismatch
        }
    }

    /// Consumes `byte`; `nil` when it did.
    private mutating func expect(_ byte: UInt8) -> Outcome? {
        guard let actual = next() else { return .endOfInput }
        return actual == byte ? nil : .mismatch
    }

    /// Consumes one or more bytes matching `isAllowed` and the single space after them; `nil` when it did.
    private mutating func field(of isAllowed: (UInt8) -> Bool) -> Outcome? {
        if let outcome = run(of: isAllowed) {
            return outcome
        }
        return expect(UInt8(ascii: " "))
    }

    /// Consumes one or more bytes matching `isAllowed`, stopping before the first that does not; `nil` when it did.
    private mutating func run(of isAllowed: (UInt8) -> Bool) -> Outcome? {
        let start = position
        while let byte = peek(), isAllowed(byte) {
            position += 1
        }
        if peek() == nil {
            return .endOfInput
        }
        return position > start ? nil : .mismatch
    }

    private func peek() -> UInt8? {
        position < bytes.count ? bytes[position] : nil
    }

    private mutating func next() -> UInt8? {
        defer { position += 1 }
        return peek()
    }

    /// An RFC 9110 `tchar`: the characters of methods and header names.
    private static func isToken(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        default:
            "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }

    /// A byte HTTP/1 servers accept in a request target: visible ASCII except `"`, `<` and `>`, or any non-ASCII
    /// byte (UTF-8 in the path).
    private static func isTargetByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "<"), UInt8(ascii: ">"): false
        case 0x21...0x7E, 0x80...0xFF: true
        default: false
        }
    }
}
