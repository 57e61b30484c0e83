import Foundation
import KubeModel
import LinkerdInject
import Testing

/// Where an annotation's effect shows in the patched pod.
enum Effect: Sendable, CustomStringConvertible {
    /// The proxy's env var has this value (nil: absent).
    case env(String, String?)
    /// `linkerd-init`'s flag has this value.
    case initArg(String, String?)
    /// The JSON at this path of the proxy container.
    case proxy([String], JSONValue?)
    /// The JSON at this path of the `linkerd-init` container.
    case initContainer([String], JSONValue?)
    /// The container names of the pod, init containers first.
    case containers([String])
    /// The pod annotation.
    case annotation(String, String?)

    var description: String {
        switch self {
        case .env(let name, let value): "env \(name)=\(value ?? "nil")"
        case .initArg(let flag, let value): "init \(flag) \(value ?? "nil")"
        case .proxy(let path, let value): "proxy \(path) \(value?.jsonString ?? "nil")"
        case .initContainer(let path, let value): "init \(path) \(value?.jsonString ?? "nil")"
        case .containers(let names): "containers \(names)"
        case .annotation(let key, let value): "annotation \(key)=\(value ?? "nil")"
        }
    }

    func check(_ facts: PodFacts, sourceLocation: SourceLocation = #_sourceLocation) {
        switch self {
        case .env(let name, let value):
            #expect(facts.env(name) == value, "\(name)", sourceLocation: sourceLocation)
        case .initArg(let flag, let value):
            #expect(facts.initArg(flag) == value, "\(flag) in \(facts.initArgs)", sourceLocation: sourceLocation)
        case .proxy(let path, let value):
            #expect(facts.proxy?.value(atTokens: path) == value, "\(path)", sourceLocation: sourceLocation)
        case .initContainer(let path, let value):
            #expect(
                facts.container("linkerd-init")?.value(atTokens: path) == value, "\(path)",
                sourceLocation: sourceLocation)
        case .containers(let names):
            #expect(facts.initContainerNames + facts.containerNames == names, sourceLocation: sourceLocation)
        case .annotation(let key, let value):
            #expect(facts.annotations[key] == value, "\(key)", sourceLocation: sourceLocation)
        }
    }
}

extension JSONValue {
    func value(atTokens tokens: [String]) -> JSONValue? {
        var current: JSONValue? = self
        for token in tokens {
            if let index = Int(token), let elements = current?.arrayValue {
                current = elements.indices.contains(index) ? elements[index] : nil
            } else {
                current = current?[token]
            }
        }
        return current
    }
}

@Suite("Annotation catalogue")
struct AnnotationTests {
    static let defaultEnv = "warn,linkerd=info,hickory=error,[{headers}]=off,[{request}]=off"

