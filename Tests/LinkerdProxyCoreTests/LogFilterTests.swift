import LinkerdCore
import LinkerdProxyCore
import Testing

@Suite("LINKERD2_PROXY_LOG filters")
struct LogFilterTests {
    @Test("the proxy's default: warn for all, info for linkerd and its modules, error for hickory")
    func proxyDefault() throws {
        let filter = try LogFilter(parsing: "warn,linkerd=info,hickory=error")
        #expect(filter == .proxyDefault)
        #expect(filter.level(for: "linkerd") == .info)
        #expect(filter.level(for: "linkerd::proxy::tcp") == .info)
        #expect(filter.level(for: "linkerdx") == .warn, "a target covers only its own :: descendants")
        #expect(filter.level(for: "hickory::resolver") == .error)
        #expect(filter.level(for: "h2") == .warn)
        #expect(filter.description == "warn,linkerd=info,hickory=error")
    }

    @Test("the longest matching target wins, whatever the order; the last bare level is the default")
    func precedence() throws {
        let filter = try LogFilter(parsing: " linkerd::proxy=debug , linkerd=warn,info,off ,linkerd::proxy::http=trace")
        #expect(filter.level(for: "linkerd::proxy::http::h2") == .trace)
        #expect(filter.level(for: "linkerd::proxy::tcp") == .debug)
        #expect(filter.level(for: "linkerd::app") == .warn)
        #expect(filter.level(for: "tokio") == .off)
        #expect(try LogFilter(parsing: "").level(for: "linkerd") == .error, "tracing's default is error")
        #expect(try LogFilter(parsing: "linkerd").level(for: "linkerd::x") == .trace, "a bare target means all levels")
        #expect(try LogFilter(parsing: "WARNING,Linkerd=DEBUG").level(for: "Linkerd") == .debug)
    }

    @Test("the chart's span filters are kept and select nothing")
    func spanFilters() throws {
        let text = "warn,linkerd=info,hickory=error,[{headers}]=off,[{request}]=off"
        let filter = try LogFilter(parsing: text)
        #expect(filter.description == text)
        #expect(filter.directives.last == .init(target: nil, spanFilter: "[{request}]", level: .off))
        #expect(filter.level(for: "linkerd::proxy") == .info)
        #expect(filter.level(for: "h2") == .warn, "a span filter is not a bare level")
        let scoped = try LogFilter(parsing: "linkerd[accept{client.addr=1.2.3.4:5}]=debug")
        #expect(
            scoped.directives == [
                .init(target: "linkerd", spanFilter: "[accept{client.addr=1.2.3.4:5}]", level: .debug)
            ])
    }

    @Test("descriptions parse back to equal filters")
    func roundTrip() throws {
        for text in ["warn,linkerd=info,hickory=error", "off", "linkerd::proxy,debug", "trace"] {
            let filter = try LogFilter(parsing: text)
            #expect(try LogFilter(parsing: filter.description) == filter)
        }
    }

    @Test(
        "bad filters name the directive at fault",
        arguments: [
            ("linkerd=loud", #""loud" in "linkerd=loud" is not a level"#),
            ("linkerd=info=debug", #""linkerd=info=debug" has more than one "=""#),
            ("linkerd[span{id=1}=debug", "is not one [...] group with balanced braces"),
            ("linkerd]=debug", #"has a "]" without "[""#),
            ("linkerd:proxy=info", #""linkerd:proxy" is neither a level nor a target"#),
            ("=info", #""" is neither a level nor a target"#),
            ("bad target", #""bad target" is neither a level nor a target"#),
        ])
    func invalid(text: String, reason: String) {
        #expect {
            try LogFilter(parsing: text)
        } throws: { error in
            guard let error = error as? ParseError else { return false }
            return error.expected == "log filter" && error.value == text && error.reason.contains(reason)
        }
    }
}
