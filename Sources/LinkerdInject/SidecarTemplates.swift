import KubeModel
import LinkerdCore

/// The containers and volumes the injector adds, rendered as JSON (control-plane.md §2.6; upstream
/// `_proxy.tpl`, `_proxy-init.tpl`, `_network-validator.tpl`, `_debug.tpl`, `_volumes.tpl`).
///
/// Every builder returns a complete object; Kubernetes ignores key order, and golden files sort keys.
struct SidecarTemplates {
    let config: PodConfiguration
    /// The app's service account token mount (`containers[0]`), if any.
    let serviceAccountMount: [String: JSONValue]?
    /// The first app container's `securityContext.capabilities`, if any.
    let appCapabilities: [String: JSONValue]?
    /// The pod's inbound ports, for `LINKERD2_PROXY_INBOUND_PORTS`.
    let inboundPorts: [UInt16]

    private var mesh: MeshConfiguration { config.mesh }
    private var proxy: MeshConfiguration.Proxy { config.mesh.proxy }

    static let identityEndEntityPath = "/var/run/linkerd/identity/end-entity"
    static let identityTokenDirectory = "/var/run/secrets/tokens"
    static let xtablesLockPath = "/run"

    // MARK: - Volumes

    var xtablesLockVolume: JSONValue {
        ["name": .string(MeshKeys.xtablesLockVolumeName), "emptyDir": [:]]
    }

    var identityEndEntityVolume: JSONValue {
        ["name": .string(MeshKeys.identityEndEntityVolumeName), "emptyDir": ["medium": "Memory"]]
    }

    var identityTokenVolume: JSONValue {
        [
            "name": .string(MeshKeys.identityTokenVolumeName),
            "projected": [
                "sources": [
                    [
                        "serviceAccountToken": [
                            "audience": "identity.l5d.io", "expirationSeconds": 86400,
                            "path": .string(MeshKeys.identityTokenVolumeName),
                        ]
                    ]
                ]
            ],
        ]
    }

    // MARK: - Init containers

