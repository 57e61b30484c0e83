import Foundation
import KubeModel
import LinkerdInject
import Testing

/// Every manifest, and every pod the injector's golden tests produce, checked against the Kubernetes OpenAPI schemas
/// by `kubernetes-validate --strict` (PyPI; `make deps` installs it): unknown fields, wrong types and missing required
/// fields fail.
@Suite("Kubernetes schema validation")
struct SchemaValidationTests {
    /// The oldest Kubernetes the charts support (control-plane.md §6.1: `kubeVersion >=1.31.0-0`).
    static let kubernetesVersion = "1.31.0"

    /// The injector's golden patched objects: Tests/LinkerdInjectTests/Fixtures/*/patched.golden.json.
    static let goldenPods: [URL] = {
        let fixtures = ManifestFiles.packageRoot.appendingPathComponent("Tests/LinkerdInjectTests/Fixtures")
        let cases = (try? FileManager.default.contentsOfDirectory(atPath: fixtures.path)) ?? []
        return cases.sorted().map { fixtures.appendingPathComponent($0).appendingPathComponent("patched.golden.json") }
            .filter { FileManager.default.fileExists(atPath: $0.path) }
    }()

    struct ToolOutcome {
        var status: Int32
        var output: String
    }

    /// Runs `python3 -m kubernetes_validate` (the module behind the `kubernetes-validate` script, so that no PATH
    /// entry for pip's scripts is needed), output and errors merged.
    static func kubernetesValidate(_ arguments: [String]) throws -> ToolOutcome {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-m", "kubernetes_validate"] + arguments
        let output = FileManager.default.temporaryDirectory.appendingPathComponent(
            "kubernetes-validate-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: output) }
        let handle = try FileHandle(forWritingTo: output)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        process.waitUntilExit()
        try handle.close()
        return ToolOutcome(status: process.terminationStatus, output: try String(contentsOf: output, encoding: .utf8))
    }

    /// Validates `files`, recording an issue for the tool missing, for any failure, and for any document the tool
    /// did not report as passed.
    static func expectValid(_ files: [URL], documents: Int) throws {
        let version = try kubernetesValidate(["--version"])
        guard version.status == 0 else {
            let output = version.output.trimmingCharacters(in: .whitespacesAndNewlines)
            Issue.record("kubernetes-validate is not installed: run `make deps` (python3 said: \(output))")
            return
        }
        let outcome = try kubernetesValidate(["--strict", "-k", kubernetesVersion] + files.map(\.path))
        #expect(outcome.status == 0, "\(outcome.output)")
        #expect(!outcome.output.contains("ERROR"), "\(outcome.output)")
        let passed = outcome.output.split(separator: "\n").filter { $0.contains(" passed for resource ") }
        #expect(passed.count == documents, "expected \(documents) documents to pass:\n\(outcome.output)")
    }

    @Test("Every document in manifests/ is a valid Kubernetes object")
    func manifests() throws {
        let manifests = try ManifestFiles()
        try Self.expectValid(manifests.files, documents: manifests.documents.count)
    }

    @Test("The validator rejects what it should, so a pass means something")
    func validatorRejects() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("invalid-\(UUID().uuidString).yaml")
        defer { try? FileManager.default.removeItem(at: file) }
        try """
        apiVersion: v1
        kind: Service
        metadata:
          name: broken
          annotations:
            config.linkerd.io/opaque-ports: 443
        spec:
          ports:
            - port: "443"
              targetPurt: 8443
        """.write(to: file, atomically: true, encoding: .utf8)
        let outcome = try Self.kubernetesValidate(["--strict", "-k", Self.kubernetesVersion, file.path])
        guard !outcome.output.contains("No module named") else {
            Issue.record("kubernetes-validate is not installed: run `make deps`")
            return
        }
        #expect(outcome.status != 0, "\(outcome.output)")
        #expect(outcome.output.contains("ERROR"))
    }

    /// Pods and a Deployment covering the injector's main shapes: native sidecar or not, awaiting or not, resources,
    /// skipped ports, the debug sidecar, the CLI's origin.
    static let injectionCases: [(name: String, request: InjectionRequest)] = {
        func pod(_ name: String, annotations: [String: JSONValue]) -> JSONValue {
            [
                "apiVersion": "v1", "kind": "Pod",
                "metadata": ["name": .string(name), "namespace": "shop", "annotations": .object(annotations)],
                "spec": [
                    "containers": [
                        ["name": "app", "image": "nginx:1.25", "ports": [["name": "http", "containerPort": 8080]]]
                    ]
                ],
            ]
        }
        let deployment: JSONValue = [
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": ["name": "web", "namespace": "shop"],
            "spec": [
                "selector": ["matchLabels": ["app": "web"]],
                "template": [
                    "metadata": ["labels": ["app": "web"]],
                    "spec": ["containers": [["name": "web", "image": "nginx:1.25"]]],
                ],
            ],
        ]
        return [
            (
                "native",
                InjectionRequest(
                    object: pod("native", annotations: [:]), kind: "Pod", namespace: "shop",
                    namespaceAnnotations: ["linkerd.io/inject": "enabled"])
            ),
            (
                "classic",
                InjectionRequest(
                    object: pod(
                        "classic",
                        annotations: [
                            "linkerd.io/inject": "enabled", "config.linkerd.io/proxy-enable-native-sidecar": "false",
                            "config.linkerd.io/proxy-await": "disabled", "config.linkerd.io/proxy-cpu-request": "100m",
                            "config.linkerd.io/proxy-memory-limit": "250Mi",
                            "config.linkerd.io/skip-inbound-ports": "25",
                            "config.linkerd.io/opaque-ports": "http",
                            "config.alpha.linkerd.io/proxy-wait-before-exit-seconds": "5",
                        ]), kind: "Pod", namespace: "shop")
            ),
            (
                "debug",
                InjectionRequest(
                    object: pod(
                        "debug",
                        annotations: [
                            "linkerd.io/inject": "ingress", "config.linkerd.io/enable-debug-sidecar": "true",
                            "config.linkerd.io/proxy-gid": "2102",
                        ]), kind: "Pod", namespace: "shop")
            ),
            ("deployment", InjectionRequest(object: deployment, kind: "Deployment", namespace: "shop", origin: .cli)),
        ]
    }()

    @Test("Objects the injector patches are valid Kubernetes objects")
    func injectedObjects() throws {
        var configuration = MeshConfiguration.defaults
        configuration.trustAnchorsPEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
        let injector = ProxyInjector(configuration: configuration)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("injected-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var files: [URL] = []
        for (name, request) in Self.injectionCases {
            let result = injector.inject(request)
            let patch = try #require(result.patch, "\(name): not injected: \(result.report.skipReasonText)")
            let file = directory.appendingPathComponent("\(name).json")
            try patch.apply(to: request.object).jsonData().write(to: file)
            files.append(file)
        }
        try Self.expectValid(files, documents: files.count)
    }

    @Test(
        "The injector's golden patched pods are valid Kubernetes objects",
        .enabled(
            if: !goldenPods.isEmpty,
            "no Tests/LinkerdInjectTests/Fixtures/*/patched.golden.json yet: nothing to validate"))
    func goldenPatchedPods() throws {
        try Self.expectValid(Self.goldenPods, documents: Self.goldenPods.count)
    }
}
