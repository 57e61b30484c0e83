import Foundation
import KubeModel
import LinkerdCLI
import LinkerdInject
import Testing

@Suite("linkerd inject")
struct InjectCommandTests {
    /// `object` with `annotations` added to the metadata of its pod (template), or its own metadata for a Namespace.
    private func annotating(_ object: JSONValue, with annotations: [String: String]) -> JSONValue {
        let kind = object["kind"]?.stringValue ?? ""
        var path: [String]
        switch kind {
        case "Pod", "Namespace", "Service": path = ["metadata"]
        case "CronJob": path = ["spec", "jobTemplate", "spec", "template", "metadata"]
        default: path = ["spec", "template", "metadata"]
        }
        path.append("annotations")
        func update(_ value: JSONValue, _ path: ArraySlice<String>) -> JSONValue {
            guard let key = path.first else {
                var members = value.objectValue ?? [:]
                for (name, text) in annotations { members[name] = .string(text) }
                return .object(members)
            }
            var members = value.objectValue ?? [:]
            members[key] = update(members[key] ?? .object([:]), path.dropFirst())
            return .object(members)
        }
        return update(object, path[...])
    }

    @Test("Without --manual: pod templates and namespaces get linkerd.io/inject, everything else is unchanged")
    func annotationOnly() throws {
        let input = try Fixture.text("workloads.yaml")
        let outcome = linkerd(["inject", Fixture.path("workloads.yaml")])
        #expect(outcome.exitCode == 0, "\(outcome.standardError)")
        let original = try objects(input)
        let expected = original.map { object -> JSONValue in
            switch object["kind"]?.stringValue {
            case "Service", "ConfigMap": return object
            case "List":
                var list = object
                list["items"] = .array(
                    (object["items"]?.arrayValue ?? []).map { annotating($0, with: ["linkerd.io/inject": "enabled"]) })
                return list
            default: return annotating(object, with: ["linkerd.io/inject": "enabled"])
            }
        }
        #expect(try objects(outcome.standardOutput) == expected)
        #expect(
            outcome.standardError == """
                namespace "emojivoto" annotated
                deployment "web" injected
                service "web-svc" skipped: only --opaque-ports applies to services
                configmap "web-config" skipped: this resource kind is unsupported
                cronjob "cleanup" injected
                pod "debug" injected
                statefulset "db" injected
                daemonset "agent" injected

                """)
    }

    private static let deployment = """
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: web, namespace: shop}
        spec:
          selector: {matchLabels: {app: web}}
          template:
            metadata: {labels: {app: web}}
            spec:
              containers:
                - name: web
                  image: nginx:1.25
                  ports: [{name: http, containerPort: 8080}]
        """

    @Test("Each proxy flag becomes its config.linkerd.io annotation on the pod template")
    func flagsBecomeAnnotations() throws {
        let outcome = linkerd(
            [
                "inject", "--opaque-ports", "25,http,9000-9100", "--skip-inbound-ports", "1000-2000,4567",
                "--skip-outbound-ports", "3306", "--skip-subnets", "10.0.0.0/8,fd00::/8", "--proxy-uid", "2102",
                "--proxy-gid=-1", "--proxy-version", "v2.1", "--proxy-image", "registry.example/proxy",
                "--proxy-log-level", "warn,linkerd=debug", "--proxy-cpu-request", "100m", "--proxy-cpu-limit", "1",
                "--proxy-memory-request", "20Mi", "--proxy-memory-limit", "250Mi", "--admin-port", "5191",
                "--inbound-port", "5143", "--outbound-port", "5140", "--control-port", "5190",
                "--default-inbound-policy", "cluster-authenticated", "--no-native-sidecar", "--no-await", "-",
            ], standardInput: Self.deployment)
        #expect(outcome.exitCode == 0, "\(outcome.standardError)")
        let object = try #require(try objects(outcome.standardOutput).first)
        let expected: [String: JSONValue] = [
            "linkerd.io/inject": "enabled",
            "config.linkerd.io/opaque-ports": "25,http,9000-9100",
            "config.linkerd.io/skip-inbound-ports": "1000-2000,4567",
            "config.linkerd.io/skip-outbound-ports": "3306",
            "config.linkerd.io/skip-subnets": "10.0.0.0/8,fd00::/8",
            "config.linkerd.io/proxy-uid": "2102",
            "config.linkerd.io/proxy-gid": "-1",
            "config.linkerd.io/proxy-version": "v2.1",
            "config.linkerd.io/proxy-image": "registry.example/proxy",
            "config.linkerd.io/proxy-log-level": "warn,linkerd=debug",
            "config.linkerd.io/proxy-cpu-request": "100m",
            "config.linkerd.io/proxy-cpu-limit": "1",
            "config.linkerd.io/proxy-memory-request": "20Mi",
            "config.linkerd.io/proxy-memory-limit": "250Mi",
            "config.linkerd.io/admin-port": "5191",
            "config.linkerd.io/inbound-port": "5143",
            "config.linkerd.io/outbound-port": "5140",
            "config.linkerd.io/control-port": "5190",
            "config.linkerd.io/default-inbound-policy": "cluster-authenticated",
            "config.linkerd.io/proxy-enable-native-sidecar": "false",
            "config.linkerd.io/proxy-await": "disabled",
        ]
        #expect(podAnnotations(object) == expected)
    }

    @Test("--ingress, --native-sidecar and --await")
    func switches() throws {
        let outcome = linkerd(
            ["inject", "--ingress", "--native-sidecar", "--await", "-"], standardInput: Self.deployment)
        #expect(outcome.exitCode == 0, "\(outcome.standardError)")
        let object = try #require(try objects(outcome.standardOutput).first)
        #expect(
            podAnnotations(object) == [
                "linkerd.io/inject": "ingress",
                "config.linkerd.io/proxy-enable-native-sidecar": "true",
                "config.linkerd.io/proxy-await": "enabled",
            ])
    }

    @Test("Namespaces get the flag annotations too; Services only --opaque-ports")
    func namespacesAndServices() throws {
        let input = """
            apiVersion: v1
            kind: Namespace
            metadata: {name: shop, annotations: {owner: team-a}}
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: db, namespace: shop}
            spec: {ports: [{port: 5432}]}
            """
        let outcome = linkerd(
            ["inject", "--opaque-ports", "5432", "--proxy-log-level", "debug", "-"], standardInput: input)
        #expect(outcome.exitCode == 0, "\(outcome.standardError)")
        let output = try objects(outcome.standardOutput)
        #expect(
            output.first.flatMap(podAnnotations) == [
                "owner": "team-a", "linkerd.io/inject": "enabled", "config.linkerd.io/opaque-ports": "5432",
                "config.linkerd.io/proxy-log-level": "debug",
            ])
        #expect(output.last.flatMap(podAnnotations) == ["config.linkerd.io/opaque-ports": "5432"])
        #expect(outcome.standardError == "namespace \"shop\" annotated\nservice \"db\" annotated\n")
    }

    @Test(
        "Invalid flag values fail with the flag and the value named, and nothing on standard output",
        arguments: [
            ("--proxy-uid", "abc"), ("--proxy-uid", "-1"), ("--proxy-gid", "-2"), ("--opaque-ports", "80,9_x"),
            ("--opaque-ports", "HTTP"), ("--opaque-ports", "a-very-long-port-name"), ("--skip-inbound-ports", "70000"),
            ("--skip-outbound-ports", "90-80"), ("--skip-subnets", "10.0.0.0/33"), ("--proxy-cpu-request", "1x"),
            ("--proxy-memory-limit", "-5Mi"), ("--admin-port", "0"), ("--inbound-port", "4143-4144"),
            ("--outbound-port", "65536"), ("--control-port", "x"), ("--default-inbound-policy", "allow"),
            ("--proxy-image", " "), ("--proxy-version", ""), ("--proxy-log-level", ""),
        ])
    func invalidFlag(_ flag: String, _ value: String) {
        // A value that starts with "-" must be attached with "=", or it reads as an option.
        let option = value.hasPrefix("-") ? ["\(flag)=\(value)"] : [flag, value]
        let outcome = linkerd(["inject"] + option + ["-"], standardInput: Self.deployment)
        #expect(outcome.exitCode == 64)
        #expect(outcome.standardOutput.isEmpty)
        #expect(outcome.standardError.contains("invalid value \"\(value)\" for \(flag): "), "\(outcome.standardError)")
    }

    @Test("A request greater than its limit, and options that need others, are usage errors")
    func inconsistentFlags() {
        let cpu = linkerd(["inject", "--proxy-cpu-request", "2", "--proxy-cpu-limit", "500m", "-"])
        #expect(cpu.exitCode == 64)
        #expect(
            cpu.standardError.contains(
                "invalid value \"2\" for --proxy-cpu-request: the request is greater than the limit 500m"),
            "\(cpu.standardError)")
        let values = linkerd(["inject", "--values", Fixture.path("values.yaml"), "-"])
        #expect(values.exitCode == 64)
        #expect(values.standardError.contains("--values and --trust-anchors apply only with --manual"))
        let noInput = linkerd(["inject"])
        #expect(noInput.exitCode == 64)
        #expect(noInput.standardError.contains("no input"))
    }

    @Test("--manual then uninject gives back the original objects")
    func manualRoundTrip() throws {
        let original = try objects(try Fixture.text("workloads.yaml"))
        let injected = linkerd([
            "inject", "--manual", "--trust-anchors", Fixture.path("trust-anchors.pem"), Fixture.path("workloads.yaml"),
        ])
        #expect(injected.exitCode == 0, "\(injected.standardError)")
        let injectedObjects = try objects(injected.standardOutput)
        #expect(injectedObjects.count == original.count)
        for object in flattened(injectedObjects) {
            switch object["kind"]?.stringValue {
            case "Deployment", "CronJob", "Pod", "StatefulSet", "DaemonSet":
                #expect(containerNames(object).contains(MeshKeys.proxyContainerName), "\(object.jsonString)")
                #expect(podAnnotations(object)?[MeshKeys.createdBy] != nil)
            case "Namespace":
                #expect(podAnnotations(object)?[MeshKeys.inject] == "enabled")
            default:
                #expect(original.contains(object) || flattened(original).contains(object))
            }
        }
        #expect(!injected.standardError.contains("warning"), "\(injected.standardError)")

        let uninjected = linkerd(["uninject", "-"], standardInput: injected.standardOutput)
        #expect(uninjected.exitCode == 0, "\(uninjected.standardError)")
        let restored = try objects(uninjected.standardOutput)
        // Exactly the original: the opaque-ports annotation injection computed (the StatefulSet's 5432) goes too.
        #expect(restored.map(withoutEmptyCollections) == original.map(withoutEmptyCollections))
        #expect(
            uninjected.standardError == """
                namespace "emojivoto" uninjected
                deployment "web" uninjected
                service "web-svc" skipped: not injected
                configmap "web-config" skipped: not injected
                cronjob "cleanup" uninjected
                pod "debug" uninjected
                statefulset "db" uninjected
                daemonset "agent" uninjected

                """)
    }

    @Test("--manual reads the values from a linkerd-config ConfigMap and hashes the trust anchors")
    func manualConfiguration() throws {
        let outcome = linkerd(
            [
                "inject", "--manual", "--values", Fixture.path("values.yaml"), "--trust-anchors",
                Fixture.path("trust-anchors.pem"), "-",
            ], standardInput: Self.deployment)
        #expect(outcome.exitCode == 0, "\(outcome.standardError)")
        let object = try #require(try objects(outcome.standardOutput).first)
        let anchors = try Fixture.text("trust-anchors.pem")
        let configuration = try MeshConfiguration(valuesYAML: "", trustAnchorsPEM: anchors)
        #expect(podAnnotations(object)?[MeshKeys.trustRootSHA256] == .string(configuration.trustRootSHA256))
        let containers =
            (object.value(atPath: "spec.template.spec.initContainers")?.arrayValue ?? [])
            + (object.value(atPath: "spec.template.spec.containers")?.arrayValue ?? [])
        let proxy = try #require(containers.first { $0["name"] == .string(MeshKeys.proxyContainerName) })
        #expect(proxy["image"] == "registry.example/linkerd/proxy:edge-swift-9.9.9")
    }

    @Test("Unreadable or invalid mesh configuration files fail the command, naming the file")
    func badConfigurationFiles() throws {
        try withTemporaryDirectory { directory in
            let values = directory.appendingPathComponent("values.yaml")
            try "proxy:\n  uid: not-a-number\n".write(to: values, atomically: true, encoding: .utf8)
            let invalidValues = linkerd(
                ["inject", "--manual", "--values", values.path, "-"], standardInput: Self.deployment)
            #expect(invalidValues.exitCode == 1)
            #expect(invalidValues.standardOutput.isEmpty)
            #expect(invalidValues.standardError.hasPrefix("Error: \(values.path): "))
            #expect(invalidValues.standardError.contains("proxy.uid"))

            let notPEM = linkerd(
                ["inject", "--manual", "--trust-anchors", values.path, "-"], standardInput: Self.deployment)
            #expect(notPEM.exitCode == 1)
            #expect(notPEM.standardError.contains("no PEM certificate"))

            let missing = directory.appendingPathComponent("absent.pem").path
            let absent = linkerd(
                ["inject", "--manual", "--trust-anchors", missing, "-"], standardInput: Self.deployment)
            #expect(absent.exitCode == 1)
            #expect(absent.standardError == "Error: \(missing): no such file or directory\n")
        }
    }

    @Test("Objects the injector would skip are left unchanged, with the reason")
    func skipped() throws {
        let input = """
            apiVersion: v1
            kind: Pod
            metadata: {name: host}
            spec:
              hostNetwork: true
              containers: [{name: c, image: busybox}]
            ---
            apiVersion: v1
            kind: Pod
            metadata: {name: opted-out, annotations: {linkerd.io/inject: disabled}}
            spec:
              containers: [{name: c, image: busybox}]
            """
        for arguments in [["inject", "-"], ["inject", "--manual", "-"]] {
            let outcome = linkerd(arguments, standardInput: input)
            #expect(outcome.exitCode == 0)
            #expect(try objects(outcome.standardOutput) == objects(input))
            #expect(outcome.standardError.contains("pod \"host\" skipped: hostNetwork is enabled\n"))
            #expect(
                outcome.standardError.contains(
                    "pod \"opted-out\" skipped: pod has the annotation \"linkerd.io/inject:disabled\"\n"))
        }
        let once = linkerd(["inject", "--manual", "-"], standardInput: Self.deployment)
        let twice = linkerd(["inject", "--manual", "-"], standardInput: once.standardOutput)
        #expect(twice.exitCode == 0)
        #expect(try objects(twice.standardOutput) == objects(once.standardOutput))
        #expect(twice.standardError.contains("deployment \"web\" skipped: pod has a sidecar injected already\n"))
    }

    @Test("Control-plane components are injected only with --manual")
    func controlPlane() throws {
        let input = """
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: linkerd-destination, namespace: linkerd}
            spec:
              selector: {matchLabels: {linkerd.io/control-plane-component: destination}}
              template:
                metadata: {labels: {linkerd.io/control-plane-component: destination}}
                spec: {containers: [{name: destination, image: controller}]}
            """
        let outcome = linkerd(["inject", "-"], standardInput: input)
        #expect(outcome.exitCode == 1)
        #expect(outcome.standardOutput.isEmpty)
        #expect(
            outcome.standardError.contains(
                "stdin: deployment \"linkerd-destination\" is a control-plane component: inject it with --manual"))

        let manual = linkerd(["inject", "--manual", "-"], standardInput: input)
        #expect(manual.exitCode == 0, "\(manual.standardError)")
        let injected = try #require(try objects(manual.standardOutput).first)
        #expect(containerNames(injected).contains(MeshKeys.proxyContainerName))
        #expect(manual.standardError.hasSuffix("\ndeployment \"linkerd-destination\" injected\n"))
        let uninjected = linkerd(["uninject", "-"], standardInput: manual.standardOutput)
        #expect(try objects(uninjected.standardOutput) == [injected], "control-plane objects are left alone")
    }

    @Test("With --manual, Services get the default opaque ports they name; --opaque-ports wins")
    func manualServices() throws {
        let input = """
            apiVersion: v1
            kind: Service
            metadata: {name: db, namespace: shop}
            spec: {ports: [{port: 5432}, {port: 80, targetPort: 8080}]}
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: web, namespace: shop}
            spec: {ports: [{port: 80, targetPort: http}]}
            """
        let manual = linkerd(["inject", "--manual", "-"], standardInput: input)
        #expect(manual.exitCode == 0, "\(manual.standardError)")
        let output = try objects(manual.standardOutput)
        #expect(output.first.flatMap(podAnnotations) == ["config.linkerd.io/opaque-ports": "5432"])
        #expect(output.last == (try objects(input)).last)
        #expect(
            manual.standardError.hasSuffix(
                """
                service "db" annotated
                service "web" skipped: it has config.linkerd.io/opaque-ports already or names no default opaque port

                """))
        let uninjected = linkerd(["uninject", "-"], standardInput: manual.standardOutput)
        #expect(try objects(uninjected.standardOutput) == objects(input))

        let flag = linkerd(["inject", "--manual", "--opaque-ports", "80", "-"], standardInput: input)
        #expect(
            try objects(flag.standardOutput).compactMap(podAnnotations).map { $0["config.linkerd.io/opaque-ports"] }
                == ["80", "80"])
        let plain = linkerd(["inject", "-"], standardInput: input)
        #expect(try objects(plain.standardOutput) == objects(input), "without --manual, only the flag applies")
    }

    @Test("Flag values are checked by the injector's own rules: what the webhook accepts, the CLI accepts")
    func flagsAgreeWithWebhook() throws {
        for (flag, value) in [("--opaque-ports", "80,,90"), ("--opaque-ports", "mysql,3306"), ("--proxy-gid", "-1")] {
            let outcome = linkerd(["inject", "\(flag)=\(value)", "-"], standardInput: Self.deployment)
            #expect(outcome.exitCode == 0, "\(flag) \(value): \(outcome.standardError)")
            #expect(ProxyAnnotations.validate([flagAnnotation(flag): value]).isEmpty)
        }
    }

    private func flagAnnotation(_ flag: String) -> String {
        "config.linkerd.io/" + flag.dropFirst(2)
    }

    @Test("Kinds the injector does not handle pass through unchanged")
    func unknownKinds() throws {
        let input = """
            apiVersion: policy.linkerd.io/v1beta3
            kind: Server
            metadata: {name: web-http, namespace: shop}
            spec: {port: http, podSelector: {matchLabels: {app: web}}}
            ---
            apiVersion: v1
            kind: Secret
            metadata: {name: token}
            type: Opaque
            stringData: {token: "0123"}
            """
        for command in ["inject", "uninject"] {
            let outcome = linkerd([command, "-"], standardInput: input)
            #expect(outcome.exitCode == 0)
            #expect(try objects(outcome.standardOutput) == objects(input))
        }
        #expect(
            linkerd(["inject", "-"], standardInput: input).standardError == """
                server "web-http" skipped: this resource kind is unsupported
                secret "token" skipped: this resource kind is unsupported

                """)
    }

    @Test("Invalid YAML fails the whole run with the file and document named, writing nothing to standard output")
    func invalidYAML() {
        let outcome = linkerd(["inject", Fixture.path("workloads.yaml"), Fixture.path("invalid-second-document.yaml")])
        #expect(outcome.exitCode == 1)
        #expect(outcome.standardOutput.isEmpty)
        #expect(
            outcome.standardError.contains(
                "Error: \(Fixture.path("invalid-second-document.yaml")): document 2: invalid YAML: "))
    }

    @Test("A missing file, an empty directory and a repeated - are precise errors")
    func badInputs() throws {
        let missing = linkerd(["inject", "/nonexistent/app.yaml"])
        #expect(missing.exitCode == 1)
        #expect(missing.standardOutput.isEmpty)
        #expect(missing.standardError == "Error: /nonexistent/app.yaml: no such file or directory\n")
        try withTemporaryDirectory { directory in
            let outcome = linkerd(["uninject", directory.path])
            #expect(outcome.exitCode == 1)
            #expect(outcome.standardError.contains("\(directory.path): a directory with no .yaml, .yml or .json file"))
        }
        let twice = linkerd(["inject", "-", "-"])
        #expect(twice.exitCode == 1)
        #expect(twice.standardError.contains("\"-\" is given more than once"))
    }

    @Test("Directories: their manifests in name order, subdirectories only with --recursive")
    func directories() throws {
        try withTemporaryDirectory { directory in
            func write(_ name: String, _ text: String) throws {
                let url = directory.appendingPathComponent(name)
                try FileManager.default.createDirectory(
                    at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
                try text.write(to: url, atomically: true, encoding: .utf8)
            }
            try write("b.yaml", "kind: ConfigMap\nmetadata: {name: b}\n")
            try write("a.yml", "kind: ConfigMap\nmetadata: {name: a}\n")
            try write("c.json", #"{"kind": "ConfigMap", "metadata": {"name": "c"}}"#)
            try write("notes.txt", "kind: ConfigMap\nmetadata: {name: ignored}\n")
            try write("sub/d.yaml", "kind: ConfigMap\nmetadata: {name: d}\n")
            func names(_ arguments: [String]) throws -> [String] {
                let outcome = linkerd(arguments)
                #expect(outcome.exitCode == 0, "\(outcome.standardError)")
                return try objects(outcome.standardOutput).compactMap { $0.value(atPath: "metadata.name")?.stringValue }
            }
            #expect(try names(["inject", directory.path]) == ["a", "b", "c"])
            #expect(try names(["inject", "--recursive", directory.path]) == ["a", "b", "c", "d"])
            #expect(try names(["uninject", "-R", directory.path]) == ["a", "b", "c", "d"])
        }
    }

    @Test("-o json writes one JSON document")
    func jsonOutput() throws {
        let outcome = linkerd(["inject", "-o", "json", Fixture.path("workloads.yaml")])
        #expect(outcome.exitCode == 0)
        let list = try JSONValue(json: Data(outcome.standardOutput.utf8))
        #expect(list["kind"] == "List")
        #expect(list["items"]?.arrayValue?.count == 7)
    }

    @Test("version prints the CLI version")
    func version() {
        #expect(linkerd(["version"]).standardOutput == "Client version: \(LinkerdVersion.current)\n")
        #expect(linkerd(["version", "--short"]).standardOutput == "\(LinkerdVersion.current)\n")
        let help = linkerd(["--help"])
        #expect(help.exitCode == 0)
        #expect(help.standardOutput.contains("inject"))
    }
}