    /// Each annotation: a valid value and its effect, an invalid value (warned about, ignored) and the default
    /// effect it leaves.
    static let table: [(key: String, valid: String, effect: Effect, invalid: String, fallback: Effect)] = [
        (
            "config.linkerd.io/proxy-image", "my/proxy",
            .proxy(["image"], .string("my/proxy:\(LinkerdVersion.current)")),
            "  ", .proxy(["image"], .string("cr.l5d.io/linkerd/proxy:\(LinkerdVersion.current)"))
        ),
        (
            "config.linkerd.io/proxy-version", "v3", .annotation(MeshKeys.proxyVersion, "v3"),
            "", .annotation(MeshKeys.proxyVersion, LinkerdVersion.current)
        ),
        (
            "config.linkerd.io/image-pull-policy", "Always", .proxy(["imagePullPolicy"], "Always"),
            "sometimes", .proxy(["imagePullPolicy"], "IfNotPresent")
        ),
        (
            "config.linkerd.io/control-port", "5190", .env("LINKERD2_PROXY_CONTROL_LISTEN_ADDR", "0.0.0.0:5190"),
            "0", .env("LINKERD2_PROXY_CONTROL_LISTEN_ADDR", "0.0.0.0:4190")
        ),
        (
            "config.linkerd.io/inbound-port", "5143", .proxy(["ports", "0", "containerPort"], 5143),
            "65536", .proxy(["ports", "0", "containerPort"], 4143)
        ),
        (
            "config.linkerd.io/admin-port", "5191", .proxy(["livenessProbe", "httpGet", "port"], 5191),
            "x", .proxy(["livenessProbe", "httpGet", "port"], 4191)
        ),
        (
            "config.linkerd.io/outbound-port", "5140", .initArg("--outgoing-proxy-port", "5140"),
            "-1", .initArg("--outgoing-proxy-port", "4140")
        ),
        (
            "config.linkerd.io/pod-inbound-ports", "9090,80,10000,80",
            .env("LINKERD2_PROXY_INBOUND_PORTS", "80,9090,10000"),
            "80-90", .env("LINKERD2_PROXY_INBOUND_PORTS", "8080")
        ),
        (
            "config.linkerd.io/skip-inbound-ports", "22,8000-8100",
            .initArg("--inbound-ports-to-ignore", "4190,4191,22,8000-8100"),
            "22,", .initArg("--inbound-ports-to-ignore", "4190,4191,4567,4568")
        ),
        (
            "config.linkerd.io/skip-outbound-ports", "443", .initArg("--outbound-ports-to-ignore", "443"),
            "https", .initArg("--outbound-ports-to-ignore", "4567,4568")
        ),
        (
            "config.linkerd.io/skip-subnets", "10.0.0.0/8, fd00::/8",
            .initArg("--subnets-to-ignore", "10.0.0.0/8,fd00::/8"),
            "10.0.0.0/40", .initArg("--subnets-to-ignore", nil)
        ),
        (
            "config.linkerd.io/opaque-ports", "http,25,1000-1002",
            .env("LINKERD2_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION", "8080,25,1000-1002"),
            "nosuchport", .env("LINKERD2_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION", nil)
        ),
        (
            "config.linkerd.io/proxy-cpu-request", "1500m", .env("LINKERD2_PROXY_CORES", "2"),
            "1.5 cores", .env("LINKERD2_PROXY_CORES", "1")
        ),
        (
            "config.linkerd.io/proxy-cpu-limit", "2", .env("LINKERD2_PROXY_CORES_MAX", "2"),
            "two", .env("LINKERD2_PROXY_CORES_MAX", nil)
        ),
        (
            "config.linkerd.io/proxy-cpu-ratio-limit", "0.25", .env("LINKERD2_PROXY_CORES_MAX_RATIO", "0.25"),
            "1.5", .env("LINKERD2_PROXY_CORES_MAX_RATIO", nil)
        ),
        (
            "config.linkerd.io/proxy-memory-request", "64Mi", .proxy(["resources", "requests", "memory"], "64Mi"),
            "64MB", .proxy(["resources"], nil)
        ),
        (
            "config.linkerd.io/proxy-memory-limit", "1Gi", .proxy(["resources", "limits", "memory"], "1Gi"),
            "lots", .proxy(["resources"], nil)
        ),
        (
            "config.linkerd.io/proxy-ephemeral-storage-request", "1Mi",
            .proxy(["resources", "requests", "ephemeral-storage"], "1Mi"), "?", .proxy(["resources"], nil)
        ),
        (
            "config.linkerd.io/proxy-ephemeral-storage-limit", "2Mi",
            .proxy(["resources", "limits", "ephemeral-storage"], "2Mi"), "--", .proxy(["resources"], nil)
        ),
        (
            "config.linkerd.io/proxy-uid", "3000", .proxy(["securityContext", "runAsUser"], 3000),
            "-5", .proxy(["securityContext", "runAsUser"], 2102)
        ),
        (
            "config.linkerd.io/proxy-gid", "3001", .initArg("--proxy-gid", "3001"),
            "group", .initArg("--proxy-gid", nil)
        ),
        (
            "config.linkerd.io/proxy-admin-shutdown", "enabled",
            .env("LINKERD2_PROXY_SHUTDOWN_ENDPOINT_ENABLED", "true"),
            "true", .env("LINKERD2_PROXY_SHUTDOWN_ENDPOINT_ENABLED", "false")
        ),
        (
            "config.linkerd.io/proxy-log-level", "debug",
            .env("LINKERD2_PROXY_LOG", "debug,[{headers}]=off,[{request}]=off"),
            "", .env("LINKERD2_PROXY_LOG", defaultEnv)
        ),
        (
            "config.linkerd.io/proxy-log-format", "json", .env("LINKERD2_PROXY_LOG_FORMAT", "json"),
            "xml", .env("LINKERD2_PROXY_LOG_FORMAT", "plain")
        ),
        (
            "config.linkerd.io/proxy-log-http-headers", "insecure",
            .env("LINKERD2_PROXY_LOG", "warn,linkerd=info,hickory=error"),
            "on", .env("LINKERD2_PROXY_LOG", defaultEnv)
        ),
        (
            "config.linkerd.io/enable-external-profiles", "true",
            .env("LINKERD2_PROXY_DESTINATION_PROFILE_SUFFIXES", "."),
            "yes", .env("LINKERD2_PROXY_DESTINATION_PROFILE_SUFFIXES", "svc.cluster.local.")
        ),
        (
            "config.linkerd.io/proxy-require-identity-inbound-ports", "8080,9000-9010",
            .env("LINKERD2_PROXY_INBOUND_PORTS_REQUIRE_IDENTITY", "8080,9000-9010"),
            "8080;9090", .env("LINKERD2_PROXY_INBOUND_PORTS_REQUIRE_IDENTITY", nil)
        ),
        (
            "config.linkerd.io/proxy-metrics-hostname-labels", "T",
            .env("LINKERD2_PROXY_OUTBOUND_METRICS_HOSTNAME_LABELS", "true"),
            "maybe", .env("LINKERD2_PROXY_OUTBOUND_METRICS_HOSTNAME_LABELS", "false")
        ),
        (
            "config.linkerd.io/proxy-outbound-connect-timeout", "1.5s",
            .env("LINKERD2_PROXY_OUTBOUND_CONNECT_TIMEOUT", "1500ms"),
            "1.5", .env("LINKERD2_PROXY_OUTBOUND_CONNECT_TIMEOUT", "1000ms")
        ),
        (
            "config.linkerd.io/proxy-inbound-connect-timeout", "1m",
            .env("LINKERD2_PROXY_INBOUND_CONNECT_TIMEOUT", "60000ms"),
            "-1s", .env("LINKERD2_PROXY_INBOUND_CONNECT_TIMEOUT", "100ms")
        ),
        (
            "config.linkerd.io/proxy-outbound-discovery-cache-unused-timeout", "1m30s",
            .env("LINKERD2_PROXY_OUTBOUND_DISCOVERY_IDLE_TIMEOUT", "90s"),
            "soon", .env("LINKERD2_PROXY_OUTBOUND_DISCOVERY_IDLE_TIMEOUT", "5s")
        ),
        (
            "config.linkerd.io/proxy-inbound-discovery-cache-unused-timeout", "2500ms",
            .env("LINKERD2_PROXY_INBOUND_DISCOVERY_IDLE_TIMEOUT", "2s"),
            "5 s", .env("LINKERD2_PROXY_INBOUND_DISCOVERY_IDLE_TIMEOUT", "90s")
        ),
        (
            "config.linkerd.io/proxy-disable-outbound-protocol-detect-timeout", "true",
            .env("LINKERD2_PROXY_OUTBOUND_DETECT_TIMEOUT", "365d"),
            "on", .env("LINKERD2_PROXY_OUTBOUND_DETECT_TIMEOUT", nil)
        ),
        (
            "config.linkerd.io/proxy-disable-inbound-protocol-detect-timeout", "1",
            .env("LINKERD2_PROXY_INBOUND_DETECT_TIMEOUT", "365d"),
            "2", .env("LINKERD2_PROXY_INBOUND_DETECT_TIMEOUT", nil)
        ),
        (
            "config.linkerd.io/proxy-await", "disabled", .proxy(["startupProbe"], nil),
            "no", .proxy(["startupProbe", "failureThreshold"], 120)
        ),
        (
            "config.linkerd.io/default-inbound-policy", "deny", .env("LINKERD2_PROXY_INBOUND_DEFAULT_POLICY", "deny"),
            "allow", .env("LINKERD2_PROXY_INBOUND_DEFAULT_POLICY", "all-unauthenticated")
        ),
        (
            "config.linkerd.io/access-log", "apache", .env("LINKERD2_PROXY_ACCESS_LOG", "apache"),
            "", .env("LINKERD2_PROXY_ACCESS_LOG", nil)
        ),
        (
            "config.linkerd.io/shutdown-grace-period", "30s", .env("LINKERD2_PROXY_SHUTDOWN_GRACE_PERIOD", "30000ms"),
            "30", .env("LINKERD2_PROXY_SHUTDOWN_GRACE_PERIOD", nil)
        ),
        (
            "config.linkerd.io/proxy-enable-native-sidecar", "false", .proxy(["restartPolicy"], nil),
            "nope", .proxy(["restartPolicy"], "Always")
        ),
        (
            "config.linkerd.io/enable-debug-sidecar", "true",
            .containers(["linkerd-init", "linkerd-proxy", "web", "linkerd-debug"]),
            "sure", .containers(["linkerd-init", "linkerd-proxy", "web"])
        ),
        (
            "config.linkerd.io/enable-gateway", "true",
            .env("LINKERD2_PROXY_INBOUND_GATEWAY_SUFFIXES", "svc.cluster.local."),
            "gateway", .env("LINKERD2_PROXY_INBOUND_GATEWAY_SUFFIXES", nil)
        ),
        (
            "config.alpha.linkerd.io/proxy-wait-before-exit-seconds", "10", .proxy(["lifecycle"], nil),
            "-1", .proxy(["lifecycle"], nil)
        ),
        (
            "config.linkerd.io/proxy-additional-env", #"[{"name":"X","value":"1"}]"#, .env("X", "1"),
            #"{"name":"X"}"#, .env("X", nil)
        ),
    ]

