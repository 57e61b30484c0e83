import NIOCore
import NIOHTTP1
import Testing

@testable import LinkerdProxy

@Suite("HTTP header rules (hop-by-hop, l5d-client-id, l5d-orig-proto, upgrades) and synthesized errors")
struct HTTPHeaderRulesTests {
    private func head(
        _ method: HTTPMethod = .GET, _ uri: String = "/", version: HTTPVersion = .http1_1,
        _ headers: [(String, String)] = []
    ) -> HTTPRequestHead {
        HTTPRequestHead(version: version, method: method, uri: uri, headers: HTTPHeaders(headers))
    }

    @Test(
        "Absolute-form targets split into authority and path; other forms are not absolute",
        arguments: [
            ("http://api.example:8080/a/b?q=1", "api.example:8080", "/a/b?q=1"), ("HTTPS://API/", "API", "/"),
            ("http://api.example", "api.example", "/"), ("http://api.example?q", "api.example", "/?q"),
            ("/a/b", nil, nil), ("api.example:443", nil, nil), ("http:///path", nil, nil), ("*", nil, nil),
        ] as [(String, String?, String?)])
    func absoluteForm(uri: String, authority: String?, path: String?) {
        let form = AbsoluteForm(uri)
        #expect(form?.authority == authority)
        #expect(form?.path == path)
    }

    @Test("Hop-by-hop headers go, with every header Connection names")
    func hopByHop() {
        var headers = HTTPHeaders([
            ("Connection", "keep-alive, X-Trace"), ("Keep-Alive", "timeout=5"), ("X-Trace", "1"),
            ("Proxy-Connection", "keep-alive"), ("Upgrade", "h2c"), ("X-Kept", "yes"), ("TE", "trailers"),
        ])
        HTTPHeaderRules.stripHopByHop(&headers)
        #expect(headers.map(\.name) == ["X-Kept", "TE"])

        for alone in ["KEEP-ALIVE", "upgrade", "Proxy-Connection", "connection"] {
            var single = HTTPHeaders([("Host", "api"), (alone, "x"), ("Accept", "*/*")])
            HTTPHeaderRules.stripHopByHop(&single)
            #expect(single.map(\.name) == ["Host", "Accept"], "\(alone)")
        }
        // Names that merely look alike (same length, a prefix) stay.
        let lookalikes = [("Connectiom", "1"), ("Upgrades", "2"), ("keep-aliv", "3"), ("X-Proxy-Connection", "4")]
        var kept = HTTPHeaders(lookalikes)
        HTTPHeaderRules.stripHopByHop(&kept)
        #expect(kept.map(\.name) == lookalikes.map(\.0))
    }

    @Test("An upgrade is a 1.1 Upgrade other than h2c, or CONNECT")
    func upgrades() {
        #expect(HTTPHeaderRules.isUpgrade(head(.GET, "/ws", [("Upgrade", "websocket"), ("Connection", "upgrade")])))
        #expect(HTTPHeaderRules.isUpgrade(head(.CONNECT, "api:443")))
        #expect(!HTTPHeaderRules.isUpgrade(head(.GET, "/", [("Upgrade", "h2c")])))
        #expect(!HTTPHeaderRules.isUpgrade(head(.GET, "/", version: .http1_0, [("Upgrade", "websocket")])))
        #expect(!HTTPHeaderRules.isUpgrade(head()))
    }

    @Test("l5d-client-id carries only the verified identity")
    func clientIdentity() {
        var headers = HTTPHeaders([("l5d-client-id", "spoofed"), ("l5d-client-id", "twice")])
        HTTPHeaderRules.setClientIdentity(nil, in: &headers)
        #expect(headers["l5d-client-id"].isEmpty)
        HTTPHeaderRules.setClientIdentity("web.ns.serviceaccount.identity.linkerd.cluster.local", in: &headers)
        #expect(headers["l5d-client-id"] == ["web.ns.serviceaccount.identity.linkerd.cluster.local"])
    }

    @Test(
        "orig-proto: an HTTP/1 request upgraded and downgraded again is the request it was",
        arguments: [
            ("/path?q", HTTPVersion.http1_1, "HTTP/1.1"),
            ("http://api.example:8080/abs", .http1_1, "HTTP/1.1; absolute-form"),
            ("/ten", .http1_0, "HTTP/1.0"),
        ])
    func origProtoRoundTrip(uri: String, version: HTTPVersion, marker: String) {
        let original = head(
            .POST, uri, version: version, [("Host", "api.example:8080"), ("Transfer-Encoding", "chunked")])
        var upgraded = original
        HTTPHeaderRules.upgradeToOrigProto(&upgraded)
        #expect(upgraded.version == .http2)
        #expect(upgraded.headers["l5d-orig-proto"] == [marker])
        #expect(upgraded.headers["transfer-encoding"].isEmpty)
        #expect(upgraded.uri.hasPrefix("/"))

        var downgraded = upgraded
        #expect(HTTPHeaderRules.downgradeFromOrigProto(&downgraded) == version)
        #expect(downgraded.version == version)
        #expect(downgraded.uri == original.uri)
        #expect(downgraded.headers["l5d-orig-proto"].isEmpty)

        var plain = head(.GET, "/", version: .http2)
        #expect(HTTPHeaderRules.downgradeFromOrigProto(&plain) == nil)
    }

