import LinkerdCore
import LinkerdProxyCore
import Testing

/// Environments shared by the configuration tests.
enum ConfigurationFixtures {
    static let trustAnchorsPEM = """
        -----BEGIN CERTIFICATE-----
        MIIBiDCCAS6gAwIBAgIBATAKBggqhkjOPQQDAjAcMRowGAYDVQQDExFpZGVudGl0
        eS5saW5rZXJkLmNsdXN0ZXIubG9jYWwwHhcNMjYwMTAxMDAwMDAwWhcNMjcwMTAx
        -----END CERTIFICATE-----

        """

    static let destinationName = "linkerd-destination.linkerd.serviceaccount.identity.linkerd.cluster.local"
    static let identityName = "linkerd-identity.linkerd.serviceaccount.identity.linkerd.cluster.local"
    static let localName = "web.emojivoto.serviceaccount.identity.linkerd.cluster.local"
    static let clusterNetworks = "10.0.0.0/8,100.64.0.0/10,172.16.0.0/12,192.168.0.0/16,fd00::/8"
    static let workload = "{\"ns\":\"emojivoto\", \"pod\":\"web-5f86686c4d-58p7k\"}\n"
    static let context = "{\"ns\":\"emojivoto\", \"nodeName\":\"node-1\", \"pod\":\"web-5f86686c4d-58p7k\"}\n"

    /// Only the variables the proxy cannot start without.
    static let minimal: [String: String] = [
        "LINKERD2_PROXY_DESTINATION_SVC_ADDR": "linkerd-dst-headless.linkerd.svc.cluster.local.:8086",
        "LINKERD2_PROXY_DESTINATION_SVC_NAME": destinationName,
        "LINKERD2_PROXY_POLICY_SVC_ADDR": "linkerd-policy.linkerd.svc.cluster.local.:8090",
        "LINKERD2_PROXY_POLICY_SVC_NAME": destinationName,
        "LINKERD2_PROXY_POLICY_WORKLOAD": workload,
        "LINKERD2_PROXY_IDENTITY_SVC_ADDR": "linkerd-identity-headless.linkerd.svc.cluster.local.:8080",
        "LINKERD2_PROXY_IDENTITY_SVC_NAME": identityName,
        "LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS": trustAnchorsPEM,
        "LINKERD2_PROXY_IDENTITY_LOCAL_NAME": localName,
        "LINKERD2_PROXY_IDENTITY_DIR": "/var/run/linkerd/identity/end-entity",
        "LINKERD2_PROXY_IDENTITY_TOKEN_FILE": "/var/run/secrets/tokens/linkerd-identity-token",
    ]