    @Test("every catalogue key is exercised")
    func coverage() {
        let keys = Set(Self.table.map(\.key))
        #expect(keys.count == Self.table.count)
        #expect(keys.count >= 41, "close-wait-timeout has its own tests: it needs a root proxy-init")
    }

    @Test("a valid value takes effect without warnings", arguments: table.indices)
    func valid(_ index: Int) throws {
        let row = Self.table[index]
        let (result, patched) = try injectAndApply(
            podRequest(makePod(annotations: [MeshKeys.inject: "enabled", row.key: row.valid])))
        #expect(result.report.warnings.isEmpty, "\(result.report.warnings)")
        row.effect.check(PodFacts(patched))
    }

    @Test("an invalid value is warned about and ignored", arguments: table.indices)
    func invalid(_ index: Int) throws {
        let row = Self.table[index]
        let (result, patched) = try injectAndApply(
            podRequest(makePod(annotations: [MeshKeys.inject: "enabled", row.key: row.invalid])))
        #expect(result.report.injectable, "an invalid value never fails or skips injection")
        row.fallback.check(PodFacts(patched))
        let blank = row.invalid.trimmingCharacters(in: .whitespaces).isEmpty
        if blank {
            #expect(result.report.warnings.isEmpty, "an empty value counts as absent")
        } else {
            #expect(result.report.warnings.map(\.key) == [row.key])
            #expect(result.report.warnings.first?.value == row.invalid)
            #expect(result.report.warnings.first?.description.hasPrefix("ignoring annotation \(row.key)=") == true)
        }
    }

