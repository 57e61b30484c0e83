/// A `host:port` listening address as Go's servers (and so Linkerd's flags) spell it: `:8443` means every IPv4
/// interface, `127.0.0.1:8080` one address, `[::1]:4190` an IPv6 one.
public struct ListenAddress: Hashable, Sendable, CustomStringConvertible {
    /// An IP address or host name; `0.0.0.0` when the flag gave none.
    public var host: String
    /// 0 to 65535; 0 asks the system for a free port.
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port`, `:port` or `[ipv6]:port`.
    ///
    /// - Throws: ``ParseError`` when there is no `:`, the port is not a decimal number from 0 to 65535, or an IPv6
    ///   address is not bracketed.
    public init(parsing text: String) throws(ParseError) {
        func failure(_ reason: String) -> ParseError {
            ParseError(value: text, expected: "listening address (host:port)", reason: reason)
        }
        guard let colon = text.lastIndex(of: ":") else {
            throw failure("there is no \":\" before the port, as in :8080 or 127.0.0.1:8080")
        }
        let portText = text[text.index(after: colon)...]
        guard !portText.isEmpty, portText.isASCIIDigits, let port = Int(portText), (0...65_535).contains(port) else {
            throw failure("the port \(String(portText).quoted) is not a number from 0 to 65535")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("[") || host.hasSuffix("]") {
            guard host.hasPrefix("["), host.hasSuffix("]"), host.count > 2 else {
                throw failure("an IPv6 address must be written in brackets, as in [::1]:8080")
            }
            host = String(host.dropFirst().dropLast())
        } else if host.contains(":") {
            throw failure("an IPv6 address must be written in brackets, as in [::1]:8080")
        }
        self.host = host.isEmpty ? "0.0.0.0" : host
        self.port = port
    }

    /// `host:port`, with an IPv6 host in brackets.
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