    /// What the injector gives a meshed pod (with the `$(…)` references expanded, as the kubelet does).
    static let injected: [String: String] = minimal.merging([
        "_pod_name": "web-5f86686c4d-58p7k",
        "_pod_ns": "emojivoto",
        "_pod_nodeName": "node-1",
        "_pod_sa": "web",
        "_l5d_ns": "linkerd",
        "_l5d_trustdomain": "cluster.local",
        "LINKERD2_PROXY_CORES": "1",
        "LINKERD2_PROXY_CORES_MIN": "1",
        "LINKERD2_PROXY_INBOUND_PORTS_REQUIRE_IDENTITY": "8443",
        "LINKERD2_PROXY_SHUTDOWN_ENDPOINT_ENABLED": "false",
        "LINKERD2_PROXY_LOG": "warn,linkerd=info,hickory=error,[{headers}]=off,[{request}]=off",
        "LINKERD2_PROXY_LOG_FORMAT": "plain",
        "LINKERD2_PROXY_DESTINATION_PROFILE_NETWORKS": clusterNetworks,
        "LINKERD2_PROXY_INBOUND_DEFAULT_POLICY": "all-unauthenticated",
        "LINKERD2_PROXY_POLICY_CLUSTER_NETWORKS": clusterNetworks,
        "LINKERD2_PROXY_CONTROL_STREAM_INITIAL_TIMEOUT": "3s",
        "LINKERD2_PROXY_CONTROL_STREAM_IDLE_TIMEOUT": "5m",
        "LINKERD2_PROXY_CONTROL_STREAM_LIFETIME": "1h",
        "LINKERD2_PROXY_INBOUND_CONNECT_TIMEOUT": "100ms",
        "LINKERD2_PROXY_OUTBOUND_CONNECT_TIMEOUT": "1000ms",
        "LINKERD2_PROXY_OUTBOUND_DISCOVERY_IDLE_TIMEOUT": "5s",
        "LINKERD2_PROXY_INBOUND_DISCOVERY_IDLE_TIMEOUT": "90s",
        "LINKERD2_PROXY_CONTROL_LISTEN_ADDR": "[::]:4190",
        "LINKERD2_PROXY_ADMIN_LISTEN_ADDR": "[::]:4191",
        "LINKERD2_PROXY_OUTBOUND_LISTEN_ADDR": "127.0.0.1:4140",
        "LINKERD2_PROXY_OUTBOUND_LISTEN_ADDRS": "127.0.0.1:4140,[::1]:4140",
        "LINKERD2_PROXY_INBOUND_LISTEN_ADDR": "[::]:4143",
        "LINKERD2_PROXY_INBOUND_IPS": "10.244.0.12,fd00:10:244::c",
        "LINKERD2_PROXY_INBOUND_PORTS": "8080,9443",
        "LINKERD2_PROXY_DESTINATION_PROFILE_SUFFIXES": "svc.cluster.local.",
        "LINKERD2_PROXY_INBOUND_ACCEPT_KEEPALIVE": "10000ms",
        "LINKERD2_PROXY_OUTBOUND_CONNECT_KEEPALIVE": "10000ms",
        "LINKERD2_PROXY_INBOUND_ACCEPT_USER_TIMEOUT": "30s",
        "LINKERD2_PROXY_OUTBOUND_CONNECT_USER_TIMEOUT": "30s",
        "LINKERD2_PROXY_INBOUND_SERVER_HTTP2_KEEP_ALIVE_INTERVAL": "10s",
        "LINKERD2_PROXY_INBOUND_SERVER_HTTP2_KEEP_ALIVE_TIMEOUT": "3s",
        "LINKERD2_PROXY_OUTBOUND_SERVER_HTTP2_KEEP_ALIVE_INTERVAL": "10s",
        "LINKERD2_PROXY_OUTBOUND_SERVER_HTTP2_KEEP_ALIVE_TIMEOUT": "3s",
        "LINKERD2_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION": "25,587,3306,4444,5432,6379,9300,11211",
        "LINKERD2_PROXY_DESTINATION_CONTEXT": context,
        "LINKERD2_PROXY_TAP_SVC_NAME": "tap.linkerd-viz.serviceaccount.identity.linkerd.cluster.local",
    ]) { _, injected in injected }

    /// `base` with `changes` applied: a nil value unsets the variable.
    static func environment(_ base: [String: String], _ changes: [String: String?]) -> DictionaryEnvironment {
        var values = base
        for (name, value) in changes {
            values[name] = value
        }
        return DictionaryEnvironment(values)
    }

    /// The problems' descriptions when `environment` is refused, or nil (with an issue recorded) when it parses.
    static func problems(
        _ environment: DictionaryEnvironment,
        sourceLocation: SourceLocation = #_sourceLocation
    ) -> [String]? {
        do {
            let configuration = try ProxyConfiguration(environment: environment)
            Issue.record("expected the environment to be refused, got \(configuration)", sourceLocation: sourceLocation)
            return nil
        } catch {
            #expect(!error.problems.isEmpty, sourceLocation: sourceLocation)
            #expect(error.description == error.problems.map(\.description).joined(separator: "\n"))
            return error.problems.map(\.description)
        }
    }

    static func ip(_ text: String) throws -> IPAddress {
        try IPAddress(parsing: text)
    }

    static func socket(_ text: String) throws -> IPSocketAddress {
        try IPSocketAddress(parsing: text)
    }

    static func name(_ text: String) throws -> TLSServerName {
        try TLSServerName(parsing: text)
    }
}

@Suite struct ConfigurationTests {
    typealias Fixtures = ConfigurationFixtures

