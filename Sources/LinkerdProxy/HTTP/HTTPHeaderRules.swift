import NIOHTTP1

/// The header rules the proxy applies to every HTTP message it forwards (reference proxy §2.6–2.8): hop-by-hop
/// headers, `l5d-client-id`, and the `l5d-orig-proto` upgrade between proxies and downgrade at the inbound side.
///
/// Pure functions over NIO's HTTP/1 heads, which HTTP/2 streams are also translated to, so both versions share them.
enum HTTPHeaderRules {
    static let clientIDHeader = "l5d-client-id"
    static let origProtoHeader = "l5d-orig-proto"
    static let proxyErrorHeader = "l5d-proxy-error"
    static let proxyConnectionHeader = "l5d-proxy-connection"

    /// Whether `head` asks for an HTTP/1.1 upgrade (an `Upgrade` header other than `h2c`) or is a `CONNECT`: such a
    /// request keeps its connection headers, is never sent over HTTP/2 between proxies, and its connection becomes
    /// a byte stream after a `101` (or a 2xx to `CONNECT`).
    static func isUpgrade(_ head: HTTPRequestHead) -> Bool {
        if head.method == .CONNECT { return true }
        guard head.version == .http1_1 else { return false }
        let upgrade = head.headers[canonicalForm: "upgrade"]
        return !upgrade.isEmpty && !upgrade.allSatisfy { $0.lowercased() == "h2c" }
    }

    /// The 400 upstream answers for requests that are "definitely bad" (§2.6), or nil: `CONNECT` on HTTP/1.0,
    /// `CONNECT` to anything but an authority (`host:port`), and any other method with an authority-form target.
    static func definitelyBad(_ head: HTTPRequestHead) -> HTTPProxyError? {
        let authorityForm = !head.uri.hasPrefix("/") && !head.uri.contains("://") && head.uri != "*"
        if head.method == .CONNECT {
            if head.version == .http1_0 {
                return .badRequest("CONNECT is not supported on HTTP/1.0")
            }
            if !authorityForm {
                return .badRequest("CONNECT requires an authority-form target (host:port)")
            }
        } else if authorityForm {
            return .badRequest("only CONNECT may use an authority-form target")
        }
        return nil
    }

    /// Removes the hop-by-hop headers of a message that is not an upgrade: `connection` and every header it names,
    /// then `upgrade`, `proxy-connection` and `keep-alive`. (`transfer-encoding` is left to the codecs, which frame
    /// the body for the next hop themselves.)
    static func stripHopByHop(_ headers: inout HTTPHeaders) {
        // Most messages carry none of them: one read-only pass spares them the removals' scans and copies.
        guard headers.contains(where: { isHopByHop($0.name) }) else { return }
        for named in headers[canonicalForm: "connection"] {
            headers.remove(name: String(named))
        }
        headers.remove(name: "connection")
        headers.remove(name: "upgrade")
        headers.remove(name: "proxy-connection")
        headers.remove(name: "keep-alive")
    }

    /// The names ``stripHopByHop(_:)`` removes whatever `connection` says, in lowercase.
    private static let hopByHopNames = ["connection", "upgrade", "proxy-connection", "keep-alive"]

    private static func isHopByHop(_ name: String) -> Bool {
        hopByHopNames.contains { equalsIgnoringASCIICase(name, lowercase: $0) }
    }

    /// Whether `value` equals `lowercase` (which is all lowercase ASCII) ignoring ASCII case, byte by byte.
    static func equalsIgnoringASCIICase(_ value: String, lowercase: String) -> Bool {
        value.utf8.count == lowercase.utf8.count && hasPrefixIgnoringASCIICase(value, lowercase: lowercase)
    }

    /// Whether `value` starts with `lowercase` (which is all lowercase ASCII) ignoring ASCII case, byte by byte and
    /// without building a lowercased copy: this runs for every request.
    static func hasPrefixIgnoringASCIICase(_ value: String, lowercase: String) -> Bool {
        let prefix = lowercase.utf8
        let bytes = value.utf8
        guard bytes.count >= prefix.count else { return false }
        return zip(bytes, prefix).allSatisfy { byte, expected in
            byte == expected || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") && byte | 0x20 == expected)
        }
    }