    /// `linkerd-init`: sets up the iptables redirection.
    var proxyInitContainer: JSONValue {
        let settings = mesh.proxyInit
        var args: [String] = []
        // Only `nft` names binaries; `legacy` uses proxy-init's defaults.
        if settings.iptablesMode == "nft" {
            args += ["--firewall-bin-path", "iptables-nft", "--firewall-save-bin-path", "iptables-nft-save"]
        }
        if mesh.disableIPv6 {
            args.append("--ipv6=false")
        }
        args += [
            "--incoming-proxy-port", String(proxy.ports.inbound), "--outgoing-proxy-port", String(proxy.ports.outbound),
            "--proxy-uid", String(proxy.uid),
        ]
        if proxy.gid >= 0 {
            args += ["--proxy-gid", String(proxy.gid)]
        }
        var inboundIgnored = "\(proxy.ports.control),\(proxy.ports.admin)"
        if !settings.ignoreInboundPorts.isEmpty {
            inboundIgnored += ",\(settings.ignoreInboundPorts)"
        }
        args += ["--inbound-ports-to-ignore", inboundIgnored]
        if !settings.ignoreOutboundPorts.isEmpty {
            args += ["--outbound-ports-to-ignore", settings.ignoreOutboundPorts.description]
        }
        if settings.closeWaitTimeoutSecs > 0 {
            args += ["--timeout-close-wait-secs", String(settings.closeWaitTimeoutSecs)]
        }
        if !settings.logFormat.isEmpty {
            args += ["--log-format", settings.logFormat]
        }
        if !settings.logLevel.isEmpty {
            args += ["--log-level", settings.logLevel]
        }
        if !settings.skipSubnets.isEmpty {
            args += ["--subnets-to-ignore", settings.skipSubnets.map(\.description).joined(separator: ",")]
        }

        let privileged = settings.closeWaitTimeoutSecs > 0 || settings.privileged
        var capabilities: [String: JSONValue] = [:]
        var added = ["NET_ADMIN", "NET_RAW"]
        for capability in Self.strings(appCapabilities?["add"]) where !added.contains(capability) {
            added.append(capability)
        }
        capabilities["add"] = .array(added.map(JSONValue.string))
        let dropped = Self.strings(appCapabilities?["drop"]).filter { $0 != "NET_ADMIN" && $0 != "NET_RAW" }
        if !dropped.isEmpty {
            capabilities["drop"] = .array(dropped.map(JSONValue.string))
        }
        var securityContext: [String: JSONValue] = [
            "allowPrivilegeEscalation": .bool(privileged),
            "privileged": .bool(privileged),
            "capabilities": .object(capabilities),
            "readOnlyRootFilesystem": true,
            "seccompProfile": ["type": "RuntimeDefault"],
        ]
        if settings.runAsRoot {
            securityContext["runAsNonRoot"] = false
            securityContext["runAsUser"] = 0
            securityContext["runAsGroup"] = 0
        } else {
            // A root user or group without runAsRoot falls back to nobody, as upstream's template does.
            securityContext["runAsNonRoot"] = true
            securityContext["runAsUser"] = .integer(settings.runAsUser == 0 ? 65534 : settings.runAsUser)
            securityContext["runAsGroup"] = .integer(settings.runAsGroup == 0 ? 65534 : settings.runAsGroup)
        }

        var mounts: [JSONValue] = [
            ["mountPath": .string(Self.xtablesLockPath), "name": .string(MeshKeys.xtablesLockVolumeName)]
        ]
        if let serviceAccountMount = serviceAccountMountCopy {
            mounts.append(serviceAccountMount)
        }
        var container: [String: JSONValue] = [
            "name": .string(MeshKeys.initContainerName),
            "image": .string(proxyImage),
            "imagePullPolicy": .string(proxy.imagePullPolicy),
            "command": ["/usr/lib/linkerd/linkerd2-proxy-init"],
            "args": .array(args.map(JSONValue.string)),
            "securityContext": .object(securityContext),
            "terminationMessagePolicy": "FallbackToLogsOnError",
            "volumeMounts": .array(mounts),
        ]
        // Upstream renders `resources: null` when there are none; an absent field means the same to Kubernetes.
        container["resources"] = resources
        return .object(container)
    }

    /// `linkerd-network-validator`: with the CNI plugin, checks that the pod's traffic is redirected.
    var networkValidatorContainer: JSONValue {
        let connect = mesh.disableIPv6 ? "1.1.1.1:20001" : "[fd00::1]:20001"
        let listen = mesh.disableIPv6 ? "0.0.0.0:\(proxy.ports.outbound)" : "[::]:\(proxy.ports.outbound)"
        var container: [String: JSONValue] = [
            "name": .string(MeshKeys.networkValidatorContainerName),
            "image": .string(proxyImage),
            "imagePullPolicy": .string(proxy.imagePullPolicy),
            "command": ["/usr/lib/linkerd/linkerd2-network-validator"],
            "args": [
                "--log-format", "plain", "--log-level", "debug", "--connect-addr", .string(connect), "--listen-addr",
                .string(listen), "--timeout", "10s",
            ],
            "securityContext": [
                "allowPrivilegeEscalation": false,
                "capabilities": ["drop": ["ALL"]],
                "readOnlyRootFilesystem": true,
                "runAsGroup": 65534,
                "runAsNonRoot": true,
                "runAsUser": 65534,
                "seccompProfile": ["type": "RuntimeDefault"],
            ],
            "terminationMessagePolicy": "FallbackToLogsOnError",
        ]
        container["resources"] = resources
        return .object(container)
    }

    // MARK: - Containers

    /// `linkerd-debug`: a shell with network tools next to the proxy.
    var debugContainer: JSONValue {
        [
            "name": .string(MeshKeys.debugContainerName),
            "image": .string(mesh.debugImage.reference),
            "imagePullPolicy": .string(mesh.debugImage.pullPolicy),
            "livenessProbe": ["exec": ["command": ["true"]]],
            "readinessProbe": ["exec": ["command": ["true"]]],
            "terminationMessagePolicy": "FallbackToLogsOnError",
        ]
    }

