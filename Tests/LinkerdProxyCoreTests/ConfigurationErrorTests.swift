import LinkerdCore
import LinkerdProxyCore
import Testing

/// A change to the minimal environment and the exact problems it must cause.
struct RefusedEnvironment: Sendable, CustomTestStringConvertible {
    /// Variables to set; a nil value unsets the variable.
    let changes: [String: String?]
    /// The problems' descriptions, in order.
    let problems: [String]

    /// One variable set to a value that is refused with `reason`, in the `NAME="value" is not valid: reason` shape.
    static func invalid(_ name: String, _ value: String, _ reason: String) -> RefusedEnvironment {
        RefusedEnvironment(
            changes: [name: value],
            problems: [EnvironmentError.invalid(name: name, value: value, reason: reason).description]
        )
    }

    /// Several variables changed, refused with `problems`.
    static func refused(_ changes: [String: String?], _ problems: String...) -> RefusedEnvironment {
        RefusedEnvironment(changes: changes, problems: problems)
    }

    var testDescription: String {
        changes.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.map(\.debugDescription) ?? "(unset)")" }
            .joined(separator: " ")
    }
}

@Suite struct ConfigurationErrorTests {
    typealias Fixtures = ConfigurationFixtures

    static let durationForm = "expected a whole number followed by ms, s, m, h or d, such as 10s"