    @Test("The response to a downgraded request says so; the client gets its own version back without the marker")
    func origProtoResponses() {
        var response = HTTPResponseHead(
            version: .http1_1, status: .ok, headers: HTTPHeaders([("Transfer-Encoding", "chunked")]))
        HTTPHeaderRules.markOrigProtoResponse(&response, version: .http1_1)
        #expect(response.headers["l5d-orig-proto"] == ["HTTP/1.1"])
        #expect(response.headers["transfer-encoding"].isEmpty)
        HTTPHeaderRules.restoreOrigProtoResponse(&response, version: .http1_0)
        #expect(response.headers["l5d-orig-proto"].isEmpty)
        #expect(response.version == .http1_0)
    }

    @Test("CONNECT on HTTP/1.0, CONNECT without an authority and authority-form GETs are refused")
    func definitelyBad() {
        #expect(HTTPHeaderRules.definitelyBad(head(.CONNECT, "api:443", version: .http1_0)) != nil)
        #expect(HTTPHeaderRules.definitelyBad(head(.CONNECT, "/path")) != nil)
        #expect(HTTPHeaderRules.definitelyBad(head(.GET, "api:80")) != nil)
        #expect(HTTPHeaderRules.definitelyBad(head(.CONNECT, "api:443")) == nil)
        #expect(HTTPHeaderRules.definitelyBad(head(.GET, "http://api/x")) == nil)
        #expect(HTTPHeaderRules.definitelyBad(head(.OPTIONS, "*")) == nil)
    }

    @Test(
        "Synthesized errors: upstream's statuses, grpc-status for gRPC callers, l5d-proxy-error only when allowed",
        arguments: [
            (HTTPProxyError.failFast(service: "api:80", timeout: .seconds(3)), 504, 4),
            (.loadShed, 503, 14), (.connectFailed("refused"), 502, 14), (.connectTimeout("slow"), 504, 4),
            (.upstreamFailed("reset"), 502, 14), (.loop("4143"), 508, 10), (.unexpected("?"), 500, 13),
        ])
    func synthesizedErrors(error: HTTPProxyError, status: Int, grpcStatus: Int) {
        let plain = error.response(to: head(.GET, "/", [("Host", "api")]), informational: true)
        #expect(Int(plain.status.code) == status)
        #expect(plain.headers["content-length"] == ["0"])
        #expect(plain.headers["l5d-proxy-error"] == [error.description])
        #expect(plain.headers["l5d-proxy-connection"] == ["close"])
        #expect(plain.headers["connection"] == ["close"])

        let grpcRequest = head(.POST, "/svc/Method", version: .http2, [("content-type", "application/grpc+proto")])
        let grpc = error.response(to: grpcRequest, informational: false)
        #expect(grpc.status == .ok)
        #expect(grpc.headers["grpc-status"] == [String(grpcStatus)])
        #expect(grpc.headers["content-type"] == ["application/grpc"])
        #expect(grpc.headers["l5d-proxy-error"].isEmpty)
        #expect(grpc.headers["grpc-message"].isEmpty)
        #expect(grpc.headers["connection"].isEmpty)
    }

    @Test("gRPC is HTTP/2 with a content type starting application/grpc, in any case")
    func grpcDetection() {
        #expect(
            HTTPHeaderRules.isGRPC(head(.POST, "/s/M", version: .http2, [("content-type", "Application/GRPC+proto")])))
        #expect(HTTPHeaderRules.isGRPC(head(.POST, "/s/M", version: .http2, [("content-type", "application/grpc")])))
        #expect(!HTTPHeaderRules.isGRPC(head(.POST, "/s/M", version: .http2, [("content-type", "application/grp")])))
        #expect(!HTTPHeaderRules.isGRPC(head(.POST, "/s/M", version: .http2, [("content-type", "text/plain")])))
        #expect(!HTTPHeaderRules.isGRPC(head(.POST, "/s/M", version: .http2)))
        #expect(!HTTPHeaderRules.isGRPC(head(.POST, "/s/M", [("content-type", "application/grpc")])))
    }

    @Test("grpc-message is percent-encoded and l5d-proxy-error has no control characters")
    func errorTextEncoding() {
        let error = HTTPProxyError.connectFailed("a%b\r\nc é")
        let grpcRequest = head(.POST, "/s/M", version: .http2, [("content-type", "application/grpc")])
        let grpc = error.response(to: grpcRequest, informational: true)
        #expect(grpc.headers["grpc-message"] == ["connect error: a%25b%0D%0Ac %C3%A9"])
        let plain = error.response(to: head(), informational: true)
        #expect(plain.headers["l5d-proxy-error"] == ["connect error: a%b  c é"])
    }
}