    /// `linkerd-proxy`, as a native sidecar (an init container with `restartPolicy: Always`) or a classic one.
    var proxyContainer: JSONValue {
        let admin = Int64(proxy.ports.admin)
        var container: [String: JSONValue] = [
            "name": .string(MeshKeys.proxyContainerName),
            "image": .string(proxyImage),
            "imagePullPolicy": .string(proxy.imagePullPolicy),
            "env": .array(environment),
            "livenessProbe": [
                "httpGet": ["path": "/live", "port": .integer(admin)], "initialDelaySeconds": 10, "timeoutSeconds": 1,
            ],
            "readinessProbe": [
                "httpGet": ["path": "/ready", "port": .integer(admin)], "initialDelaySeconds": 2, "timeoutSeconds": 1,
            ],
            "ports": [
                ["containerPort": .integer(Int64(proxy.ports.inbound)), "name": "linkerd-proxy"],
                ["containerPort": .integer(admin), "name": "linkerd-admin"],
            ],
            "securityContext": .object(proxySecurityContext),
            "terminationMessagePolicy": "FallbackToLogsOnError",
            "volumeMounts": .array(proxyVolumeMounts),
        ]
        container["resources"] = resources
        if proxy.nativeSidecar {
            container["restartPolicy"] = "Always"
            if proxy.await {
                container["startupProbe"] = [
                    "httpGet": ["path": "/ready", "port": .integer(admin)],
                    "initialDelaySeconds": 0, "periodSeconds": 1, "failureThreshold": 120,
                ]
            }
        } else {
            var lifecycle: [String: JSONValue] = [:]
            if proxy.await {
                lifecycle["postStart"] = [
                    "exec": ["command": ["/usr/lib/linkerd/linkerd-await", "--timeout=2m", .string("--port=\(admin)")]]
                ]
            }
            if proxy.waitBeforeExitSeconds > 0 {
                lifecycle["preStop"] = [
                    "exec": ["command": ["/bin/sleep", .string(String(proxy.waitBeforeExitSeconds))]]
                ]
            }
            if !lifecycle.isEmpty {
                container["lifecycle"] = .object(lifecycle)
            }
        }
        return .object(container)
    }

    private var proxySecurityContext: [String: JSONValue] {
        var context: [String: JSONValue] = [
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "runAsNonRoot": true,
            "runAsUser": .integer(proxy.uid),
            "seccompProfile": ["type": "RuntimeDefault"],
        ]
        if let appCapabilities {
            context["capabilities"] = .object(appCapabilities)
        }
        if proxy.gid >= 0 {
            context["runAsGroup"] = .integer(proxy.gid)
        }
        return context
    }

    private var proxyVolumeMounts: [JSONValue] {
        var mounts: [JSONValue] = [
            ["mountPath": .string(Self.identityEndEntityPath), "name": .string(MeshKeys.identityEndEntityVolumeName)]
        ]
        if mesh.serviceAccountTokenProjection {
            mounts.append(
                ["mountPath": .string(Self.identityTokenDirectory), "name": .string(MeshKeys.identityTokenVolumeName)])
        }
        if let serviceAccountMountCopy {
            mounts.append(serviceAccountMountCopy)
        }
        return mounts
    }

    /// The app's service account mount as the sidecars mount it: same name and path, `readOnly` as the app has it.
    private var serviceAccountMountCopy: JSONValue? {
        guard let serviceAccountMount, let name = serviceAccountMount["name"]?.stringValue else { return nil }
        return [
            "name": .string(name),
            "mountPath": .string(PodView.serviceAccountMountPath),
            "readOnly": serviceAccountMount["readOnly"] == .bool(true) ? true : false,
        ]
    }