    static let durations: [RefusedEnvironment] = [
        .invalid(
            "LINKERD2_PROXY_INBOUND_CONNECT_TIMEOUT",
            "1.5s",
            "it has a fraction; durations are whole numbers, so use a smaller unit (1500ms, not 1.5s)"
        ),
        .invalid(
            "LINKERD2_PROXY_OUTBOUND_CONNECT_TIMEOUT",
            ".5s",
            durationForm
        ),
        .invalid(
            "LINKERD2_PROXY_INBOUND_DETECT_TIMEOUT",
            "1 ms",
            "it has a space before the unit; write them together, as in 10s"
        ),
        .invalid("LINKERD2_PROXY_OUTBOUND_DETECT_TIMEOUT", "12y", #"unknown unit "y"; expected ms, s, m, h or d"#),
        .invalid("LINKERD2_PROXY_SHUTDOWN_GRACE_PERIOD", "10S", #"unknown unit "S"; expected ms, s, m, h or d"#),
        .invalid("LINKERD2_PROXY_METRICS_RETAIN_IDLE", "500us", #"unknown unit "us"; expected ms, s, m, h or d"#),
        .invalid("LINKERD2_PROXY_IDENTITY_MIN_REFRESH", "1h30m", #"unknown unit "h30m"; expected ms, s, m, h or d"#),
        .invalid(
            "LINKERD2_PROXY_IDENTITY_MAX_REFRESH",
            "5",
            "the number 5 has no unit; expected ms, s, m, h or d after it (only 0 may omit it)"
        ),
        .invalid("LINKERD2_PROXY_INBOUND_ACCEPT_KEEPALIVE", "", "it is empty; \(durationForm)"),
        .invalid("LINKERD2_PROXY_OUTBOUND_CONNECT_USER_TIMEOUT", "-1s", durationForm),
        .invalid(
            "LINKERD2_PROXY_DESTINATION_PROFILE_INITIAL_TIMEOUT",
            "99999999999999999999s",
            "the number 99999999999999999999 is too large"
        ),
        .invalid("LINKERD2_PROXY_INBOUND_DISCOVERY_IDLE_TIMEOUT", "9999999999999999d", "it is too long to represent"),
        .invalid(
            "LINKERD2_PROXY_CONTROL_STREAM_LIFETIME",
            "1 h",
            "it has a space before the unit; write them together, as in 10s"
        ),
    ]

    static let booleans: [RefusedEnvironment] = ["True", "TRUE", "yes", "1", "", " true"].map {
        .invalid("LINKERD2_PROXY_SHUTDOWN_ENDPOINT_ENABLED", $0, #"expected "true" or "false""#)
    }

    static let lists: [RefusedEnvironment] = [
        .invalid(
            "LINKERD2_PROXY_INBOUND_PORTS",
            "80,http",
            #"entry 2 "http": the port "http" is not a decimal number"#
        ),
        .invalid("LINKERD2_PROXY_INBOUND_PORTS", "70000", #"entry 1 "70000": the port 70000 is greater than 65535"#),
        .invalid(
            "LINKERD2_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION",
            "80-70",
            #"entry 1 "80-70": the start 80 is greater than the end 70"#
        ),
        .invalid(
            "LINKERD2_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION",
            "25, 587-",
            #"entry 2 "587-": the end is missing; expected a port such as 80 or a range such as 1000-2000"#
        ),
        .invalid(
            "LINKERD2_PROXY_DESTINATION_PROFILE_NETWORKS",
            "10.0.0.0/33",
            #"entry 1 "10.0.0.0/33": the prefix length 33 is greater than 32"#
        ),
        .invalid(
            "LINKERD2_PROXY_DESTINATION_PROFILE_NETWORKS",
            "10.0.0.0/8,10.1.0.0",
            #"entry 2 "10.1.0.0": the prefix length is missing, as in 10.0.0.0/8"#
        ),
        .invalid(
            "LINKERD2_PROXY_POLICY_CLUSTER_NETWORKS",
            "10.0.0.0/8,fd00::/129",
            #"entry 2 "fd00::/129": the prefix length 129 is greater than 128"#
        ),
        .invalid(
            "LINKERD2_PROXY_INBOUND_IPS",
            "10.0.0.256",
            #"entry 1 "10.0.0.256": the part 256 is greater than 255"#
        ),
        .invalid(
            "LINKERD2_PROXY_INBOUND_IPS",
            "10.0.0.1,10.0.1.1/24",
            #"entry 2 "10.0.1.1/24": the part "1/24" is not a decimal number"#
        ),
        .invalid(
            "LINKERD2_PROXY_DESTINATION_PROFILE_SUFFIXES",
            "svc.cluster.local.,a b",
            #"entry 2 "a b": it contains " ", but a DNS name has only ASCII letters, digits, "-" and ".""#
        ),
    ]

    static let addresses: [RefusedEnvironment] = [
        .invalid("LINKERD2_PROXY_INBOUND_LISTEN_ADDR", "localhost:4143", #"the host "localhost" is not an IP address"#),
        .invalid(
            "LINKERD2_PROXY_INBOUND_LISTEN_ADDR",
            "10.0.0:4143",
            #"the host "10.0.0" is not an IP address: it has 3 parts, but an IPv4 address such as 10.0.0.1 has 4"#
        ),
        .invalid(
            "LINKERD2_PROXY_ADMIN_LISTEN_ADDR",
            ":4191",
            "the IP address before the port is missing, as in 0.0.0.0:8080"
        ),
        .invalid(
            "LINKERD2_PROXY_ADMIN_LISTEN_ADDR",
            "::1:4191",
            "an IPv6 address must be written in brackets, as in [fd00::1]:8080"
        ),
        .invalid(
            "LINKERD2_PROXY_CONTROL_LISTEN_ADDR",
            "[::1:4190",
            #"the brackets around the host "[::1" do not match, as in [fd00::1]:8080"#
        ),
        .invalid(
            "LINKERD2_PROXY_CONTROL_LISTEN_ADDR",
            "0.0.0.0:65536",
            #"the port "65536" is not a number from 0 to 65535"#
        ),
        .invalid(
            "LINKERD2_PROXY_OUTBOUND_LISTEN_ADDR",
            "",
            #"there is no ":" before the port, as in 10.0.0.1:8080 or [fd00::1]:8080"#
        ),
        .invalid(
            "LINKERD2_PROXY_OUTBOUND_LISTEN_ADDRS",
            "127.0.0.1:4140,[::1]:4140,10.0.0.1:4140",
            "only two addresses are supported"
        ),
        .invalid(
            "LINKERD2_PROXY_OUTBOUND_LISTEN_ADDRS",
            "127.0.0.1:4140,localhost:4140",
            #"entry 2 "localhost:4140": the host "localhost" is not an IP address"#
        ),
        .invalid("LINKERD2_PROXY_OUTBOUND_LISTEN_ADDRS", " , ", "it holds no address"),
        .invalid(
            "LINKERD2_PROXY_DESTINATION_SVC_ADDR",
            "linkerd-dst-headless",
            #"there is no ":" before the port, as in 10.0.0.1:8080 or [fd00::1]:8080"#
        ),
        .invalid(
            "LINKERD2_PROXY_DESTINATION_SVC_ADDR",
            "linkerd_dst:8086",
            #"the host "linkerd_dst" is neither an IP address nor a DNS name: it contains "_", but a DNS name has "#
                + #"only ASCII letters, digits, "-" and ".""#
        ),
        .invalid(
            "LINKERD2_PROXY_POLICY_SVC_ADDR",
            "linkerd-policy:grpc",
            #"the port "grpc" is not a number from 0 to 65535"#
        ),
        .invalid(
            "LINKERD2_PROXY_IDENTITY_SVC_ADDR",
            "10.0.0.256:8080",
            #"the host "10.0.0.256" is not an IP address: the part 256 is greater than 255"#
        ),
    ]

    static let names: [RefusedEnvironment] = [
        .invalid(
            "LINKERD2_PROXY_POLICY_SVC_NAME",
            "Bad_Name.linkerd",
            #"it contains "_", but a DNS name has only ASCII letters, digits, "-" and ".""#
        ),
        .invalid(
            "LINKERD2_PROXY_IDENTITY_SVC_NAME",
            "spiffe://cluster.local/ns/linkerd/sa/linkerd-identity",
            "URI identities such as spiffe:// need SPIRE, which is not supported; expected a DNS name"
        ),
        .invalid("LINKERD2_PROXY_IDENTITY_LOCAL_NAME", "web..emojivoto", "it has an empty label"),
        .invalid("LINKERD2_PROXY_IDENTITY_LOCAL_NAME", "", "it is empty"),
        .invalid(
            "LINKERD2_PROXY_IDENTITY_LOCAL_NAME",
            "10.0.0.1",
            "it is made of digits and dots only, which is not a DNS name"
        ),
        .invalid("LINKERD2_PROXY_TAP_SVC_NAME", "-tap.linkerd-viz", #"the label "-tap" starts or ends with "-""#),
        .invalid(
            "LINKERD2_PROXY_DESTINATION_SVC_NAME",
            String(repeating: "a", count: 64) + ".linkerd",
            "the label \"\(String(repeating: "a", count: 64))\" is 64 characters long, but at most 63 are allowed"
        ),
    ]

    static let identity: [RefusedEnvironment] = [
        .refused(
            ["LINKERD2_PROXY_IDENTITY_DISABLED": "true"],
            "LINKERD2_PROXY_IDENTITY_DISABLED is no longer supported. Identity is must be enabled."
        ),
        .invalid("LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS", "", "it is empty"),
        .invalid(
            "LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS",
            "/var/run/linkerd/identity/trust-roots/ca-bundle.crt",
            "it holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        ),
        .invalid("LINKERD2_PROXY_IDENTITY_DIR", "", "it is empty"),
        .invalid("LINKERD2_PROXY_IDENTITY_TOKEN_FILE", "", "it is empty"),
        .invalid("LINKERD2_PROXY_POLICY_WORKLOAD", "", "it is empty"),
        .refused(
            ["LINKERD2_PROXY_IDENTITY_MIN_REFRESH": "48h"],
            #"LINKERD2_PROXY_IDENTITY_MIN_REFRESH="48h" must not be longer than LINKERD2_PROXY_IDENTITY_MAX_REFRESH"#
        ),
    ]

    static let rules: [RefusedEnvironment] = [
        .refused(
            [
                "LINKERD2_PROXY_CONTROL_STREAM_INITIAL_TIMEOUT": "10m",
                "LINKERD2_PROXY_CONTROL_STREAM_IDLE_TIMEOUT": "5m",
            ],
            #"LINKERD2_PROXY_CONTROL_STREAM_INITIAL_TIMEOUT="10m" must not be longer than "#
                + #"LINKERD2_PROXY_CONTROL_STREAM_IDLE_TIMEOUT="5m""#
        ),
        .refused(
            [
                "LINKERD2_PROXY_CONTROL_STREAM_INITIAL_TIMEOUT": "3s",
                "LINKERD2_PROXY_CONTROL_STREAM_IDLE_TIMEOUT": "",
                "LINKERD2_PROXY_CONTROL_STREAM_LIFETIME": "1s",
            ],
            #"LINKERD2_PROXY_CONTROL_STREAM_INITIAL_TIMEOUT="3s" must not be longer than "#
                + #"LINKERD2_PROXY_CONTROL_STREAM_LIFETIME="1s""#
        ),
        .refused(
            [
                "LINKERD2_PROXY_CONTROL_STREAM_INITIAL_TIMEOUT": "10m",
                "LINKERD2_PROXY_CONTROL_STREAM_IDLE_TIMEOUT": "5m",
                "LINKERD2_PROXY_CONTROL_STREAM_LIFETIME": "1m",
            ],
            #"LINKERD2_PROXY_CONTROL_STREAM_INITIAL_TIMEOUT="10m" must not be longer than "#
                + #"LINKERD2_PROXY_CONTROL_STREAM_IDLE_TIMEOUT="5m""#,
            #"LINKERD2_PROXY_CONTROL_STREAM_INITIAL_TIMEOUT="10m" must not be longer than "#
                + #"LINKERD2_PROXY_CONTROL_STREAM_LIFETIME="1m""#,
            #"LINKERD2_PROXY_CONTROL_STREAM_IDLE_TIMEOUT="5m" must not be longer than "#
                + #"LINKERD2_PROXY_CONTROL_STREAM_LIFETIME="1m""#
        ),
        .refused(
            ["LINKERD2_PROXY_INBOUND_CONNECT_EXP_BACKOFF_MIN": "100ms"],
            "LINKERD2_PROXY_INBOUND_CONNECT_EXP_BACKOFF_MIN and LINKERD2_PROXY_INBOUND_CONNECT_EXP_BACKOFF_MAX must be "
                + "set together, but LINKERD2_PROXY_INBOUND_CONNECT_EXP_BACKOFF_MAX is not set"
        ),
        .refused(
            [
                "LINKERD2_PROXY_OUTBOUND_CONNECT_EXP_BACKOFF_MAX": "10s",
                "LINKERD2_PROXY_OUTBOUND_CONNECT_EXP_BACKOFF_JITTER": "0.1",
            ],
            "LINKERD2_PROXY_OUTBOUND_CONNECT_EXP_BACKOFF_MIN and LINKERD2_PROXY_OUTBOUND_CONNECT_EXP_BACKOFF_MAX must "
                + "be set together, but LINKERD2_PROXY_OUTBOUND_CONNECT_EXP_BACKOFF_MIN is not set"
        ),
        .refused(
            ["LINKERD2_PROXY_OUTBOUND_CONNECT_EXP_BACKOFF_JITTER": "0.1"],
            "LINKERD2_PROXY_OUTBOUND_CONNECT_EXP_BACKOFF_JITTER needs LINKERD2_PROXY_OUTBOUND_CONNECT_EXP_BACKOFF_MIN "
                + "and LINKERD2_PROXY_OUTBOUND_CONNECT_EXP_BACKOFF_MAX, which are not set"
        ),
        .refused(
            [
                "LINKERD2_PROXY_INBOUND_CONNECT_EXP_BACKOFF_MIN": "10s",
                "LINKERD2_PROXY_INBOUND_CONNECT_EXP_BACKOFF_MAX": "1s",
            ],
            #"LINKERD2_PROXY_INBOUND_CONNECT_EXP_BACKOFF_MIN="10s" must not be longer than "#
                + #"LINKERD2_PROXY_INBOUND_CONNECT_EXP_BACKOFF_MAX="1s""#
        ),
        .refused(
            [
                "LINKERD2_PROXY_INBOUND_CONNECT_EXP_BACKOFF_MIN": "0",
                "LINKERD2_PROXY_INBOUND_CONNECT_EXP_BACKOFF_MAX": "0",
            ],
            #"LINKERD2_PROXY_INBOUND_CONNECT_EXP_BACKOFF_MAX="0" is not valid: the maximum backoff must be above 0"#
        ),
        .refused(
            [
                "LINKERD2_PROXY_INBOUND_CONNECT_EXP_BACKOFF_MIN": "1s",
                "LINKERD2_PROXY_INBOUND_CONNECT_EXP_BACKOFF_MAX": "2s",
                "LINKERD2_PROXY_INBOUND_CONNECT_EXP_BACKOFF_JITTER": "101",
            ],
            #"LINKERD2_PROXY_INBOUND_CONNECT_EXP_BACKOFF_JITTER="101" is not valid: expected a number from 0 to 100, "#
                + "such as 0.1"
        ),
        .refused(
            ["LINKERD2_PROXY_INBOUND_SERVER_HTTP2_KEEP_ALIVE_INTERVAL": "10s"],
            "LINKERD2_PROXY_INBOUND_SERVER_HTTP2_KEEP_ALIVE_INTERVAL and "
                + "LINKERD2_PROXY_INBOUND_SERVER_HTTP2_KEEP_ALIVE_TIMEOUT must be set together, but "
                + "LINKERD2_PROXY_INBOUND_SERVER_HTTP2_KEEP_ALIVE_TIMEOUT is not set"
        ),
        .refused(
            ["LINKERD2_PROXY_OUTBOUND_SERVER_HTTP2_INITIAL_CONNECTION_WINDOW_SIZE": "1048576"],
            "LINKERD2_PROXY_OUTBOUND_SERVER_HTTP2_INITIAL_STREAM_WINDOW_SIZE and "
                + "LINKERD2_PROXY_OUTBOUND_SERVER_HTTP2_INITIAL_CONNECTION_WINDOW_SIZE must be set together, but "
                + "LINKERD2_PROXY_OUTBOUND_SERVER_HTTP2_INITIAL_STREAM_WINDOW_SIZE is not set"
        ),
        .invalid(
            "LINKERD2_PROXY_INBOUND_SERVER_HTTP2_MAX_FRAME_SIZE",
            "100",
            "expected a whole number from 16384 to 16777215"
        ),
        .invalid(
            "LINKERD2_PROXY_HTTP2_INITIAL_CONNECTION_WINDOW_SIZE",
            "2147483648",
            "expected a whole number from 0 to 2147483647"
        ),
    ]

    static let policies: [RefusedEnvironment] = [
        .invalid(
            "LINKERD2_PROXY_INBOUND_DEFAULT_POLICY",
            "cluster-unauthenticated",
            "cluster-unauthenticated needs the networks in LINKERD2_PROXY_POLICY_CLUSTER_NETWORKS, which is unset or "
                + "empty"
        ),
        .refused(
            [
                "LINKERD2_PROXY_INBOUND_DEFAULT_POLICY": "cluster-authenticated",
                "LINKERD2_PROXY_POLICY_CLUSTER_NETWORKS": " ",
            ],
            #"LINKERD2_PROXY_INBOUND_DEFAULT_POLICY="cluster-authenticated" is not valid: cluster-authenticated "#
                + "needs the networks in LINKERD2_PROXY_POLICY_CLUSTER_NETWORKS, which is unset or empty"
        ),
        .refused(
            [
                "LINKERD2_PROXY_INBOUND_DEFAULT_POLICY": "cluster-authenticated",
                "LINKERD2_PROXY_POLICY_CLUSTER_NETWORKS": "cluster",
            ],
            #"LINKERD2_PROXY_POLICY_CLUSTER_NETWORKS="cluster" is not valid: entry 1 "cluster": the prefix length "#
                + "is missing, as in 10.0.0.0/8"
        ),
        .invalid(
            "LINKERD2_PROXY_INBOUND_DEFAULT_POLICY",
            "allow",
            "expected one of deny, all-authenticated, all-unauthenticated, audit, cluster-authenticated, "
                + "cluster-unauthenticated"
        ),
    ]

    static let settings: [RefusedEnvironment] = [
        .invalid(
            "LINKERD2_PROXY_INBOUND_HTTP_QUEUE_CAPACITY",
            "-1",
            "expected a whole number from 0 to 9223372036854775807"
        ),
        .invalid(
            "LINKERD2_PROXY_OUTBOUND_MAX_IN_FLIGHT",
            "1e5",
            "expected a whole number from 0 to 9223372036854775807"
        ),
        .invalid("LINKERD2_PROXY_CORES", "0", "expected a whole number from 1 to 9223372036854775807"),
        .invalid("LINKERD2_PROXY_CORES_MAX_RATIO", "0", "expected a number greater than 0, such as 0.5"),
        .invalid("LINKERD2_PROXY_ACCESS_LOG", "xml", #"expected "apache" or "json""#),
        .invalid("LINKERD2_PROXY_INBOUND_METRICS_AUTHORITY_LABELS", "safe", #"expected "unsafe""#),
        .invalid(
            "LINKERD2_PROXY_LOG", "warn,linkerd=loud",
            #""loud" in "linkerd=loud" is not a level: expected off, error, warn, info, debug or trace"#),
    ]

    @Test(arguments: durations + booleans)
    func durationsAndBooleansFollowTheProxysSyntax(refused: RefusedEnvironment) {
        expectRefusal(refused)
    }

    @Test(arguments: lists + addresses + names)
    func listsAddressesAndNamesAreChecked(refused: RefusedEnvironment) {
        expectRefusal(refused)
    }

    @Test(arguments: identity + rules + policies + settings)
    func rulesAndLimitsAreEnforced(refused: RefusedEnvironment) {
        expectRefusal(refused)
    }

    private func expectRefusal(_ refused: RefusedEnvironment, sourceLocation: SourceLocation = #_sourceLocation) {
        let environment = Fixtures.environment(Fixtures.minimal, refused.changes)
        #expect(Fixtures.problems(environment, sourceLocation: sourceLocation) == refused.problems)
    }
}
