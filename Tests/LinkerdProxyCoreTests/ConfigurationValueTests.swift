import LinkerdCore
import LinkerdProxyCore
import Testing

@Suite struct ConfigurationValueTests {
    @Test(arguments: ["0.0.0.0:4143", "127.0.0.1:0", "[::]:4191", "[fd00::1]:65535", "[::ffff:10.0.0.1]:80"])
    func socketAddressesPrintAsTheyParse(text: String) throws {
        let address = try IPSocketAddress(parsing: text)
        #expect(address.description == text)
        #expect(try IPSocketAddress(parsing: address.description) == address)
    }

    @Test func socketAddressPartsAreKept() throws {
        let address = try IPSocketAddress(parsing: "[fd00::1]:4140")
        #expect(address.ip == .v6(0xFD00_0000_0000_0000_0000_0000_0000_0001))
        #expect(address.port == 4140)
    }

    @Test(arguments: [
        ("svc.cluster.local.", "web.emojivoto.svc.cluster.local", true),
        ("svc.cluster.local.", "WEB.emojivoto.SVC.cluster.local.", true),
        ("svc.cluster.local", "svc.cluster.local.", true),
        ("svc.cluster.local.", "mysvc.cluster.local", false),
        ("svc.cluster.local.", "example.com", false),
        (".", "example.com", true),
        (".", "localhost", true),
    ])
    func suffixesMatchWholeLabels(suffix: String, name: String, matches: Bool) throws {
        #expect(try DNSSuffix(parsing: suffix).matches(name) == matches)
    }

    @Test func suffixesAreLowercasedAndPrintedAbsolute() throws {
        #expect(try DNSSuffix(parsing: "Svc.Cluster.Local") == .name("svc.cluster.local"))
        #expect(try DNSSuffix(parsing: "svc.cluster.local.").description == "svc.cluster.local.")
        #expect(try DNSSuffix(parsing: ".") == .root)
        #expect(DNSSuffix.root.description == ".")
    }

    @Test func serverNamesAreLowercasedWithoutATrailingDot() throws {
        let name = try TLSServerName(parsing: "Web.Emojivoto.serviceaccount.identity.linkerd.cluster.local.")
        #expect(name.name == "web.emojivoto.serviceaccount.identity.linkerd.cluster.local")
        #expect(name == (try TLSServerName(parsing: "web.emojivoto.serviceaccount.identity.linkerd.cluster.local")))
        #expect(name.description == name.name)
    }

    @Test func serverNamesHaveAtMost253Characters() throws {
        let label = String(repeating: "a", count: 63)
        let longest = [label, label, label, String(repeating: "b", count: 61)].joined(separator: ".")
        #expect(longest.utf8.count == 253)
        #expect(try TLSServerName(parsing: longest).name == longest)
        let tooLong = longest + "b"
        #expect(
            throws: ParseError(
                value: tooLong,
                expected: "DNS name",
                reason: "it is 254 characters long, but a DNS name has at most 253"
            )
        ) {
            try TLSServerName(parsing: tooLong)
        }
    }

    @Test func controlPlaneAddressesNeedANameUnlessLoopback() throws {
        let name = try TLSServerName(
            parsing: "linkerd-destination.linkerd.serviceaccount.identity.linkerd.cluster.local")
        #expect(
            ControlPlaneAddress(
                host: .name("linkerd-dst-headless.linkerd.svc.cluster.local."), port: 8086, serverName: nil) == nil)
        let remote = try #require(ControlPlaneAddress(host: .ip(.v4(0x0A60_000A)), port: 8086, serverName: name))
        #expect(remote.serverName == name)
        #expect(!remote.isLoopback)
        #expect(remote.description == "10.96.0.10:8086")
        let local = try #require(ControlPlaneAddress(host: .ip(.v6(1)), port: 8090, serverName: name))
        #expect(local.serverName == nil)
        #expect(local.isLoopback)
        #expect(local.description == "[::1]:8090")
    }

    @Test(arguments: [
        (ControlPlaneAddress.Host.ip(.v4(0x7F00_0001)), true),
        (.ip(.v4(0x7FFF_FFFF)), true),
        (.ip(.v4(0x8000_0001)), false),
        (.ip(.v6(1)), true),
        (.ip(.v6(0xFFFF_7F00_0001)), true),
        (.name("localhost"), true),
        (.name("Localhost."), true),
        (.name("localhost.localdomain"), false),
    ])
    func loopbackHosts(host: ControlPlaneAddress.Host, isLoopback: Bool) {
        #expect(host.isLoopback == isLoopback)
    }

    @Test(
        arguments: [
            // (minimum, maximum, ratio, available processors, expected count)
            (1, nil, nil, 8, 1),
            (2, nil, nil, 8, 2),
            (4, 2, nil, 8, 4),
            (1, 4, nil, 2, 2),
            (1, nil, 0.5, 10, 5),
            (1, 3, 0.5, 10, 3),
            (6, nil, 0.5, 10, 6),
            (1, nil, 0.31, 10, 3),
            (1, nil, 0.35, 10, 4),
            (1, nil, 0.01, 10, 1),
            (2, 4, nil, 1, 1),
        ] as [(Int, Int?, Double?, Int, Int)])
    func workerCountsFollowUpstreamsRule(
        minimum: Int,
        maximum: Int?,
        ratio: Double?,
        available: Int,
        expected: Int
    ) throws {
        var environment: [String: String] = ConfigurationFixtures.minimal
        environment["LINKERD2_PROXY_CORES_MIN"] = String(minimum)
        environment["LINKERD2_PROXY_CORES_MAX"] = maximum.map(String.init)
        environment["LINKERD2_PROXY_CORES_MAX_RATIO"] = ratio.map { String($0) }
        let workers = try ProxyConfiguration(environment: DictionaryEnvironment(environment)).workers
        #expect(workers.count(availableProcessors: available) == expected)
    }

    @Test func coresIsTheFallbackForCoresMin() throws {
        var environment: [String: String] = ConfigurationFixtures.minimal
        environment["LINKERD2_PROXY_CORES"] = "3"
        #expect(try ProxyConfiguration(environment: DictionaryEnvironment(environment)).workers.minimum == 3)
        environment["LINKERD2_PROXY_CORES_MIN"] = "2"
        #expect(try ProxyConfiguration(environment: DictionaryEnvironment(environment)).workers.minimum == 2)
    }

    @Test func problemsNameTheirVariables() {
        let problems: [ProxyConfigurationError.Problem] = [
            .missing(name: "A", reason: nil),
            .missing(name: "B", reason: "why"),
            .invalid(name: "C", value: "x\"y", reason: "no"),
            .violation(names: ["D", "E"], message: "D and E clash"),
        ]
        #expect(problems.map(\.names) == [["A"], ["B"], ["C"], ["D", "E"]])
        #expect(
            problems.map(\.description) == [
                "A must be set", "B must be set: why", #"C="x\"y" is not valid: no"#, "D and E clash",
            ])
        #expect(ProxyConfigurationError(problems: problems).description.split(separator: "\n").count == 4)
    }
}
