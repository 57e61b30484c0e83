import LinkerdCore
import Testing

@Suite("IPAddress.isLoopback")
struct IPAddressLoopbackTests {
    @Test(
        arguments: [
            ("127.0.0.1", true), ("127.255.255.254", true), ("128.0.0.1", false), ("10.0.0.1", false),
            ("::1", true), ("::", false), ("::2", false), ("::ffff:127.0.0.1", true), ("::ffff:10.0.0.1", false),
            ("fe80::1", false),
        ])
    func loopback(address: String, isLoopback: Bool) throws {
        #expect(try IPAddress(parsing: address).isLoopback == isLoopback)
    }
}