    /// Sets `l5d-client-id` to the identity the client's certificate proved, or removes it when there is none, so an
    /// application never sees a client id the proxy did not verify.
    static func setClientIdentity(_ identity: String?, in headers: inout HTTPHeaders) {
        if headers.contains(name: clientIDHeader) {
            headers.remove(name: clientIDHeader)
        }
        if let identity {
            headers.add(name: clientIDHeader, value: identity)
        }
    }

    /// The `l5d-orig-proto` value for an HTTP/1 request about to travel over HTTP/2 to a meshed peer: its version and,
    /// when its target was in absolute form, `; absolute-form`.
    static func origProtoValue(version: HTTPVersion, absoluteForm: Bool) -> String {
        let base = version == .http1_0 ? "HTTP/1.0" : "HTTP/1.1"
        return absoluteForm ? base + "; absolute-form" : base
    }

    /// Rewrites an HTTP/1 request to travel over HTTP/2 to a meshed peer (§2.7, client side): marks it with
    /// `l5d-orig-proto`, drops `transfer-encoding`, and splits an absolute-form target into `host` and a path, as an
    /// HTTP/2 request carries them in `:authority` and `:path`.
    static func upgradeToOrigProto(_ head: inout HTTPRequestHead) {
        let absolute = AbsoluteForm(head.uri)
        head.headers.replaceOrAdd(
            name: origProtoHeader, value: origProtoValue(version: head.version, absoluteForm: absolute != nil))
        head.headers.remove(name: "transfer-encoding")
        if let absolute {
            head.uri = absolute.path
            head.headers.replaceOrAdd(name: "host", value: absolute.authority)
        }
        head.version = .http2
    }

    /// The HTTP/1 request an HTTP/2 request marked with `l5d-orig-proto` stands for (§2.7, server side), or nil when it
    /// is not marked: the header removed, the version restored (HTTP/1.1 unless it says `HTTP/1.0`), and an
    /// absolute-form target rebuilt from `host` and the path.
    static func downgradeFromOrigProto(_ head: inout HTTPRequestHead) -> HTTPVersion? {
        guard let value = head.headers.first(name: origProtoHeader) else { return nil }
        head.headers.remove(name: origProtoHeader)
        let version: HTTPVersion = value.hasPrefix("HTTP/1.0") ? .http1_0 : .http1_1
        head.version = version
        if value.contains("absolute-form"), let host = head.headers.first(name: "host"), head.uri.hasPrefix("/") {
            head.uri = "http://\(host)\(head.uri)"
        }
        return version
    }

    /// Prepares the response to a downgraded request for its way back over HTTP/2: `l5d-orig-proto` names the
    /// version the application answered with, and `transfer-encoding` goes.
    static func markOrigProtoResponse(_ head: inout HTTPResponseHead, version: HTTPVersion) {
        head.headers.remove(name: "transfer-encoding")
        head.headers.replaceOrAdd(name: origProtoHeader, value: version == .http1_0 ? "HTTP/1.0" : "HTTP/1.1")
    }

    /// Restores the response to an upgraded request for the HTTP/1 client: no `l5d-orig-proto`, and the request's
    /// version.
    static func restoreOrigProtoResponse(_ head: inout HTTPResponseHead, version: HTTPVersion) {
        head.headers.remove(name: origProtoHeader)
        head.version = version
    }

    /// Whether `head` is a gRPC request: HTTP/2 with a `content-type` starting `application/grpc`.
    static func isGRPC(_ head: HTTPRequestHead) -> Bool {
        guard head.version.major == 2, let contentType = head.headers.first(name: "content-type") else { return false }
        return hasPrefixIgnoringASCIICase(contentType, lowercase: "application/grpc")
    }
}

/// An absolute-form request target (`http://host:port/path?query`), split into its authority and its origin-form
/// path; nil for any other form.
struct AbsoluteForm: Equatable {
    var authority: String
    var path: String

    init?(_ uri: String) {
        let lowered = uri.prefix(8).lowercased()
        let schemeLength: Int
        if lowered.hasPrefix("http://") {
            schemeLength = 7
        } else if lowered.hasPrefix("https://") {
            schemeLength = 8
        } else {
            return nil
        }
        let rest = uri.dropFirst(schemeLength)
        let pathStart = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
        let authority = rest[..<pathStart]
        guard !authority.isEmpty else { return nil }
        self.authority = String(authority)
        let path = rest[pathStart...]
        self.path = path.isEmpty ? "/" : (path.first == "?" ? "/" + path : String(path))
    }
}