    @Test("close-wait-timeout needs a root proxy-init and then makes it privileged")
    func closeWait() throws {
        var configuration = testConfiguration
        configuration.proxyInit.runAsRoot = true
        let (_, patched) = try injectAndApply(
            podRequest(makePod(annotations: [MeshKeys.inject: "enabled", MeshKeys.closeWaitTimeout: "1m30s"])),
            configuration: configuration)
        let facts = PodFacts(patched)
        #expect(facts.initArg("--timeout-close-wait-secs") == "90")
        Effect.initContainer(["securityContext", "privileged"], true).check(facts)
        Effect.initContainer(["securityContext", "allowPrivilegeEscalation"], true).check(facts)
        Effect.initContainer(["securityContext", "runAsUser"], 0).check(facts)
        Effect.initContainer(["securityContext", "runAsNonRoot"], false).check(facts)
    }

    @Test("close-wait-timeout without a root proxy-init is warned about and ignored")
    func closeWaitWithoutRoot() throws {
        let (result, patched) = try injectAndApply(
            podRequest(makePod(annotations: [MeshKeys.inject: "enabled", MeshKeys.closeWaitTimeout: "1m"])))
        #expect(result.report.warnings.map(\.key) == [MeshKeys.closeWaitTimeout])
        #expect(PodFacts(patched).initArg("--timeout-close-wait-secs") == nil)
        Effect.initContainer(["securityContext", "privileged"], false).check(PodFacts(patched))
    }

