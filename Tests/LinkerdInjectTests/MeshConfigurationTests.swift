import KubeModel
import LinkerdCore
import LinkerdInject
import Testing

@Suite("Mesh configuration values")
struct MeshConfigurationTests {
    @Test("an empty document keeps upstream's defaults")
    func defaults() throws {
        let configuration = try MeshConfiguration(valuesYAML: "", trustAnchorsPEM: "PEM")
        var expected = MeshConfiguration.defaults
        expected.trustAnchorsPEM = "PEM"
        #expect(configuration == expected)
        #expect(configuration.controlPlaneNamespace == "linkerd")
        #expect(configuration.clusterDomain == "cluster.local")
        #expect(configuration.identityTrustDomain == "cluster.local")
        #expect(configuration.linkerdVersion == LinkerdVersion.current)
        #expect(configuration.proxyVersion == LinkerdVersion.current)
        #expect(configuration.proxy.imageName == "cr.l5d.io/linkerd/proxy")
        #expect(configuration.proxy.ports == MeshConfiguration.Ports())
        #expect(configuration.proxy.ports.admin == 4191 && configuration.proxy.ports.inbound == 4143)
        #expect(configuration.proxy.uid == 2102 && configuration.proxy.gid == -1)
        #expect(configuration.proxy.opaquePorts.description == "25,587,3306,4444,5432,6379,9300,11211")
        #expect(configuration.proxy.defaultInboundPolicy == .allUnauthenticated)
        #expect(configuration.proxy.nativeSidecar && configuration.proxy.await)
        #expect(configuration.proxyInit.iptablesMode == "nft")
        #expect(configuration.proxyInit.ignoreInboundPorts.description == "4567,4568")
        #expect(configuration.proxyInit.runAsUser == 65534)
        #expect(!configuration.cniEnabled && configuration.disableIPv6)
        #expect(
            configuration.clusterNetworks.map(\.description)
                == ["10.0.0.0/8", "100.64.0.0/10", "172.16.0.0/12", "192.168.0.0/16", "fd00::/8"])
        #expect(configuration.serviceAccountTokenProjection)
        #expect(configuration.debugImage.reference == "cr.l5d.io/linkerd/debug:\(LinkerdVersion.current)")
    }

    @Test("the trust root digest is the lowercase hex SHA-256 of the PEM text")
    func trustRootDigest() throws {
        let configuration = try MeshConfiguration(valuesYAML: "", trustAnchorsPEM: "abc")
        #expect(configuration.trustRootSHA256 == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(MeshConfiguration.defaults.trustRootSHA256.count == 64)
    }

    @Test("every documented key is read")
    func everyKey() throws {
        let yaml = """
            namespace: mesh
            clusterDomain: example.org
            linkerdVersion: edge-1.2.3
            imagePullPolicy: Never
            cniEnabled: true
            disableIPv6: false
            clusterNetworks: 10.0.0.0/8
            identity:
              serviceAccountTokenProjection: false
            debugContainer:
              image:
                name: dbg
                pullPolicy: Always
            proxy:
              image: {name: px, version: v2, pullPolicy: IfNotPresent}
              ports: {admin: 1, control: 2, inbound: 3, outbound: 4}
              uid: 7
              gid: 8
              logLevel: trace
              logFormat: json
              logHTTPHeaders: insecure
              opaquePorts: 1-10,99
              defaultInboundPolicy: deny
              nativeSidecar: false
              await: false
              enableShutdownEndpoint: true
              waitBeforeExitSeconds: 9
              resources:
                cpu: {request: 100m, limit: 2}
                memory: {request: 10Mi, limit: ""}
              additionalEnv: [{name: A, value: b}]
              outboundConnectTimeout: 3s
              inboundConnectTimeout: 4s
              outboundDiscoveryCacheUnusedTimeout: 6s
              inboundDiscoveryCacheUnusedTimeout: 7s
              disableOutboundProtocolDetectTimeout: true
              disableInboundProtocolDetectTimeout: true
              requireIdentityOnInboundPorts: "8080"
              enableExternalProfiles: true
              metrics: {hostnameLabels: true}
              accessLog: apache
              shutdownGracePeriod: 30s
            proxyInit:
              iptablesMode: legacy
              ignoreInboundPorts: 22
              ignoreOutboundPorts: "443,6443"
              skipSubnets: 169.254.0.0/16
              runAsRoot: true
              privileged: true
              runAsUser: 1
              runAsGroup: 2
              closeWaitTimeoutSecs: 60
              logLevel: debug
              logFormat: json
            """
        let configuration = try MeshConfiguration(valuesYAML: yaml, trustAnchorsPEM: "")
        #expect(configuration.controlPlaneNamespace == "mesh")
        #expect(configuration.clusterDomain == "example.org")
        #expect(configuration.identityTrustDomain == "example.org", "falls back to the cluster domain")
        #expect(configuration.linkerdVersion == "edge-1.2.3")
        #expect(configuration.proxyVersion == "v2")
        #expect(configuration.cniEnabled && !configuration.disableIPv6)
        #expect(configuration.clusterNetworks.map(\.description) == ["10.0.0.0/8"])
        #expect(!configuration.serviceAccountTokenProjection)
        #expect(configuration.debugImage == .init(name: "dbg", version: "edge-1.2.3", pullPolicy: "Always"))
        let proxy = configuration.proxy
        #expect(proxy.imageName == "px" && proxy.imagePullPolicy == "IfNotPresent")
        #expect([proxy.ports.admin, proxy.ports.control, proxy.ports.inbound, proxy.ports.outbound] == [1, 2, 3, 4])
        #expect(proxy.uid == 7 && proxy.gid == 8)
        #expect(proxy.logLevel == "trace" && proxy.logFormat == "json" && proxy.logHTTPHeaders == "insecure")
        #expect(proxy.opaquePorts.description == "1-10,99")
        #expect(proxy.defaultInboundPolicy == .deny)
        #expect(!proxy.nativeSidecar && !proxy.await && proxy.enableShutdownEndpoint)
        #expect(proxy.waitBeforeExitSeconds == 9)
        #expect(proxy.resources.cpu.request?.description == "100m" && proxy.resources.cpu.limit?.description == "2")
        #expect(proxy.resources.memory.request?.description == "10Mi" && proxy.resources.memory.limit == nil)
        #expect(proxy.resources.ephemeralStorage == .init())
        #expect(proxy.additionalEnv == [["name": "A", "value": "b"]])
        #expect(proxy.outboundConnectTimeout == "3s" && proxy.inboundConnectTimeout == "4s")
        #expect(proxy.outboundDiscoveryCacheUnusedTimeout == "6s" && proxy.inboundDiscoveryCacheUnusedTimeout == "7s")
        #expect(proxy.disableOutboundProtocolDetectTimeout && proxy.disableInboundProtocolDetectTimeout)
        #expect(proxy.requireIdentityOnInboundPorts.description == "8080")
        #expect(proxy.enableExternalProfiles && proxy.metricsHostnameLabels)
        #expect(proxy.accessLog == "apache" && proxy.shutdownGracePeriod == "30s")
        let proxyInit = configuration.proxyInit
        #expect(proxyInit.iptablesMode == "legacy")
        #expect(proxyInit.ignoreInboundPorts.description == "22")
        #expect(proxyInit.ignoreOutboundPorts.description == "443,6443")
        #expect(proxyInit.skipSubnets.map(\.description) == ["169.254.0.0/16"])
        #expect(proxyInit.runAsRoot && proxyInit.privileged)
        #expect(proxyInit.runAsUser == 1 && proxyInit.runAsGroup == 2)
        #expect(proxyInit.closeWaitTimeoutSecs == 60)
        #expect(proxyInit.logLevel == "debug" && proxyInit.logFormat == "json")
    }

    @Test("JSON values parse too, and an explicit trust domain wins")
    func jsonDocument() throws {
        let configuration = try MeshConfiguration(
            valuesYAML: #"{"identityTrustDomain":"td.example","proxy":{"image":{"version":""},"gid":-1}}"#,
            trustAnchorsPEM: "")
        #expect(configuration.identityTrustDomain == "td.example")
        #expect(configuration.proxyVersion == LinkerdVersion.current, "an empty version falls back")
        #expect(configuration.proxy.gid == -1)
    }

    @Test("unknown keys and nulls are ignored")
    func unknownKeys() throws {
        let configuration = try MeshConfiguration(
            valuesYAML: "controllerReplicas: 3\nproxy:\n  uid: null\n  unknown: {a: 1}\nproxyInit: ~\n",
            trustAnchorsPEM: "")
        #expect(configuration.proxy.uid == 2102)
        #expect(configuration.proxyInit == MeshConfiguration.ProxyInit())
    }

    @Test(
        "a wrong type or value names the key path and the value",
        arguments: [
            ("proxy:\n  uid: abc", "proxy.uid", "\"abc\"", "expected an integer"),
            ("proxy:\n  uid: 1.5", "proxy.uid", "1.5", "expected an integer"),
            ("proxy:\n  ports:\n    admin: 70000", "proxy.ports.admin", "70000", "from 1 to 65535"),
            ("proxy:\n  nativeSidecar: \"yes\"", "proxy.nativeSidecar", "\"yes\"", "expected true or false"),
            ("proxy:\n  gid: -2", "proxy.gid", "-2", "from -1 to"),
            ("proxy:\n  opaquePorts: 80-70", "proxy.opaquePorts", "\"80-70\"", "greater than the end"),
            ("proxy:\n  defaultInboundPolicy: open", "proxy.defaultInboundPolicy", "\"open\"", "expected one of"),
            (
                "proxy:\n  resources:\n    cpu:\n      request: lots", "proxy.resources.cpu.request", "\"lots\"",
                "quantity"
            ),
            ("proxy:\n  additionalEnv: {name: A}", "proxy.additionalEnv", "{\"name\":\"A\"}", "expected a list"),
            ("proxy:\n  additionalEnv: [{value: x}]", "proxy.additionalEnv[0]", "{\"value\":\"x\"}", "\"name\""),
            ("proxy:\n  logLevel: [a]", "proxy.logLevel", "[\"a\"]", "expected a string"),
            ("proxy: 5", "proxy", "5", "expected a mapping"),
            ("proxyInit:\n  iptablesMode: iptables", "proxyInit.iptablesMode", "\"iptables\"", "nft or legacy"),
            ("proxyInit:\n  skipSubnets: 10.0.0.0/33", "proxyInit.skipSubnets", "\"10.0.0.0/33\"", "CIDR"),
            ("clusterNetworks: nope", "clusterNetworks", "\"nope\"", "CIDR"),
            ("cniEnabled: 1", "cniEnabled", "1", "expected true or false"),
            ("namespace: 3", "namespace", "3", "expected a string"),
        ])
    func wrongTypes(yaml: String, keyPath: String, value: String, reason: String) {
        #expect {
            _ = try MeshConfiguration(valuesYAML: yaml, trustAnchorsPEM: "")
        } throws: { error in
            guard let error = error as? MeshConfigurationError else { return false }
            return error.keyPath == keyPath && error.value == value && error.reason.contains(reason)
                && error.description.contains("\(keyPath)=\(value)")
        }
    }

    @Test("a document that is not a YAML mapping is rejected", arguments: ["[1, 2]", "just text", "a: [1, 2"])
    func notAMapping(yaml: String) {
        #expect {
            _ = try MeshConfiguration(valuesYAML: yaml, trustAnchorsPEM: "")
        } throws: { error in
            guard let error = error as? MeshConfigurationError else { return false }
            return error.keyPath.isEmpty && error.description.hasPrefix("mesh configuration values are invalid")
        }
    }
}