    private var proxyImage: String {
        "\(proxy.imageName):\(mesh.proxyVersion)"
    }

    /// The proxy's requests and limits, or nil when none is set.
    var resources: JSONValue? {
        var requests: [String: JSONValue] = [:]
        var limits: [String: JSONValue] = [:]
        let constraints = [
            ("cpu", proxy.resources.cpu), ("memory", proxy.resources.memory),
            ("ephemeral-storage", proxy.resources.ephemeralStorage),
        ]
        for (name, constraint) in constraints {
            if let request = constraint.request {
                requests[name] = .string(request.description)
            }
            if let limit = constraint.limit {
                limits[name] = .string(limit.description)
            }
        }
        var resources: [String: JSONValue] = [:]
        if !requests.isEmpty { resources["requests"] = .object(requests) }
        if !limits.isEmpty { resources["limits"] = .object(limits) }
        return resources.isEmpty ? nil : .object(resources)
    }

    // MARK: - Environment

    /// The proxy's environment, in upstream's order (§2.6), then the additional variables.
    var environment: [JSONValue] {
        let namespace = mesh.controlPlaneNamespace
        let domain = mesh.clusterDomain
        let trustDomain = mesh.identityTrustDomain
        let ports = proxy.ports
        let networks = mesh.clusterNetworks.map(\.description).joined(separator: ",")
        let anyAddress = mesh.disableIPv6 ? "0.0.0.0" : "[::]"
        func identity(_ serviceAccount: String) -> String {
            "\(serviceAccount).\(namespace).serviceaccount.identity.\(namespace).\(trustDomain)"
        }

        var env: [JSONValue] = [
            Self.field("_pod_name", "metadata.name"),
            Self.field("_pod_ns", "metadata.namespace"),
            Self.field("_pod_uid", "metadata.uid"),
            Self.field("_pod_ip", "status.podIP"),
            Self.field("_pod_nodeName", "spec.nodeName"),
            Self.value("_pod_containerName", MeshKeys.proxyContainerName),
        ]
        let (minimumCores, maximumCores) = cores
        env.append(Self.value("LINKERD2_PROXY_CORES", String(minimumCores)))
        env.append(Self.value("LINKERD2_PROXY_CORES_MIN", String(minimumCores)))
        if let maximumCores {
            env.append(Self.value("LINKERD2_PROXY_CORES_MAX", String(maximumCores)))
        }
        if let ratio = config.coresMaxRatio {
            env.append(Self.value("LINKERD2_PROXY_CORES_MAX_RATIO", ratio))
        }
        if !proxy.requireIdentityOnInboundPorts.isEmpty {
            env.append(
                Self.value(
                    "LINKERD2_PROXY_INBOUND_PORTS_REQUIRE_IDENTITY", proxy.requireIdentityOnInboundPorts.description))
        }
        var log = proxy.logLevel
        if proxy.logHTTPHeaders == "off" {
            log += ",[{headers}]=off,[{request}]=off"
        }
        env += [
            Self.value("LINKERD2_PROXY_SHUTDOWN_ENDPOINT_ENABLED", String(proxy.enableShutdownEndpoint)),
            Self.value("LINKERD2_PROXY_LOG", log),
            Self.value("LINKERD2_PROXY_LOG_FORMAT", proxy.logFormat),
            Self.value("LINKERD2_PROXY_DESTINATION_SVC_ADDR", "linkerd-dst-headless.\(namespace).svc.\(domain).:8086"),
            Self.value("LINKERD2_PROXY_DESTINATION_PROFILE_NETWORKS", networks),
            Self.value("LINKERD2_PROXY_POLICY_SVC_ADDR", "linkerd-policy.\(namespace).svc.\(domain).:8090"),
            Self.value("LINKERD2_PROXY_POLICY_WORKLOAD", "{\"ns\":\"$(_pod_ns)\", \"pod\":\"$(_pod_name)\"}\n"),
            Self.value("LINKERD2_PROXY_INBOUND_DEFAULT_POLICY", proxy.defaultInboundPolicy.rawValue),
            Self.value("LINKERD2_PROXY_POLICY_CLUSTER_NETWORKS", networks),
            Self.value("LINKERD2_PROXY_CONTROL_STREAM_INITIAL_TIMEOUT", "3s"),
            Self.value("LINKERD2_PROXY_CONTROL_STREAM_IDLE_TIMEOUT", "5m"),
            Self.value("LINKERD2_PROXY_CONTROL_STREAM_LIFETIME", "1h"),
            Self.value("LINKERD2_PROXY_INBOUND_CONNECT_TIMEOUT", proxy.inboundConnectTimeout),
            Self.value("LINKERD2_PROXY_OUTBOUND_CONNECT_TIMEOUT", proxy.outboundConnectTimeout),
            Self.value("LINKERD2_PROXY_OUTBOUND_DISCOVERY_IDLE_TIMEOUT", proxy.outboundDiscoveryCacheUnusedTimeout),
            Self.value("LINKERD2_PROXY_INBOUND_DISCOVERY_IDLE_TIMEOUT", proxy.inboundDiscoveryCacheUnusedTimeout),
        ]
        if proxy.disableOutboundProtocolDetectTimeout {
            env.append(Self.value("LINKERD2_PROXY_OUTBOUND_DETECT_TIMEOUT", "365d"))
        }
        if proxy.disableInboundProtocolDetectTimeout {
            env.append(Self.value("LINKERD2_PROXY_INBOUND_DETECT_TIMEOUT", "365d"))
        }
        let outbound =
            mesh.disableIPv6 ? "127.0.0.1:\(ports.outbound)" : "127.0.0.1:\(ports.outbound),[::1]:\(ports.outbound)"
        env += [
            Self.value("LINKERD2_PROXY_CONTROL_LISTEN_ADDR", "\(anyAddress):\(ports.control)"),
            Self.value("LINKERD2_PROXY_ADMIN_LISTEN_ADDR", "\(anyAddress):\(ports.admin)"),
            Self.value("LINKERD2_PROXY_OUTBOUND_LISTEN_ADDR", "127.0.0.1:\(ports.outbound)"),
            Self.value("LINKERD2_PROXY_OUTBOUND_LISTEN_ADDRS", outbound),
            Self.value("LINKERD2_PROXY_INBOUND_LISTEN_ADDR", "\(anyAddress):\(ports.inbound)"),
            Self.field("LINKERD2_PROXY_INBOUND_IPS", "status.podIPs"),
        ]
        if !inboundPorts.isEmpty {
            env.append(Self.value("LINKERD2_PROXY_INBOUND_PORTS", inboundPorts.map(String.init).joined(separator: ",")))
        }
        if config.isGateway {
            env.append(Self.value("LINKERD2_PROXY_INBOUND_GATEWAY_SUFFIXES", "svc.\(domain)."))
        }
        if config.isIngress {
            env.append(Self.value("LINKERD2_PROXY_INGRESS_MODE", "true"))
        }
        env += [
            Self.value(
                "LINKERD2_PROXY_DESTINATION_PROFILE_SUFFIXES", proxy.enableExternalProfiles ? "." : "svc.\(domain)."),
            Self.value("LINKERD2_PROXY_INBOUND_ACCEPT_KEEPALIVE", "10000ms"),
            Self.value("LINKERD2_PROXY_OUTBOUND_CONNECT_KEEPALIVE", "10000ms"),
            Self.value("LINKERD2_PROXY_INBOUND_ACCEPT_USER_TIMEOUT", "30s"),
            Self.value("LINKERD2_PROXY_OUTBOUND_CONNECT_USER_TIMEOUT", "30s"),
            Self.value("LINKERD2_PROXY_OUTBOUND_METRICS_HOSTNAME_LABELS", String(proxy.metricsHostnameLabels)),
            Self.value("LINKERD2_PROXY_INBOUND_SERVER_HTTP2_KEEP_ALIVE_INTERVAL", "10s"),
            Self.value("LINKERD2_PROXY_INBOUND_SERVER_HTTP2_KEEP_ALIVE_TIMEOUT", "3s"),
            Self.value("LINKERD2_PROXY_OUTBOUND_SERVER_HTTP2_KEEP_ALIVE_INTERVAL", "10s"),
            Self.value("LINKERD2_PROXY_OUTBOUND_SERVER_HTTP2_KEEP_ALIVE_TIMEOUT", "3s"),
        ]
        if !config.opaquePorts.isEmpty {
            env.append(Self.value("LINKERD2_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION", config.opaquePorts))
        }
        let tokenFile =
            mesh.serviceAccountTokenProjection
            ? "\(Self.identityTokenDirectory)/\(MeshKeys.identityTokenVolumeName)"
            : "\(PodView.serviceAccountMountPath)/token"
        env += [
            Self.value(
                "LINKERD2_PROXY_DESTINATION_CONTEXT",
                "{\"ns\":\"$(_pod_ns)\", \"nodeName\":\"$(_pod_nodeName)\", \"pod\":\"$(_pod_name)\"}\n"),
            Self.field("_pod_sa", "spec.serviceAccountName"),
            Self.value("_l5d_ns", namespace),
            Self.value("_l5d_trustdomain", trustDomain),
            Self.value("LINKERD2_PROXY_IDENTITY_DIR", Self.identityEndEntityPath),
            Self.value("LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS", mesh.trustAnchorsPEM),
            Self.value("LINKERD2_PROXY_IDENTITY_TOKEN_FILE", tokenFile),
            Self.value(
                "LINKERD2_PROXY_IDENTITY_SVC_ADDR", "linkerd-identity-headless.\(namespace).svc.\(domain).:8080"),
            Self.value(
                "LINKERD2_PROXY_IDENTITY_LOCAL_NAME",
                "$(_pod_sa).$(_pod_ns).serviceaccount.identity.\(namespace).\(trustDomain)"),
            Self.value("LINKERD2_PROXY_IDENTITY_SVC_NAME", identity("linkerd-identity")),
            Self.value("LINKERD2_PROXY_DESTINATION_SVC_NAME", identity("linkerd-destination")),
            Self.value("LINKERD2_PROXY_POLICY_SVC_NAME", identity("linkerd-destination")),
        ]
        if !proxy.accessLog.isEmpty {
            env.append(Self.value("LINKERD2_PROXY_ACCESS_LOG", proxy.accessLog))
        }
        if !proxy.shutdownGracePeriod.isEmpty {
            env.append(Self.value("LINKERD2_PROXY_SHUTDOWN_GRACE_PERIOD", proxy.shutdownGracePeriod))
        }
        return env + config.additionalEnv
    }

    /// The proxy's worker threads: at least the whole cores of the CPU request (minimum 1), at most those of the
    /// CPU limit (unset without one). Values and annotations count alike.
    var cores: (minimum: Int64, maximum: Int64?) {
        func wholeCores(_ quantity: Quantity) -> Int64 {
            let milli = quantity.milliValue
            return milli <= 0 ? 0 : (milli / 1000) + (milli % 1000 == 0 ? 0 : 1)
        }
        let minimum = max(1, proxy.resources.cpu.request.map(wholeCores) ?? 1)
        let maximum = proxy.resources.cpu.limit.map(wholeCores).flatMap { $0 > 0 ? max($0, minimum) : nil }
        return (minimum, maximum)
    }

    private static func value(_ name: String, _ value: String) -> JSONValue {
        ["name": .string(name), "value": .string(value)]
    }

    private static func field(_ name: String, _ path: String) -> JSONValue {
        ["name": .string(name), "valueFrom": ["fieldRef": ["fieldPath": .string(path)]]]
    }

    private static func strings(_ value: JSONValue?) -> [String] {
        value?.arrayValue?.compactMap(\.stringValue) ?? []
    }
}
