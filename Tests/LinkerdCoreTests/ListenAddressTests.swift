import LinkerdCore
import Testing

@Suite("ListenAddress")
struct ListenAddressTests {
    @Test(arguments: [
        (":8443", "0.0.0.0", 8443),
        ("127.0.0.1:8080", "127.0.0.1", 8080),
        ("[::1]:4190", "::1", 4190),
        ("[::]:0", "::", 0),
        ("localhost:65535", "localhost", 65535),
    ])
    func parses(text: String, host: String, port: Int) throws {
        let address = try ListenAddress(parsing: text)
        #expect(address == ListenAddress(host: host, port: port))
    }

    @Test func describesIPv6InBrackets() throws {
        #expect(try ListenAddress(parsing: "[::1]:4190").description == "[::1]:4190")
        #expect(try ListenAddress(parsing: ":8443").description == "0.0.0.0:8443")
    }

    @Test(arguments: [
        ("8443", "there is no \":\""),
        (":", "the port \"\" is not a number"),
        (":65536", "the port \"65536\""),
        (":-1", "the port \"-1\""),
        (":80x", "the port \"80x\""),
        ("::1:80", "must be written in brackets"),
        ("[::1:80", "must be written in brackets"),
        ("[]:80", "must be written in brackets"),
    ])
    func rejects(text: String, reason: String) {
        #expect {
            try ListenAddress(parsing: text)
        } throws: { error in
            "\(error)".contains(reason) && "\(error)".contains("listening address")
        }
    }
}