    @Test("wait-before-exit adds a preStop sleep to a classic sidecar")
    func waitBeforeExit() throws {
        let (_, patched) = try injectAndApply(
            podRequest(
                makePod(annotations: [
                    MeshKeys.inject: "enabled", MeshKeys.waitBeforeExitSeconds: "10", MeshKeys.nativeSidecar: "false",
                ])))
        Effect.proxy(["lifecycle", "preStop", "exec", "command"], ["/bin/sleep", "10"]).check(PodFacts(patched))
    }

    @Test("namespace values are inherited only for the keys the catalogue marks")
    func inheritance() throws {
        let namespace = [
            MeshKeys.inject: "enabled",
            MeshKeys.proxyLogLevel: "debug",
            MeshKeys.proxyCPURequest: "3",
            MeshKeys.enableGateway: "true",
            MeshKeys.debugImage: "ns/debug",
            MeshKeys.proxyCPURatioLimit: "0.5",
            MeshKeys.nativeSidecarBeta: "false",
            MeshKeys.nativeSidecarAlpha: "false",
            "example.com/other": "x",
        ]
        let (_, patched) = try injectAndApply(
            podRequest(makePod(annotations: [MeshKeys.proxyCPURequest: "1"]), namespaceAnnotations: namespace))
        let facts = PodFacts(patched)
        #expect(facts.env("LINKERD2_PROXY_LOG")?.hasPrefix("debug,") == true, "inherited")
        #expect(facts.env("LINKERD2_PROXY_CORES") == "1", "the pod's own value wins")
        #expect(facts.env("LINKERD2_PROXY_INBOUND_GATEWAY_SUFFIXES") == nil, "enable-gateway is pod-only")
        #expect(facts.env("LINKERD2_PROXY_CORES_MAX_RATIO") == nil, "the ratio is pod-only")
        #expect(facts.containerNames == ["linkerd-proxy", "web"], "the alpha native-sidecar key is inherited")
        // The inherited keys are copied onto the pod; the others are not.
        #expect(facts.annotations[MeshKeys.proxyLogLevel] == "debug")
        #expect(facts.annotations[MeshKeys.inject] == "enabled")
        #expect(facts.annotations[MeshKeys.nativeSidecarAlpha] == "false")
        #expect(facts.annotations[MeshKeys.proxyCPURequest] == "1")
        for key in [
            MeshKeys.enableGateway, MeshKeys.debugImage, MeshKeys.proxyCPURatioLimit,
            MeshKeys.nativeSidecarBeta, "example.com/other",
        ] {
            #expect(facts.annotations[key] == nil, "\(key)")
        }
    }

