import LinkerdCore

/// An IP address and a port, written `10.0.0.1:4143` or `[fd00::1]:4143`: the form the proxy's listen addresses take.
///
/// Unlike ``LinkerdCore/ListenAddress``, which follows Go's flags, the host must be an IP address: a host name or an
/// empty host (`:4143`) is refused, as the upstream proxy refuses them.
public struct IPSocketAddress: Hashable, Sendable, CustomStringConvertible {
    /// The address to bind or connect to; `0.0.0.0` or `::` means every interface of that family.
    public var ip: IPAddress
    /// 0 to 65535; 0 asks the system for a free port when binding.
    public var port: UInt16

    /// The address `ip` with `port`.
    public init(ip: IPAddress, port: UInt16) {
        self.ip = ip
        self.port = port
    }

    /// Parses `<ipv4>:<port>` or `[<ipv6>]:<port>`.
    ///
    /// - Throws: ``ParseError`` when there is no `:` before the port, the port is not a decimal number from 0 to
    ///   65535, an IPv6 address is not in brackets, or the host is not an IP address.
    public init(parsing text: String) throws(ParseError) {
        func failure(_ reason: String) -> ParseError {
            ParseError(value: text, expected: "socket address (ip:port)", reason: reason)
        }
        let (host, port) = try HostPortSyntax.split(text, failure: failure)
        guard !host.isEmpty else {
            throw failure("the IP address before the port is missing, as in 0.0.0.0:8080")
        }
        do throws(ParseError) {
            ip = try IPAddress(parsing: host)
        } catch {
            // A malformed address is worth explaining; a host name only needs to be called out as one.
            let looksLikeAddress = host.contains(":") || HostPortSyntax.isDigitsAndDots(host)
            throw failure(
                looksLikeAddress
                    ? "the host \(host.quoted) is not an IP address: \(error.reason)"
                    : "the host \(host.quoted) is not an IP address"
            )
        }
        self.port = port
    }

    /// `10.0.0.1:4143`, or `[fd00::1]:4143` for IPv6; ``init(parsing:)`` parses it back to an equal address.
    public var description: String {
        switch ip {
        case .v4: "\(ip):\(port)"
        case .v6: "[\(ip)]:\(port)"
        }
    }
}

/// The `host:port` syntax shared by ``IPSocketAddress`` and ``ControlPlaneAddress``.
enum HostPortSyntax {
    /// Splits `host:port` or `[ipv6]:port` at the last `:`, removing the brackets from an IPv6 host.
    ///
    /// - Throws: the error `failure` makes when there is no `:`, the port is not a decimal number from 0 to 65535,
    ///   brackets are unbalanced, or an IPv6 address (a host with a `:`) is not in brackets.
    static func split(
        _ text: String,
        failure: (String) -> ParseError
    ) throws(ParseError) -> (host: String, port: UInt16) {
        guard let colon = text.lastIndex(of: ":") else {
            throw failure("there is no \":\" before the port, as in 10.0.0.1:8080 or [fd00::1]:8080")
        }
        let portText = text[text.index(after: colon)...]
        guard !portText.isEmpty, portText.utf8.allSatisfy(isASCIIDigit), let port = UInt16(portText) else {
            throw failure("the port \(portText.quoted) is not a number from 0 to 65535")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("[") || host.hasSuffix("]") {
            guard host.hasPrefix("["), host.hasSuffix("]"), host.count > 2 else {
                throw failure("the brackets around the host \(host.quoted) do not match, as in [fd00::1]:8080")
            }
            host = String(host.dropFirst().dropLast())
        } else if host.contains(":") {
            throw failure("an IPv6 address must be written in brackets, as in [fd00::1]:8080")
        }
        return (host, port)
    }

    /// Whether `text` is made only of ASCII digits and dots, as IPv4 addresses are.
    static func isDigitsAndDots(_ text: some StringProtocol) -> Bool {
        text.utf8.allSatisfy { $0 == UInt8(ascii: ".") || isASCIIDigit($0) }
    }

    /// Whether `byte` is an ASCII decimal digit.
    static func isASCIIDigit(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }
}
