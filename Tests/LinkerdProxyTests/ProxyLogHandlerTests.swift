import LinkerdProxy
import LinkerdProxyCore
import LinkerdTestSupport
import Logging
import Testing

@Suite("Proxy log handler")
struct ProxyLogHandlerTests {
    @Test("filtered calls never build their message; a new filter takes effect at once")
    func liveFilter() throws {
        let store = LogFilterStore(try LogFilter(parsing: "warn,linkerd=info"))
        let lines = Locked<[String]>([])
        let built = Locked(0)
        let logger = Logger(label: "linkerd.proxy.inbound") { label in
            ProxyLogHandler(label: label, filter: store, json: false) { line in lines.withLock { $0.append(line) } }
        }
        func message(_ text: String) -> Logger.Message {
            built.withLock { $0 += 1 }
            return "\(text)"
        }
        logger.debug(message("hidden"))
        logger.info(message("shown"))
        #expect(built.value == 1)
        #expect(lines.value.count == 1 && lines.value[0].contains("INFO linkerd::proxy::inbound: shown"))

        store.replace(with: try LogFilter(parsing: "linkerd::proxy=debug"))
        logger.debug(message("now shown"))
        store.replace(with: try LogFilter(parsing: "off"))
        logger.error(message("silenced"))
        #expect(built.value == 2)
        #expect(lines.value.count == 2 && lines.value[1].contains("DEBUG linkerd::proxy::inbound: now shown"))
    }
}