    @Test("additional env merges by name: values < namespace < workload")
    func additionalEnvPrecedence() throws {
        var configuration = testConfiguration
        configuration.proxy.additionalEnv = [
            ["name": "A", "value": "values"], ["name": "B", "value": "values"], ["name": "C", "value": "values"],
        ]
        let namespace = [
            MeshKeys.inject: "enabled",
            MeshKeys.additionalEnv:
                #"[{"name":"B","value":"namespace"},{"name":"C","value":"namespace"},{"name":"D","value":"namespace"}]"#,
        ]
        let pod = makePod(annotations: [
            MeshKeys.additionalEnv:
                #"[{"name":"C","value":"workload"},{"name":"E","valueFrom":{"fieldRef":{"fieldPath":"metadata.name"}}}]"#
        ])
        let (result, patched) = try injectAndApply(
            podRequest(pod, namespaceAnnotations: namespace), configuration: configuration)
        let facts = PodFacts(patched)
        #expect(result.report.warnings.isEmpty)
        #expect(Array(facts.proxyEnvNames.suffix(5)) == ["A", "B", "C", "D", "E"])
        #expect(facts.env("A") == "values")
        #expect(facts.env("B") == "namespace")
        #expect(facts.env("C") == "workload")
        #expect(facts.env("D") == "namespace")
        #expect(facts.proxyEnv.last?["valueFrom"]?["fieldRef"]?["fieldPath"] == "metadata.name")
        #expect(
            facts.annotations[MeshKeys.additionalEnv]
                == pod["metadata"]?["annotations"]?[MeshKeys.additionalEnv]?.stringValue,
            "the namespace's list is merged, not copied onto the pod")
    }

    @Test(
        "native sidecar precedence: stable > beta > alpha",
        arguments: [
            ("true", "false", "false", true),
            ("false", "true", "true", false),
            (nil, "false", "true", false),
            (nil, "true", "false", true),
            (nil, nil, "false", false),
            ("bogus", "false", "true", false),
            (nil, nil, nil, true),
        ] as [(String?, String?, String?, Bool)])
    func nativePrecedence(stable: String?, beta: String?, alpha: String?, native: Bool) throws {
        var annotations = [MeshKeys.inject: "enabled"]
        annotations[MeshKeys.nativeSidecar] = stable
        annotations[MeshKeys.nativeSidecarBeta] = beta
        annotations[MeshKeys.nativeSidecarAlpha] = alpha
        let (_, patched) = try injectAndApply(podRequest(makePod(annotations: annotations)))
        #expect(PodFacts(patched).initContainerNames.contains("linkerd-proxy") == native)
    }

    @Test("named opaque ports resolve from every container, init containers included")
    func namedOpaquePorts() throws {
        let pod = makePod(
            annotations: [MeshKeys.inject: "enabled", MeshKeys.opaquePorts: "db, cache ,http"],
            containers: [
                ["name": "web", "image": "w", "ports": [["containerPort": 8080, "name": "http"]]],
                ["name": "db", "image": "d", "ports": [["containerPort": 5432, "name": "db"]]],
            ],
            initContainers: [["name": "c", "image": "c", "ports": [["containerPort": 11211, "name": "cache"]]]])
        let (_, patched) = try injectAndApply(podRequest(pod))
        #expect(PodFacts(patched).env("LINKERD2_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION") == "5432,11211,8080")
        #expect(
            PodFacts(patched).annotations[MeshKeys.opaquePorts] == "db, cache ,http", "the annotation stays as written")
    }

    @Test("a huge annotation value is warned about with a bounded message")
    func hugeValue() throws {
        let huge = String(repeating: "x", count: 1_000_000)
        let (result, _) = try injectAndApply(
            podRequest(
                makePod(annotations: [
                    MeshKeys.inject: "enabled", MeshKeys.proxyUID: huge, MeshKeys.additionalEnv: huge,
                ])))
        #expect(result.report.warnings.count == 2)
        #expect(result.report.warnings.allSatisfy { $0.description.count < 500 })
    }
}
