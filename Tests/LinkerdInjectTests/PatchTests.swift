import KubeModel
import LinkerdInject
import Testing

@Suite("Injection patch")
struct PatchTests {
    let injector = ProxyInjector(configuration: testConfiguration)

    /// The operations' op and path, for order checks.
    func paths(_ patch: JSONPatch?) -> [String] {
        (patch?.operations ?? []).map { operation in
            switch operation {
            case .add(let path, _): "add \(path)"
            case .remove(let path): "remove \(path)"
            case .replace(let path, _): "replace \(path)"
            case .move(_, let path), .copy(_, let path): "move/copy \(path)"
            case .test(let path, _): "test \(path)"
            }
        }
    }

    @Test("default native injection: operation order and paths")
    func nativeOrder() throws {
        let request = podRequest(
            makePod(annotations: ["team": "a"]), namespaceAnnotations: [MeshKeys.inject: "enabled"],
            owner: WorkloadOwner(kind: "deployment", name: "web"))
        let result = injector.inject(request)
        #expect(
            paths(result.patch)
                == [
                    "add /metadata/annotations/config.linkerd.io~1opaque-ports",
                    "add /metadata/annotations/linkerd.io~1created-by",
                    "add /metadata/annotations/linkerd.io~1inject",
                    "add /metadata/annotations/linkerd.io~1proxy-version",
                    "add /metadata/annotations/linkerd.io~1trust-root-sha256",
                    "add /metadata/labels/linkerd.io~1control-plane-ns",
                    "add /metadata/labels/linkerd.io~1proxy-deployment",
                    "add /metadata/labels/linkerd.io~1workload-ns",
                    "add /spec/initContainers",
                    "add /spec/volumes/-",
                    "add /spec/initContainers/0",
                    "add /spec/volumes/-",
                    "add /spec/volumes/-",
                    "add /spec/initContainers/1",
                ].filter { $0 != "add /metadata/annotations/config.linkerd.io~1opaque-ports" })
        let patched = try #require(result.patch).apply(to: request.object)
        let facts = PodFacts(patched)
        #expect(facts.initContainerNames == ["linkerd-init", "linkerd-proxy"])
        #expect(facts.containerNames == ["web"])
        #expect(
            facts.volumeNames == [
                "kube-api-access-abcde", "linkerd-proxy-init-xtables-lock", "linkerd-identity-end-entity",
                "linkerd-identity-token",
            ])
        #expect(facts.annotations[MeshKeys.createdBy] == "linkerd/proxy-injector \(LinkerdVersion.current)")
        #expect(facts.annotations[MeshKeys.proxyVersion] == LinkerdVersion.current)
        #expect(facts.annotations[MeshKeys.trustRootSHA256] == testConfiguration.trustRootSHA256)
        #expect(facts.annotations[MeshKeys.inject] == "enabled", "inherited from the namespace")
        #expect(
            facts.labels == [
                "app": "web", "linkerd.io/control-plane-ns": "linkerd", "linkerd.io/proxy-deployment": "web",
                "linkerd.io/workload-ns": "shop",
            ])
        let proxy = try #require(facts.proxy)
        #expect(proxy["restartPolicy"] == "Always")
        #expect(
            proxy["startupProbe"] == [
                "httpGet": ["path": "/ready", "port": 4191], "initialDelaySeconds": 0, "periodSeconds": 1,
                "failureThreshold": 120,
            ])
        #expect(proxy["lifecycle"] == nil)
        #expect(
            proxy["ports"] == [
                ["containerPort": 4143, "name": "linkerd-proxy"], ["containerPort": 4191, "name": "linkerd-admin"],
            ])
        #expect(proxy["image"] == .string("cr.l5d.io/linkerd/proxy:\(LinkerdVersion.current)"))
        #expect(
            proxy["volumeMounts"] == [
                ["mountPath": "/var/run/linkerd/identity/end-entity", "name": "linkerd-identity-end-entity"],
                ["mountPath": "/var/run/secrets/tokens", "name": "linkerd-identity-token"],
                [
                    "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "name": "kube-api-access-abcde",
                    "readOnly": true,
                ],
            ])
    }

    @Test("the full environment table, in order, with its default values")
    func environment() throws {
        let (_, patched) = try injectAndApply(podRequest(makePod(annotations: [MeshKeys.inject: "enabled"])))
        let facts = PodFacts(patched)
        #expect(
            facts.proxyEnvNames == [
                "_pod_name", "_pod_ns", "_pod_uid", "_pod_ip", "_pod_nodeName", "_pod_containerName",
                "LINKERD2_PROXY_CORES", "LINKERD2_PROXY_CORES_MIN", "LINKERD2_PROXY_SHUTDOWN_ENDPOINT_ENABLED",
                "LINKERD2_PROXY_LOG", "LINKERD2_PROXY_LOG_FORMAT", "LINKERD2_PROXY_DESTINATION_SVC_ADDR",
                "LINKERD2_PROXY_DESTINATION_PROFILE_NETWORKS", "LINKERD2_PROXY_POLICY_SVC_ADDR",
                "LINKERD2_PROXY_POLICY_WORKLOAD", "LINKERD2_PROXY_INBOUND_DEFAULT_POLICY",
                "LINKERD2_PROXY_POLICY_CLUSTER_NETWORKS", "LINKERD2_PROXY_CONTROL_STREAM_INITIAL_TIMEOUT",
                "LINKERD2_PROXY_CONTROL_STREAM_IDLE_TIMEOUT", "LINKERD2_PROXY_CONTROL_STREAM_LIFETIME",
                "LINKERD2_PROXY_INBOUND_CONNECT_TIMEOUT", "LINKERD2_PROXY_OUTBOUND_CONNECT_TIMEOUT",
                "LINKERD2_PROXY_OUTBOUND_DISCOVERY_IDLE_TIMEOUT", "LINKERD2_PROXY_INBOUND_DISCOVERY_IDLE_TIMEOUT",
                "LINKERD2_PROXY_CONTROL_LISTEN_ADDR", "LINKERD2_PROXY_ADMIN_LISTEN_ADDR",
                "LINKERD2_PROXY_OUTBOUND_LISTEN_ADDR", "LINKERD2_PROXY_OUTBOUND_LISTEN_ADDRS",
                "LINKERD2_PROXY_INBOUND_LISTEN_ADDR", "LINKERD2_PROXY_INBOUND_IPS", "LINKERD2_PROXY_INBOUND_PORTS",
                "LINKERD2_PROXY_DESTINATION_PROFILE_SUFFIXES", "LINKERD2_PROXY_INBOUND_ACCEPT_KEEPALIVE",
                "LINKERD2_PROXY_OUTBOUND_CONNECT_KEEPALIVE", "LINKERD2_PROXY_INBOUND_ACCEPT_USER_TIMEOUT",
                "LINKERD2_PROXY_OUTBOUND_CONNECT_USER_TIMEOUT", "LINKERD2_PROXY_OUTBOUND_METRICS_HOSTNAME_LABELS",
                "LINKERD2_PROXY_INBOUND_SERVER_HTTP2_KEEP_ALIVE_INTERVAL",
                "LINKERD2_PROXY_INBOUND_SERVER_HTTP2_KEEP_ALIVE_TIMEOUT",
                "LINKERD2_PROXY_OUTBOUND_SERVER_HTTP2_KEEP_ALIVE_INTERVAL",
                "LINKERD2_PROXY_OUTBOUND_SERVER_HTTP2_KEEP_ALIVE_TIMEOUT",
                "LINKERD2_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION", "LINKERD2_PROXY_DESTINATION_CONTEXT",
                "_pod_sa", "_l5d_ns", "_l5d_trustdomain", "LINKERD2_PROXY_IDENTITY_DIR",
                "LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS", "LINKERD2_PROXY_IDENTITY_TOKEN_FILE",
                "LINKERD2_PROXY_IDENTITY_SVC_ADDR", "LINKERD2_PROXY_IDENTITY_LOCAL_NAME",
                "LINKERD2_PROXY_IDENTITY_SVC_NAME", "LINKERD2_PROXY_DESTINATION_SVC_NAME",
                "LINKERD2_PROXY_POLICY_SVC_NAME",
            ])
        let expected: [String: String] = [
            "_pod_containerName": "linkerd-proxy",
            "LINKERD2_PROXY_CORES": "1",
            "LINKERD2_PROXY_CORES_MIN": "1",
            "LINKERD2_PROXY_SHUTDOWN_ENDPOINT_ENABLED": "false",
            "LINKERD2_PROXY_LOG": "warn,linkerd=info,hickory=error,[{headers}]=off,[{request}]=off",
            "LINKERD2_PROXY_LOG_FORMAT": "plain",
            "LINKERD2_PROXY_DESTINATION_SVC_ADDR": "linkerd-dst-headless.linkerd.svc.cluster.local.:8086",
            "LINKERD2_PROXY_DESTINATION_PROFILE_NETWORKS":
                "10.0.0.0/8,100.64.0.0/10,172.16.0.0/12,192.168.0.0/16,fd00::/8",
            "LINKERD2_PROXY_POLICY_SVC_ADDR": "linkerd-policy.linkerd.svc.cluster.local.:8090",
            "LINKERD2_PROXY_POLICY_WORKLOAD": "{\"ns\":\"$(_pod_ns)\", \"pod\":\"$(_pod_name)\"}\n",
            "LINKERD2_PROXY_INBOUND_DEFAULT_POLICY": "all-unauthenticated",
            "LINKERD2_PROXY_CONTROL_STREAM_INITIAL_TIMEOUT": "3s",
            "LINKERD2_PROXY_CONTROL_STREAM_IDLE_TIMEOUT": "5m",
            "LINKERD2_PROXY_CONTROL_STREAM_LIFETIME": "1h",
            "LINKERD2_PROXY_INBOUND_CONNECT_TIMEOUT": "100ms",
            "LINKERD2_PROXY_OUTBOUND_CONNECT_TIMEOUT": "1000ms",
            "LINKERD2_PROXY_OUTBOUND_DISCOVERY_IDLE_TIMEOUT": "5s",
            "LINKERD2_PROXY_INBOUND_DISCOVERY_IDLE_TIMEOUT": "90s",
            "LINKERD2_PROXY_CONTROL_LISTEN_ADDR": "0.0.0.0:4190",
            "LINKERD2_PROXY_ADMIN_LISTEN_ADDR": "0.0.0.0:4191",
            "LINKERD2_PROXY_OUTBOUND_LISTEN_ADDR": "127.0.0.1:4140",
            "LINKERD2_PROXY_OUTBOUND_LISTEN_ADDRS": "127.0.0.1:4140",
            "LINKERD2_PROXY_INBOUND_LISTEN_ADDR": "0.0.0.0:4143",
            "LINKERD2_PROXY_INBOUND_PORTS": "8080",
            "LINKERD2_PROXY_DESTINATION_PROFILE_SUFFIXES": "svc.cluster.local.",
            "LINKERD2_PROXY_INBOUND_ACCEPT_KEEPALIVE": "10000ms",
            "LINKERD2_PROXY_OUTBOUND_CONNECT_KEEPALIVE": "10000ms",
            "LINKERD2_PROXY_INBOUND_ACCEPT_USER_TIMEOUT": "30s",
            "LINKERD2_PROXY_OUTBOUND_CONNECT_USER_TIMEOUT": "30s",
            "LINKERD2_PROXY_OUTBOUND_METRICS_HOSTNAME_LABELS": "false",
            "LINKERD2_PROXY_INBOUND_SERVER_HTTP2_KEEP_ALIVE_INTERVAL": "10s",
            "LINKERD2_PROXY_INBOUND_SERVER_HTTP2_KEEP_ALIVE_TIMEOUT": "3s",
            "LINKERD2_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION": "25,587,3306,4444,5432,6379,9300,11211",
            "LINKERD2_PROXY_DESTINATION_CONTEXT":
                "{\"ns\":\"$(_pod_ns)\", \"nodeName\":\"$(_pod_nodeName)\", \"pod\":\"$(_pod_name)\"}\n",
            "_l5d_ns": "linkerd",
            "_l5d_trustdomain": "cluster.local",
            "LINKERD2_PROXY_IDENTITY_DIR": "/var/run/linkerd/identity/end-entity",
            "LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS": testTrustAnchors,
            "LINKERD2_PROXY_IDENTITY_TOKEN_FILE": "/var/run/secrets/tokens/linkerd-identity-token",
            "LINKERD2_PROXY_IDENTITY_SVC_ADDR": "linkerd-identity-headless.linkerd.svc.cluster.local.:8080",
            "LINKERD2_PROXY_IDENTITY_LOCAL_NAME":
                "$(_pod_sa).$(_pod_ns).serviceaccount.identity.linkerd.cluster.local",
            "LINKERD2_PROXY_IDENTITY_SVC_NAME":
                "linkerd-identity.linkerd.serviceaccount.identity.linkerd.cluster.local",
            "LINKERD2_PROXY_DESTINATION_SVC_NAME":
                "linkerd-destination.linkerd.serviceaccount.identity.linkerd.cluster.local",
            "LINKERD2_PROXY_POLICY_SVC_NAME":
                "linkerd-destination.linkerd.serviceaccount.identity.linkerd.cluster.local",
        ]
        for (name, value) in expected {
            #expect(facts.env(name) == value, "\(name)")
        }
        let fieldRefs = [
            "_pod_name": "metadata.name", "_pod_ns": "metadata.namespace", "_pod_uid": "metadata.uid",
            "_pod_ip": "status.podIP", "_pod_nodeName": "spec.nodeName", "LINKERD2_PROXY_INBOUND_IPS": "status.podIPs",
            "_pod_sa": "spec.serviceAccountName",
        ]
        for (name, path) in fieldRefs {
            let entry = facts.proxyEnv.first { $0["name"]?.stringValue == name }
            #expect(entry?["valueFrom"]?["fieldRef"]?["fieldPath"]?.stringValue == path, "\(name)")
        }
    }

    @Test("linkerd-init arguments, in order, and its security context")
    func proxyInit() throws {
        let (_, patched) = try injectAndApply(podRequest(makePod(annotations: [MeshKeys.inject: "enabled"])))
        let facts = PodFacts(patched)
        #expect(
            facts.initArgs == [
                "--firewall-bin-path", "iptables-nft", "--firewall-save-bin-path", "iptables-nft-save", "--ipv6=false",
                "--incoming-proxy-port", "4143", "--outgoing-proxy-port", "4140", "--proxy-uid", "2102",
                "--inbound-ports-to-ignore", "4190,4191,4567,4568", "--outbound-ports-to-ignore", "4567,4568",
            ])
        let initContainer = try #require(facts.container("linkerd-init"))
        #expect(initContainer["command"] == ["/usr/lib/linkerd/linkerd2-proxy-init"])
        #expect(
            initContainer["securityContext"] == [
                "allowPrivilegeEscalation": false, "privileged": false,
                "capabilities": ["add": ["NET_ADMIN", "NET_RAW"]], "readOnlyRootFilesystem": true,
                "runAsNonRoot": true, "runAsUser": 65534, "runAsGroup": 65534,
                "seccompProfile": ["type": "RuntimeDefault"],
            ])
        #expect(
            initContainer["volumeMounts"] == [
                ["mountPath": "/run", "name": "linkerd-proxy-init-xtables-lock"],
                [
                    "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "name": "kube-api-access-abcde",
                    "readOnly": true,
                ],
            ])
        #expect(initContainer["terminationMessagePolicy"] == "FallbackToLogsOnError")
    }

    @Test("the app's capabilities: the proxy copies them, linkerd-init adds its own and keeps the drops it can")
    func capabilities() throws {
        let pod = makePod(
            annotations: [MeshKeys.inject: "enabled"],
            containers: [
                [
                    "name": "web", "image": "w",
                    "securityContext": [
                        "capabilities": ["add": ["NET_BIND_SERVICE", "NET_RAW"], "drop": ["ALL", "NET_ADMIN"]]
                    ],
                ]
            ])
        let (_, patched) = try injectAndApply(podRequest(pod))
        let facts = PodFacts(patched)
        #expect(
            facts.proxy?["securityContext"]?["capabilities"]
                == ["add": ["NET_BIND_SERVICE", "NET_RAW"], "drop": ["ALL", "NET_ADMIN"]])
        #expect(
            facts.container("linkerd-init")?["securityContext"]?["capabilities"]
                == ["add": ["NET_ADMIN", "NET_RAW", "NET_BIND_SERVICE"], "drop": ["ALL"]])
    }

    @Test(
        "classic placement",
        arguments: [
            (true, 0, "/spec/containers/0"),
            (false, 0, "/spec/containers/-"),
            (true, 15, "/spec/containers/0"),
        ])
    func classic(awaits: Bool, waitBeforeExit: Int, proxyPath: String) throws {
        var annotations = [
            MeshKeys.inject: "enabled", MeshKeys.nativeSidecar: "false",
            MeshKeys.proxyAwait: awaits ? "enabled" : "disabled",
        ]
        if waitBeforeExit > 0 {
            annotations[MeshKeys.waitBeforeExitSeconds] = String(waitBeforeExit)
        }
        let pod = makePod(
            annotations: annotations, containers: [["name": "a", "image": "a"], ["name": "b", "image": "b"]])
        let (result, patched) = try injectAndApply(podRequest(pod))
        let paths = paths(result.patch)
        #expect(paths.last == "add " + proxyPath)
        #expect(paths.contains("add /spec/initContainers/-"), "linkerd-init is appended")
        let facts = PodFacts(patched)
        #expect(facts.containerNames == (awaits ? ["linkerd-proxy", "a", "b"] : ["a", "b", "linkerd-proxy"]))
        #expect(facts.initContainerNames == ["linkerd-init"])
        let proxy = try #require(facts.proxy)
        #expect(proxy["restartPolicy"] == nil && proxy["startupProbe"] == nil)
        let postStart: JSONValue = [
            "exec": ["command": ["/usr/lib/linkerd/linkerd-await", "--timeout=2m", "--port=4191"]]
        ]
        let preStop: JSONValue = ["exec": ["command": ["/bin/sleep", .string(String(waitBeforeExit))]]]
        // `.none`, not `nil`: in a conditional of JSONValues a bare `nil` is JSON `null`.
        let expectedPostStart: JSONValue? = awaits ? .some(postStart) : .none
        let expectedPreStop: JSONValue? = waitBeforeExit > 0 ? .some(preStop) : .none
        #expect(proxy["lifecycle"]?["postStart"] == expectedPostStart)
        #expect(proxy["lifecycle"]?["preStop"] == expectedPreStop)
    }

    @Test("absent annotations, labels, volumes and init containers are created first")
    func absentRoots() throws {
        var pod = makePod(annotations: nil, labels: nil, containers: [["name": "web", "image": "w"]])
        pod["spec"]?["volumes"] = nil
        let request = podRequest(pod, namespaceAnnotations: [MeshKeys.inject: "enabled"])
        let (result, patched) = try injectAndApply(request)
        let paths = paths(result.patch)
        #expect(paths.firstIndex(of: "add /metadata/annotations") == 0)
        #expect(paths.contains("add /metadata/labels"))
        #expect(paths.contains("add /spec/volumes"))
        #expect(paths.contains("add /spec/initContainers"))
        #expect(PodFacts(patched).volumeNames.count == 3)
    }

    @Test("a pod template with no metadata gets one")
    func noMetadata() throws {
        let deployment: JSONValue = [
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": ["name": "web"],
            "spec": ["template": ["spec": ["containers": [["name": "web", "image": "w"]]]]],
        ]
        let (result, patched) = try injectAndApply(
            InjectionRequest(object: deployment, kind: "Deployment", namespace: "shop", origin: .cli))
        #expect(paths(result.patch).first == "add /spec/template/metadata")
        let facts = PodFacts(patched, tokens: ["spec", "template"])
        #expect(facts.annotations[MeshKeys.createdBy] == "linkerd/cli \(LinkerdVersion.current)")
        #expect(facts.labels["linkerd.io/proxy-deployment"] == "web")
    }

    @Test("CronJobs are injected in their job template, labelled with the CronJob")
    func cronJob() throws {
        let cronJob: JSONValue = [
            "apiVersion": "batch/v1", "kind": "CronJob", "metadata": ["name": "nightly", "namespace": "ops"],
            "spec": [
                "schedule": "@daily",
                "jobTemplate": ["spec": ["template": ["spec": ["containers": [["name": "job", "image": "j"]]]]]],
            ],
        ]
        let (result, patched) = try injectAndApply(
            InjectionRequest(object: cronJob, kind: "CronJob", namespace: "ops", origin: .cli))
        #expect(paths(result.patch).allSatisfy { $0.hasPrefix("add /spec/jobTemplate/spec/template/") })
        let facts = PodFacts(patched, tokens: ["spec", "jobTemplate", "spec", "template"])
        #expect(facts.labels["linkerd.io/proxy-cronjob"] == "nightly")
        #expect(facts.labels["linkerd.io/workload-ns"] == "ops")
        #expect(facts.initContainerNames == ["linkerd-init", "linkerd-proxy"])
    }

    @Test(
        "owner labels for pods",
        arguments: [
            ("deployment", "linkerd.io/proxy-deployment"), ("replicaset", "linkerd.io/proxy-replicaset"),
            ("replicationcontroller", "linkerd.io/proxy-replicationcontroller"), ("job", "linkerd.io/proxy-job"),
            ("daemonset", "linkerd.io/proxy-daemonset"), ("statefulset", "linkerd.io/proxy-statefulset"),
            ("cronjob", nil), ("pod", nil),
        ] as [(String, String?)])
    func ownerLabels(kind: String, label: String?) throws {
        let (_, patched) = try injectAndApply(
            podRequest(makePod(annotations: [MeshKeys.inject: "enabled"]), owner: WorkloadOwner(kind: kind, name: "o")))
        let ownerLabels = PodFacts(patched).labels.keys.filter { $0.hasPrefix("linkerd.io/proxy-") }
        #expect(ownerLabels == (label.map { [$0] } ?? []))
    }

    @Test("inbound ports: container ports and integer HTTP probe ports, sorted numerically, no duplicates")
    func inboundPorts() throws {
        let pod = makePod(
            annotations: [MeshKeys.inject: "enabled"],
            containers: [
                [
                    "name": "a", "image": "a", "ports": [["containerPort": 10000], ["containerPort": 80]],
                    "livenessProbe": ["httpGet": ["port": 9090]], "readinessProbe": ["httpGet": ["port": "named"]],
                ],
                ["name": "b", "image": "b", "ports": [["containerPort": 80], ["containerPort": 443]]],
            ],
            initContainers: [["name": "i", "image": "i", "ports": [["containerPort": 7]]]])
        let (_, patched) = try injectAndApply(podRequest(pod))
        #expect(PodFacts(patched).env("LINKERD2_PROXY_INBOUND_PORTS") == "80,443,9090,10000")
    }

    @Test("default opaque ports the pod exposes become its annotation, and the proxy's")
    func defaultOpaquePorts() throws {
        let pod = makePod(
            annotations: [MeshKeys.inject: "enabled"],
            containers: [["name": "db", "image": "d", "ports": [["containerPort": 5432], ["containerPort": 25]]]],
            initContainers: [["name": "c", "image": "c", "ports": [["containerPort": 11211]]]])
        let (_, patched) = try injectAndApply(podRequest(pod))
        let facts = PodFacts(patched)
        #expect(facts.annotations[MeshKeys.opaquePorts] == "25,5432,11211")
        #expect(facts.env("LINKERD2_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION") == "25,5432,11211")
        // The namespace's value is inherited instead of the default.
        let (_, inherited) = try injectAndApply(podRequest(pod, namespaceAnnotations: [MeshKeys.opaquePorts: "9"]))
        #expect(PodFacts(inherited).annotations[MeshKeys.opaquePorts] == "9")
    }

    @Test("CNI: the network validator replaces linkerd-init and its volume")
    func cni() throws {
        var configuration = testConfiguration
        configuration.cniEnabled = true
        let (_, patched) = try injectAndApply(
            podRequest(makePod(annotations: [MeshKeys.inject: "enabled"])), configuration: configuration)
        let facts = PodFacts(patched)
        #expect(facts.initContainerNames == ["linkerd-network-validator", "linkerd-proxy"])
        #expect(!facts.volumeNames.contains("linkerd-proxy-init-xtables-lock"))
        #expect(
            facts.container("linkerd-network-validator")?["args"] == [
                "--log-format", "plain", "--log-level", "debug", "--connect-addr", "1.1.1.1:20001", "--listen-addr",
                "0.0.0.0:4140", "--timeout", "10s",
            ])
    }

    @Test("IPv6 listen addresses")
    func ipv6() throws {
        var configuration = testConfiguration
        configuration.disableIPv6 = false
        let (_, patched) = try injectAndApply(
            podRequest(makePod(annotations: [MeshKeys.inject: "enabled"])), configuration: configuration)
        let facts = PodFacts(patched)
        #expect(facts.env("LINKERD2_PROXY_CONTROL_LISTEN_ADDR") == "[::]:4190")
        #expect(facts.env("LINKERD2_PROXY_ADMIN_LISTEN_ADDR") == "[::]:4191")
        #expect(facts.env("LINKERD2_PROXY_INBOUND_LISTEN_ADDR") == "[::]:4143")
        #expect(facts.env("LINKERD2_PROXY_OUTBOUND_LISTEN_ADDR") == "127.0.0.1:4140")
        #expect(facts.env("LINKERD2_PROXY_OUTBOUND_LISTEN_ADDRS") == "127.0.0.1:4140,[::1]:4140")
        #expect(!facts.initArgs.contains("--ipv6=false"))
    }

    @Test("no token projection: no token volume, the service account token file")
    func noProjection() throws {
        var configuration = testConfiguration
        configuration.serviceAccountTokenProjection = false
        let (_, patched) = try injectAndApply(
            podRequest(makePod(annotations: [MeshKeys.inject: "enabled"])), configuration: configuration)
        let facts = PodFacts(patched)
        #expect(!facts.volumeNames.contains("linkerd-identity-token"))
        #expect(
            facts.env("LINKERD2_PROXY_IDENTITY_TOKEN_FILE") == "/var/run/secrets/kubernetes.io/serviceaccount/token")
    }

    @Test("CPU quantities become worker counts")
    func cores() throws {
        for (request, limit, cores, maximum) in [
            ("100m", "1500m", "1", "2"), ("2", "2", "2", "2"), ("2500m", nil, "3", nil), (nil, "4", "1", "4"),
        ] as [(String?, String?, String, String?)] {
            var annotations = [MeshKeys.inject: "enabled"]
            annotations[MeshKeys.proxyCPURequest] = request
            annotations[MeshKeys.proxyCPULimit] = limit
            let (_, patched) = try injectAndApply(podRequest(makePod(annotations: annotations)))
            let facts = PodFacts(patched)
            #expect(facts.env("LINKERD2_PROXY_CORES") == cores)
            #expect(facts.env("LINKERD2_PROXY_CORES_MIN") == cores)
            #expect(facts.env("LINKERD2_PROXY_CORES_MAX") == maximum)
            #expect(facts.proxy?["resources"]?["requests"]?["cpu"]?.stringValue == request)
            #expect(facts.container("linkerd-init")?["resources"] == facts.proxy?["resources"])
        }
    }

    @Test("a Service gets only the default opaque ports its ports name")
    func serviceOpaquePorts() throws {
        let service: JSONValue = [
            "apiVersion": "v1", "kind": "Service", "metadata": ["name": "db"],
            "spec": [
                "ports": [
                    ["port": 3306], ["port": 80, "targetPort": 5432], ["port": 6379, "targetPort": "redis"],
                    ["port": 25, "targetPort": 8025], ["port": 9300, "targetPort": nil],
                ]
            ],
        ]
        let result = injector.inject(InjectionRequest(object: service, kind: "Service", namespace: "shop"))
        #expect(result.report.skipReasons == [.unsupportedResource])
        #expect(
            result.patch
                == JSONPatch([
                    .add(path: "/metadata/annotations", value: [:]),
                    .add(path: "/metadata/annotations/config.linkerd.io~1opaque-ports", value: "3306,5432,9300"),
                ]))
        // The namespace's value wins over the computed one; the Service's own annotation means no patch.
        let inherited = injector.inject(
            InjectionRequest(
                object: service, kind: "Service", namespace: "shop",
                namespaceAnnotations: [MeshKeys.opaquePorts: "1-100"]))
        #expect(
            inherited.patch?.operations.last
                == .add(path: "/metadata/annotations/config.linkerd.io~1opaque-ports", value: "1-100"))
        var annotated = service
        annotated["metadata"]?["annotations"] = [MeshKeys.opaquePorts: ""]
        #expect(injector.inject(InjectionRequest(object: annotated, kind: "Service", namespace: "shop")).patch == nil)
        var plain = service
        plain["spec"]?["ports"] = [["port": 80]]
        #expect(injector.inject(InjectionRequest(object: plain, kind: "Service", namespace: "shop")).patch == nil)
    }

    @Test("a skipped pod gets the opaque-ports annotation when it exposes default ports")
    func skippedPodOpaquePorts() throws {
        let pod = makePod(
            annotations: ["team": "a"],
            containers: [["name": "db", "image": "d", "ports": [["containerPort": 6379], ["containerPort": 80]]]])
        let result = injector.inject(podRequest(pod))
        #expect(result.report.skipReasons == [.injectionEnableAnnotationAbsent])
        #expect(
            result.patch
                == JSONPatch([.add(path: "/metadata/annotations/config.linkerd.io~1opaque-ports", value: "6379")]))
        #expect(injector.inject(podRequest(makePod(annotations: ["team": "a"]))).patch == nil, "8080 is not opaque")
    }

    @Test("annotating for injection (linkerd inject without --manual)")
    func annotateForInjection() throws {
        let deployment: JSONValue = [
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": ["name": "web"],
            "spec": [
                "template": [
                    "metadata": ["annotations": [MeshKeys.proxyCPURequest: "1"]],
                    "spec": ["containers": [["name": "web", "image": "w"]]],
                ]
            ],
        ]
        let patch = ProxyInjector.annotateForInjection(
            deployment, kind: "Deployment",
            annotations: [MeshKeys.proxyLogLevel: "debug", MeshKeys.proxyCPURequest: "1"])
        #expect(
            patch
                == JSONPatch([
                    .add(
                        path: "/spec/template/metadata/annotations/config.linkerd.io~1proxy-log-level", value: "debug"),
                    .add(path: "/spec/template/metadata/annotations/linkerd.io~1inject", value: "enabled"),
                ]))
        let patched = try #require(patch).apply(to: deployment)
        #expect(
            ProxyInjector.annotateForInjection(
                patched, kind: "Deployment", annotations: [MeshKeys.proxyLogLevel: "debug"]) == nil)
        #expect(
            ProxyInjector.annotateForInjection(patched, kind: "Deployment", annotations: [MeshKeys.inject: "ingress"])
                == JSONPatch([.add(path: "/spec/template/metadata/annotations/linkerd.io~1inject", value: "ingress")]))
        let cronJob: JSONValue = [
            "kind": "CronJob", "metadata": ["name": "c"],
            "spec": ["jobTemplate": ["spec": ["template": ["spec": ["containers": []]]]]],
        ]
        #expect(
            ProxyInjector.annotateForInjection(cronJob, kind: "CronJob")
                == JSONPatch([
                    .add(path: "/spec/jobTemplate/spec/template/metadata", value: [:]),
                    .add(path: "/spec/jobTemplate/spec/template/metadata/annotations", value: [:]),
                    .add(
                        path: "/spec/jobTemplate/spec/template/metadata/annotations/linkerd.io~1inject",
                        value: "enabled"),
                ]))
        let namespace: JSONValue = ["kind": "Namespace", "metadata": ["name": "n", "annotations": ["a": "b"]]]
        #expect(
            ProxyInjector.annotateForInjection(namespace, kind: "Namespace")
                == JSONPatch([.add(path: "/metadata/annotations/linkerd.io~1inject", value: "enabled")]))
        #expect(ProxyInjector.annotateForInjection(["kind": "Service"], kind: "Service") == nil)
    }

    @Test("every workload kind is injected in its pod template")
    func workloadKinds() throws {
        for kind in ["Deployment", "ReplicaSet", "ReplicationController", "StatefulSet", "DaemonSet", "Job"] {
            let object: JSONValue = [
                "kind": .string(kind), "metadata": ["name": "w"],
                "spec": [
                    "template": [
                        "metadata": ["labels": ["a": "b"]], "spec": ["containers": [["name": "c", "image": "i"]]],
                    ]
                ],
            ]
            let (_, patched) = try injectAndApply(
                InjectionRequest(object: object, kind: kind, namespace: "n", origin: .cli))
            let facts = PodFacts(patched, tokens: ["spec", "template"])
            #expect(facts.initContainerNames == ["linkerd-init", "linkerd-proxy"], "\(kind)")
            #expect(facts.labels["linkerd.io/proxy-\(kind.lowercased())"] == "w", "\(kind)")
        }
    }
}