    @Test func theInjectorsEnvironmentParses() throws {
        let configuration = try ProxyConfiguration(environment: DictionaryEnvironment(Fixtures.injected))

        let listeners = configuration.listeners
        #expect(listeners.inbound == IPSocketAddress(ip: .v6(0), port: 4143))
        #expect(listeners.outbound == [try Fixtures.socket("127.0.0.1:4140"), IPSocketAddress(ip: .v6(1), port: 4140)])
        #expect(listeners.admin == IPSocketAddress(ip: .v6(0), port: 4191))
        #expect(listeners.control?.address == IPSocketAddress(ip: .v6(0), port: 4190))
        #expect(listeners.control?.clientName.name == "tap.linkerd-viz.serviceaccount.identity.linkerd.cluster.local")

        let controlPlane = configuration.controlPlane
        #expect(controlPlane.destination.host == .name("linkerd-dst-headless.linkerd.svc.cluster.local."))
        #expect(controlPlane.destination.port == 8086)
        #expect(controlPlane.destination.serverName == (try Fixtures.name(Fixtures.destinationName)))
        #expect(!controlPlane.destination.isLoopback)
        #expect(controlPlane.destinationContext == Fixtures.context)
        #expect(controlPlane.policy.description == "linkerd-policy.linkerd.svc.cluster.local.:8090")
        #expect(controlPlane.policy.serverName == (try Fixtures.name(Fixtures.destinationName)))
        #expect(controlPlane.policyWorkload == Fixtures.workload)
        #expect(controlPlane.identity.description == "linkerd-identity-headless.linkerd.svc.cluster.local.:8080")
        #expect(controlPlane.identity.serverName?.name == Fixtures.identityName)
        #expect(controlPlane.streamLimits.initialTimeout == .seconds(3))
        #expect(controlPlane.streamLimits.idleTimeout == .seconds(300))
        #expect(controlPlane.streamLimits.lifetime == .seconds(3600))
        #expect(controlPlane.profileSuffixes == [.name("svc.cluster.local")])
        #expect(
            controlPlane.profileNetworks.map(\.description)
                == Fixtures.clusterNetworks.split(separator: ",").map(String.init))

        let identity = configuration.identity
        #expect(identity.trustAnchorsPEM == Fixtures.trustAnchorsPEM)
        #expect(identity.localName.name == Fixtures.localName)
        #expect(identity.directory == "/var/run/linkerd/identity/end-entity")
        #expect(identity.tokenFile == "/var/run/secrets/tokens/linkerd-identity-token")
        #expect(identity.minRefresh == .seconds(10))
        #expect(identity.maxRefresh == .seconds(86_400))

        let inbound = configuration.inbound
        #expect(inbound.accept.keepalive == .seconds(10))
        #expect(inbound.accept.userTimeout == .seconds(30))
        #expect(inbound.connect.timeout == .milliseconds(100))
        #expect(inbound.connect.keepalive == nil)
        #expect(inbound.discoveryIdleTimeout == .seconds(90))
        #expect(inbound.http2Server.keepAlive?.interval == .seconds(10))
        #expect(inbound.http2Server.keepAlive?.timeout == .seconds(3))
        #expect(inbound.defaultPolicy == .allUnauthenticated)
        #expect(inbound.clusterNetworks == controlPlane.profileNetworks)
        #expect(inbound.ports == [PortRange(8080), PortRange(9443)])
        #expect(inbound.opaquePorts.description == "25,587,3306,4444,5432,6379,9300,11211")
        #expect(inbound.opaquePorts.contains(3306) && !inbound.opaquePorts.contains(8080))
        #expect(inbound.allowedIPs == [.v4(0x0AF4_000C), try Fixtures.ip("fd00:10:244::c")])

        let outbound = configuration.outbound
        #expect(outbound.accept.keepalive == nil)
        #expect(outbound.connect.timeout == .seconds(1))
        #expect(outbound.connect.keepalive == .seconds(10))
        #expect(outbound.connect.userTimeout == .seconds(30))
        #expect(outbound.discoveryIdleTimeout == .seconds(5))
        #expect(outbound.http2Server.keepAlive?.interval == .seconds(10))
        #expect(outbound.http2Server.keepAlive?.timeout == .seconds(3))

        #expect(!configuration.admin.shutdownEndpointEnabled)
        #expect(
            configuration.logging.filter.description
                == "warn,linkerd=info,hickory=error,[{headers}]=off,[{request}]=off")
        #expect(configuration.logging.format == .plain)
        #expect(configuration.logging.isEnabled)
        #expect(configuration.workers.minimum == 1)
    }

    @Test func aMinimalEnvironmentGetsEveryDefault() throws {
        let configuration = try ProxyConfiguration(environment: DictionaryEnvironment(Fixtures.minimal))

        let listeners = configuration.listeners
        #expect(listeners.inbound.description == "0.0.0.0:4143")
        #expect(listeners.outbound.map(\.description) == ["127.0.0.1:4140"])
        #expect(listeners.admin.description == "127.0.0.1:4191")
        #expect(listeners.control == nil)

        let controlPlane = configuration.controlPlane
        #expect(controlPlane.destinationContext == "")
        #expect(controlPlane.streamLimits.initialTimeout == nil)
        #expect(controlPlane.streamLimits.idleTimeout == nil)
        #expect(controlPlane.streamLimits.lifetime == nil)
        #expect(controlPlane.profileSuffixes.map(\.description) == ["svc.cluster.local."])
        #expect(controlPlane.profileNetworks.isEmpty)

        #expect(configuration.identity.minRefresh == .seconds(10))
        #expect(configuration.identity.maxRefresh == .seconds(24 * 3600))

        let inbound = configuration.inbound
        #expect(inbound.detectTimeout == .seconds(10))
        #expect(inbound.accept.keepalive == nil)
        #expect(inbound.accept.userTimeout == nil)
        #expect(inbound.accept.listenBacklog == nil)
        #expect(inbound.connect.timeout == .milliseconds(300))
        #expect(inbound.connect.keepalive == nil)
        #expect(inbound.connect.userTimeout == nil)
        #expect(inbound.connect.backoff.min == .milliseconds(100))
        #expect(inbound.connect.backoff.max == .seconds(10))
        #expect(inbound.connect.backoff.jitter == 0.1)
        #expect(inbound.httpQueue.capacity == 10_000)
        #expect(inbound.httpQueue.failfastTimeout == .seconds(1))
        #expect(inbound.maxInFlightRequests == 100_000)
        #expect(inbound.http1Pool.maxIdlePerEndpoint == 10_000)
        #expect(inbound.http1Pool.idleTimeout == .seconds(3))
        #expect(inbound.discoveryIdleTimeout == .seconds(90))
        #expect(inbound.defaultPolicy == .allUnauthenticated)
        #expect(inbound.clusterNetworks.isEmpty)
        #expect(inbound.ports.isEmpty)
        #expect(inbound.opaquePorts.isEmpty)
        #expect(inbound.allowedIPs.isEmpty)
        #expect(inbound.profileInitialTimeout == .milliseconds(500))
        #expect(!inbound.authorityLabels)

        let outbound = configuration.outbound
        #expect(outbound.detectTimeout == .seconds(10))
        #expect(outbound.connect.timeout == .seconds(1))
        #expect(outbound.connect.backoff.min == .milliseconds(100))
        #expect(outbound.connect.backoff.max == .seconds(60))
        #expect(outbound.connect.backoff.jitter == 0.1)
        #expect(outbound.httpQueue.capacity == 10_000)
        #expect(outbound.httpQueue.failfastTimeout == .seconds(3))
        #expect(outbound.tcpQueue.capacity == 10_000)
        #expect(outbound.tcpQueue.failfastTimeout == .seconds(3))
        #expect(outbound.maxInFlightRequests == 100_000)
        #expect(outbound.http1Pool.maxIdlePerEndpoint == 10_000)
        #expect(outbound.http1Pool.idleTimeout == .seconds(3))
        #expect(outbound.discoveryIdleTimeout == .seconds(5))
        #expect(!outbound.ingressMode)
        #expect(!outbound.disableInformationalHeaders)
        #expect(!outbound.hostnameLabels)

        for server in [inbound.http2Server, outbound.http2Server] {
            #expect(server.keepAlive == nil)
            #expect(server.flowControl == .fixed(configuration.http2Client))
            #expect(server.maxConcurrentStreams == nil)
            #expect(server.maxFrameSize == nil)
            #expect(server.maxHeaderListSize == nil)
            #expect(server.maxPendingAcceptResetStreams == nil)
            #expect(server.maxSendBufferSize == nil)
        }
        #expect(configuration.http2Client.initialStreamWindowSize == 65_535)
        #expect(configuration.http2Client.initialConnectionWindowSize == 1_048_576)

        #expect(configuration.admin.metricsRetainIdle == .seconds(600))
        #expect(!configuration.admin.shutdownEndpointEnabled)
        #expect(configuration.admin.shutdownGracePeriod == .seconds(120))

        #expect(configuration.logging.filter == .proxyDefault)
        #expect(configuration.logging.format == .plain)
        #expect(configuration.logging.accessLog == nil)

        #expect(configuration.workers.minimum == 1)
        #expect(configuration.workers.maximum == nil)
        #expect(configuration.workers.maximumRatio == nil)
    }

    @Test func exitCodeIsEXUsage() {
        #expect(ProxyConfiguration.exitCode == 64)
    }

    @Test func anEmptyEnvironmentNamesEveryRequiredVariable() {
        #expect(
            Fixtures.problems([:]) == [
                "LINKERD2_PROXY_DESTINATION_SVC_ADDR must be set: no destination service configured",
                "LINKERD2_PROXY_POLICY_SVC_ADDR must be set: no policy service configured",
                "LINKERD2_PROXY_POLICY_WORKLOAD must be set",
                "LINKERD2_PROXY_IDENTITY_SVC_ADDR must be set: no identity service configured",
                "LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS must be set",
                "LINKERD2_PROXY_IDENTITY_LOCAL_NAME must be set: it names the proxy's identity (or set "
                    + "LINKERD2_PROXY_IDENTITY_SERVER_ID and LINKERD2_PROXY_IDENTITY_SERVER_NAME to one name)",
                "LINKERD2_PROXY_IDENTITY_DIR must be set",
                "LINKERD2_PROXY_IDENTITY_TOKEN_FILE must be set",
            ]
        )
    }

    @Test func everyProblemIsReportedAtOnce() {
        let environment = Fixtures.environment(
            Fixtures.minimal,
            [
                "LINKERD2_PROXY_INBOUND_LISTEN_ADDR": "0.0.0.0",
                "LINKERD2_PROXY_POLICY_WORKLOAD": nil,
                "LINKERD2_PROXY_IDENTITY_DISABLED": "1",
                "LINKERD2_PROXY_INBOUND_CONNECT_TIMEOUT": "1.5s",
                "LINKERD2_PROXY_INGRESS_MODE": "yes",
                "LINKERD2_PROXY_LOG_FORMAT": "xml",
            ]
        )
        #expect(
            Fixtures.problems(environment) == [
                #"LINKERD2_PROXY_INBOUND_LISTEN_ADDR="0.0.0.0" is not valid: there is no ":" before the port, as in "#
                    + "10.0.0.1:8080 or [fd00::1]:8080",
                "LINKERD2_PROXY_POLICY_WORKLOAD must be set",
                "LINKERD2_PROXY_IDENTITY_DISABLED is no longer supported. Identity is must be enabled.",
                #"LINKERD2_PROXY_INBOUND_CONNECT_TIMEOUT="1.5s" is not valid: it has a fraction; durations are whole "#
                    + "numbers, so use a smaller unit (1500ms, not 1.5s)",
                #"LINKERD2_PROXY_INGRESS_MODE="yes" is not valid: expected "true" or "false""#,
            ]
        )
    }

    @Test(arguments: [
        ("LINKERD2_PROXY_DESTINATION_SVC", "127.0.0.1:8086"),
        ("LINKERD2_PROXY_POLICY_SVC", "[::1]:8090"),
        ("LINKERD2_PROXY_IDENTITY_SVC", "localhost:8080"),
        ("LINKERD2_PROXY_IDENTITY_SVC", "LOCALHOST.:8080"),
        ("LINKERD2_PROXY_DESTINATION_SVC", "127.255.0.9:8086"),
    ])
    func loopbackControlPlaneAddressesNeedNoName(prefix: String, address: String) throws {
        let environment = Fixtures.environment(Fixtures.minimal, ["\(prefix)_ADDR": address, "\(prefix)_NAME": nil])
        let controlPlane = try ProxyConfiguration(environment: environment).controlPlane
        let parsed = [
            "LINKERD2_PROXY_DESTINATION_SVC": controlPlane.destination,
            "LINKERD2_PROXY_POLICY_SVC": controlPlane.policy,
            "LINKERD2_PROXY_IDENTITY_SVC": controlPlane.identity,
        ][prefix]
        let loopback = try #require(parsed)
        #expect(loopback.isLoopback)
        #expect(loopback.serverName == nil)
        #expect(loopback.description == address)
    }

    @Test func aLoopbackAddressIgnoresItsName() throws {
        let environment = Fixtures.environment(
            Fixtures.minimal, ["LINKERD2_PROXY_DESTINATION_SVC_ADDR": "127.0.0.1:8086"])
        let destination = try ProxyConfiguration(environment: environment).controlPlane.destination
        #expect(destination.host == .ip(.v4(0x7F00_0001)))
        #expect(destination.serverName == nil)
    }

    @Test(arguments: [
        ("LINKERD2_PROXY_DESTINATION_SVC", "10.96.0.10:8086"),
        ("LINKERD2_PROXY_POLICY_SVC", "linkerd-policy.linkerd.svc.cluster.local.:8090"),
        ("LINKERD2_PROXY_IDENTITY_SVC", "[fd00::10]:8080"),
    ])
    func otherControlPlaneAddressesNeedAName(prefix: String, address: String) {
        let environment = Fixtures.environment(Fixtures.minimal, ["\(prefix)_ADDR": address, "\(prefix)_NAME": nil])
        #expect(
            Fixtures.problems(environment) == [
                "\(prefix)_NAME must be set: \(prefix)_ADDR=\"\(address)\" is not a loopback address, so the proxy "
                    + "needs the name the server must prove"
            ]
        )
    }

    @Test func serverIDAndServerNameMayReplaceTheLocalName() throws {
        let environment = Fixtures.environment(
            Fixtures.minimal,
            [
                "LINKERD2_PROXY_IDENTITY_LOCAL_NAME": nil,
                "LINKERD2_PROXY_IDENTITY_SERVER_ID": "Web.emojivoto.serviceaccount.identity.linkerd.cluster.local.",
                "LINKERD2_PROXY_IDENTITY_SERVER_NAME": Fixtures.localName,
            ]
        )
        #expect(try ProxyConfiguration(environment: environment).identity.localName.name == Fixtures.localName)
    }

    @Test func theLocalNameWinsOverServerIDAndName() throws {
        let environment = Fixtures.environment(
            Fixtures.minimal,
            [
                "LINKERD2_PROXY_IDENTITY_SERVER_ID": "a.example.com",
                "LINKERD2_PROXY_IDENTITY_SERVER_NAME": "b.example.com",
            ]
        )
        #expect(try ProxyConfiguration(environment: environment).identity.localName.name == Fixtures.localName)
    }

    @Test(arguments: [
        (
            [
                "LINKERD2_PROXY_IDENTITY_SERVER_ID": "a.example.com",
                "LINKERD2_PROXY_IDENTITY_SERVER_NAME": "b.example.com",
            ],
            "linkerd identity requires a TLS Id and server name to be the same: "
                + #"LINKERD2_PROXY_IDENTITY_SERVER_ID="a.example.com" differs from "#
                + #"LINKERD2_PROXY_IDENTITY_SERVER_NAME="b.example.com""#
        ),
        (
            ["LINKERD2_PROXY_IDENTITY_SERVER_ID": "a.example.com"],
            "LINKERD2_PROXY_IDENTITY_SERVER_NAME must be set: LINKERD2_PROXY_IDENTITY_SERVER_ID is set, and the two "
                + "must be equal"
        ),
        (
            ["LINKERD2_PROXY_IDENTITY_SERVER_NAME": "b.example.com"],
            "LINKERD2_PROXY_IDENTITY_SERVER_ID must be set: LINKERD2_PROXY_IDENTITY_SERVER_NAME is set, and the two "
                + "must be equal"
        ),
    ])
    func serverIDAndServerNameMustBeEqualAndTogether(changes: [String: String], message: String) {
        var values = Fixtures.minimal.merging(changes) { _, change in change }
        values["LINKERD2_PROXY_IDENTITY_LOCAL_NAME"] = nil
        #expect(Fixtures.problems(DictionaryEnvironment(values)) == [message])
    }

    @Test func identityDisabledMayBeEmpty() throws {
        let environment = Fixtures.environment(Fixtures.minimal, ["LINKERD2_PROXY_IDENTITY_DISABLED": ""])
        #expect(throws: Never.self) { try ProxyConfiguration(environment: environment) }
    }

    @Test func emptyControlStreamLimitsAreUnset() throws {
        let environment = Fixtures.environment(
            Fixtures.injected,
            [
                "LINKERD2_PROXY_CONTROL_STREAM_INITIAL_TIMEOUT": "",
                "LINKERD2_PROXY_CONTROL_STREAM_IDLE_TIMEOUT": "",
                "LINKERD2_PROXY_CONTROL_STREAM_LIFETIME": "2h",
            ]
        )
        let limits = try ProxyConfiguration(environment: environment).controlPlane.streamLimits
        #expect(limits.initialTimeout == nil)
        #expect(limits.idleTimeout == nil)
        #expect(limits.lifetime == .seconds(7200))
    }

    @Test func theLegacyOutboundAddressIsUsedWithoutTheList() throws {
        let environment = Fixtures.environment(
            Fixtures.minimal, ["LINKERD2_PROXY_OUTBOUND_LISTEN_ADDR": "0.0.0.0:5140"])
        #expect(
            try ProxyConfiguration(environment: environment).listeners.outbound.map(\.description) == ["0.0.0.0:5140"])
    }

    @Test func informationalHeadersFollowIngressModeUnlessSet() throws {
        let ingress = Fixtures.environment(Fixtures.minimal, ["LINKERD2_PROXY_INGRESS_MODE": "true"])
        let outbound = try ProxyConfiguration(environment: ingress).outbound
        #expect(outbound.ingressMode)
        #expect(outbound.disableInformationalHeaders)

        let overridden = Fixtures.environment(
            Fixtures.minimal,
            ["LINKERD2_PROXY_INGRESS_MODE": "true", "LINKERD2_PROXY_OUTBOUND_DISABLE_INFORMATIONAL_HEADERS": "false"]
        )
        #expect(try !ProxyConfiguration(environment: overridden).outbound.disableInformationalHeaders)
    }

    @Test func clusterPoliciesNeedClusterNetworks() throws {
        let environment = Fixtures.environment(
            Fixtures.minimal,
            [
                "LINKERD2_PROXY_INBOUND_DEFAULT_POLICY": "cluster-authenticated",
                "LINKERD2_PROXY_POLICY_CLUSTER_NETWORKS": "10.0.0.0/8",
            ]
        )
        let inbound = try ProxyConfiguration(environment: environment).inbound
        #expect(inbound.defaultPolicy == .clusterAuthenticated)
        #expect(inbound.clusterNetworks.map(\.description) == ["10.0.0.0/8"])
    }

    @Test func optionalSettingsAreRead() throws {
        let environment = Fixtures.environment(
            Fixtures.minimal,
            [
                "LINKERD2_PROXY_OUTBOUND_CONNECT_EXP_BACKOFF_MIN": "50ms",
                "LINKERD2_PROXY_OUTBOUND_CONNECT_EXP_BACKOFF_MAX": "5s",
                "LINKERD2_PROXY_INBOUND_CONNECT_EXP_BACKOFF_MIN": "0",
                "LINKERD2_PROXY_INBOUND_CONNECT_EXP_BACKOFF_MAX": "1m",
                "LINKERD2_PROXY_INBOUND_CONNECT_EXP_BACKOFF_JITTER": "0.5",
                "LINKERD2_PROXY_OUTBOUND_TCP_LISTEN_BACKLOG": "1024",
                "LINKERD2_PROXY_OUTBOUND_SERVER_HTTP2_ADAPTIVE_FLOW_CONTROL": "true",
                "LINKERD2_PROXY_INBOUND_SERVER_HTTP2_INITIAL_STREAM_WINDOW_SIZE": "1",
                "LINKERD2_PROXY_INBOUND_SERVER_HTTP2_INITIAL_CONNECTION_WINDOW_SIZE": "2",
                "LINKERD2_PROXY_INBOUND_SERVER_HTTP2_MAX_CONCURRENT_STREAMS": "3",
                "LINKERD2_PROXY_INBOUND_SERVER_HTTP2_MAX_FRAME_SIZE": "16384",
                "LINKERD2_PROXY_INBOUND_SERVER_HTTP2_MAX_HEADER_LIST_SIZE": "5",
                "LINKERD2_PROXY_INBOUND_SERVER_HTTP2_MAX_PENDING_ACCEPT_RESET_STREAMS": "6",
                "LINKERD2_PROXY_INBOUND_SERVER_HTTP2_MAX_SEND_BUF_SIZE": "7",
                "LINKERD2_PROXY_HTTP2_INITIAL_STREAM_WINDOW_SIZE": "131072",
                "LINKERD2_PROXY_MAX_IDLE_CONNS_PER_ENDPOINT": "0",
                "LINKERD2_PROXY_OUTBOUND_MAX_IDLE_CONNS_PER_ENDPOINT": "12",
                "LINKERD2_PROXY_INBOUND_METRICS_AUTHORITY_LABELS": "unsafe",
                "LINKERD2_PROXY_OUTBOUND_METRICS_HOSTNAME_LABELS": "true",
                "LINKERD2_PROXY_DESTINATION_PROFILE_SUFFIXES": " . , Example.COM",
                "LINKERD2_PROXY_INBOUND_PORTS": "1-2, ,42,",
                "LINKERD2_PROXY_INBOUND_DETECT_TIMEOUT": " 365d ",
                "LINKERD2_PROXY_SHUTDOWN_ENDPOINT_ENABLED": "true",
                "LINKERD2_PROXY_LOG": "OFF",
                "LINKERD2_PROXY_LOG_FORMAT": "JSON",
                "LINKERD2_PROXY_ACCESS_LOG": "apache",
                "LINKERD2_PROXY_CORES_MIN": "2",
                "LINKERD2_PROXY_CORES_MAX": "4",
                "LINKERD2_PROXY_CORES_MAX_RATIO": "0.5",
            ]
        )
        let configuration = try ProxyConfiguration(environment: environment)
        let inbound = configuration.inbound
        let outbound = configuration.outbound
        #expect(outbound.connect.backoff.min == .milliseconds(50))
        #expect(outbound.connect.backoff.max == .seconds(5))
        #expect(outbound.connect.backoff.jitter == 0)
        #expect(inbound.connect.backoff.min == .zero)
        #expect(inbound.connect.backoff.max == .seconds(60))
        #expect(inbound.connect.backoff.jitter == 0.5)
        #expect(outbound.accept.listenBacklog == 1024)
        #expect(outbound.http2Server.flowControl == .adaptive)
        let windows = try #require(
            {
                if case .fixed(let windows) = inbound.http2Server.flowControl { windows } else { nil }
            }()
        )
        #expect(windows.initialStreamWindowSize == 1)
        #expect(windows.initialConnectionWindowSize == 2)
        #expect(inbound.http2Server.maxConcurrentStreams == 3)
        #expect(inbound.http2Server.maxFrameSize == 16_384)
        #expect(inbound.http2Server.maxHeaderListSize == 5)
        #expect(inbound.http2Server.maxPendingAcceptResetStreams == 6)
        #expect(inbound.http2Server.maxSendBufferSize == 7)
        #expect(configuration.http2Client.initialStreamWindowSize == 131_072)
        #expect(configuration.http2Client.initialConnectionWindowSize == 1_048_576)
        #expect(inbound.http1Pool.maxIdlePerEndpoint == 0)
        #expect(outbound.http1Pool.maxIdlePerEndpoint == 12)
        #expect(inbound.authorityLabels)
        #expect(outbound.hostnameLabels)
        #expect(configuration.controlPlane.profileSuffixes == [.root, .name("example.com")])
        #expect(inbound.ports == [PortRange(1...2), PortRange(42)])
        #expect(inbound.detectTimeout == .seconds(365 * 86_400))
        #expect(configuration.admin.shutdownEndpointEnabled)
        #expect(!configuration.logging.isEnabled)
        #expect(configuration.logging.format == .json)
        #expect(configuration.logging.accessLog == .apache)
        #expect(configuration.workers.minimum == 2)
        #expect(configuration.workers.maximum == 4)
        #expect(configuration.workers.maximumRatio == 0.5)
    }

    @Test func anEmptySuffixListAllowsNoNames() throws {
        let environment = Fixtures.environment(Fixtures.minimal, ["LINKERD2_PROXY_DESTINATION_PROFILE_SUFFIXES": ""])
        #expect(try ProxyConfiguration(environment: environment).controlPlane.profileSuffixes.isEmpty)
    }
}
