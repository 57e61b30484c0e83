import KubeModel
import LinkerdCore
import LinkerdInject

/// What a command prints and how it exits, computed without touching the process.
public struct CommandOutcome: Sendable, Hashable {
    public var standardOutput: String
    public var standardError: String
    public var exitCode: Int32

    public init(standardOutput: String = "", standardError: String = "", exitCode: Int32 = 0) {
        self.standardOutput = standardOutput
        self.standardError = standardError
        self.exitCode = exitCode
    }

    /// Exit status 1 with `message` on standard error.
    static func failure(_ message: String) -> CommandOutcome {
        CommandOutcome(standardError: "Error: \(message)\n", exitCode: 1)
    }
}

/// How the commands write objects.
public enum OutputFormat: String, Sendable, CaseIterable {
    /// YAML documents separated by `---`.
    case yaml
    /// One JSON object; several objects as the items of a `List`.
    case json
}

/// What `linkerd inject` does, after its flags are checked.
public struct InjectSettings: Sendable {
    /// Whether to add the proxy here (`--manual`) instead of the `linkerd.io/inject` annotation the webhook acts on.
    public var manual: Bool
    /// `--ingress`: `linkerd.io/inject: ingress` instead of `enabled`.
    public var ingress: Bool
    /// The `config.linkerd.io/*` annotations the flags ask for.
    public var annotations: [String: String]
    /// The mesh configuration `--manual` injects with.
    public var configuration: MeshConfiguration

    public init(
        manual: Bool, ingress: Bool = false, annotations: [String: String] = [:],
        configuration: MeshConfiguration = .defaults
    ) {
        self.manual = manual
        self.ingress = ingress
        self.annotations = annotations
        self.configuration = configuration
    }
}

/// The pure core of `linkerd inject` and `linkerd uninject`: input texts in, output texts and exit status out.
///
/// Every object is transformed, the items of a `List` (any kind ending in `List` with an `items` array) one by one;
/// a line per object on standard error says what happened to it (`deployment "web" injected`, `configmap "cfg"
/// skipped: ...`). Objects of other kinds pass through unchanged. Nothing is written to standard output unless every
/// input was read and every object transformed: on any error the outcome has only those lines, the errors and exit
/// status 1.
public enum ManifestTransform {
    /// `linkerd inject`.
    ///
    /// Kinds and what they get:
    /// - Pods and workloads with a pod template (Deployment, ReplicaSet, ReplicationController, StatefulSet,
    ///   DaemonSet, Job, CronJob): the flag annotations on the pod (template). Without `manual`, also
    ///   `linkerd.io/inject: enabled` (or `ingress`) for the webhook; with `manual`, the proxy itself, as
    ///   ``ProxyInjector`` with origin `.cli` patches it (and `linkerd.io/inject: ingress` first with `ingress`).
    ///   Objects the injector would skip (host network, already injected, `linkerd.io/inject: disabled`, ...) are
    ///   left unchanged; control-plane components (label `linkerd.io/control-plane-component`) are an error
    ///   without `manual`, as upstream, and injected with it.
    /// - Namespaces: `linkerd.io/inject: enabled` (or `ingress`) and the flag annotations, which their pods inherit.
    /// - Services: `config.linkerd.io/opaque-ports`: the `--opaque-ports` value when given; else, with `manual`, the
    ///   default opaque ports the Service names, as the webhook computes them (unless the Service has the
    ///   annotation); nothing else applies.
    public static func inject(
        _ sources: [ManifestSource], settings: InjectSettings, format: OutputFormat
    ) -> CommandOutcome {
        let injector = ProxyInjector(configuration: settings.configuration)
        return run(sources, format: format) { object in
            inject(object, settings: settings, injector: injector)
        }
    }

    /// `linkerd uninject`: ``Uninjector/uninject(_:)`` on every object.
    public static func uninject(_ sources: [ManifestSource], format: OutputFormat) -> CommandOutcome {
        run(sources, format: format) { object in
            let (uninjected, changed) = Uninjector.uninject(object)
            let label = label(of: object)
            return .init(
                object: uninjected, messages: [changed ? "\(label) uninjected" : "\(label) skipped: not injected"])
        }
    }

    // MARK: - Driver

    /// One object's result: the object to print, the lines for standard error, and failures that fail the run.
    struct ObjectOutcome {
        var object: JSONValue
        var messages: [String]
        var failures: [String] = []
    }

    private static func run(
        _ sources: [ManifestSource], format: OutputFormat, transform: (JSONValue) -> ObjectOutcome
    ) -> CommandOutcome {
        var objects: [JSONValue] = []
        var messages: [String] = []
        var failures: [String] = []
        for source in sources {
            let parsed: [JSONValue]
            do throws(ManifestError) {
                parsed = try ManifestCodec.objects(in: source)
            } catch {
                failures.append(error.description)
                continue
            }
            for object in parsed {
                let outcome = transformingItems(of: object, with: transform)
                objects.append(outcome.object)
                messages += outcome.messages
                failures += outcome.failures.map { "\(source.name): \($0)" }
            }
        }
        let summary = messages.map { $0 + "\n" }.joined()
        guard failures.isEmpty else {
            return CommandOutcome(
                standardError: summary + failures.map { "Error: \($0)\n" }.joined(), exitCode: 1)
        }
        let output: String
        switch format {
        case .yaml: output = ManifestCodec.yaml(objects)
        case .json: output = ManifestCodec.json(objects)
        }
        return CommandOutcome(standardOutput: output, standardError: summary)
    }

    /// The object transformed, or for a list, the list with each item transformed.
    private static func transformingItems(
        of object: JSONValue, with transform: (JSONValue) -> ObjectOutcome
    ) -> ObjectOutcome {
        guard case .string(let kind)? = object["kind"], kind.hasSuffix("List"),
            case .array(let items)? = object["items"]
        else {
            return transform(object)
        }
        var list = object
        var transformed: [JSONValue] = []
        var messages: [String] = []
        var failures: [String] = []
        for item in items {
            let outcome = transformingItems(of: item, with: transform)
            transformed.append(outcome.object)
            messages += outcome.messages
            failures += outcome.failures
        }
        list["items"] = .array(transformed)
        return ObjectOutcome(object: list, messages: messages, failures: failures)
    }

    // MARK: - Inject

    private static func inject(
        _ object: JSONValue, settings: InjectSettings, injector: ProxyInjector
    ) -> ObjectOutcome {
        let kind = object["kind"]?.stringValue ?? ""
        let label = label(of: object)
        func unchanged(_ reason: String) -> ObjectOutcome {
            ObjectOutcome(object: object, messages: ["\(label) skipped: \(reason)"])
        }
        func failed(_ reason: String, messages: [String] = []) -> ObjectOutcome {
            ObjectOutcome(object: object, messages: messages, failures: ["\(label): \(reason)"])
        }
        func annotated(_ annotations: [String: String], at path: [String], verb: String) -> ObjectOutcome {
            do throws(ObjectShapeError) {
                let changed = try adding(annotations, atMetadata: path, of: object)
                return ObjectOutcome(object: changed, messages: ["\(label) \(verb)"])
            } catch {
                return failed(error.description)
            }
        }
        /// The annotation ``ProxyInjector/annotateForInjection(_:kind:annotations:)`` asks for, for the webhook.
        func annotatedForInjection(at path: [String], verb: String) -> ObjectOutcome {
            guard
                let patch = ProxyInjector.annotateForInjection(
                    object, kind: kind, annotations: webhookAnnotations(for: settings))
            else {
                // Nothing to add, or metadata that is not a mapping: `adding` says which.
                return annotated(webhookAnnotations(for: settings), at: path, verb: verb)
            }
            do throws(JSONPatchError) {
                return ObjectOutcome(object: try patch.apply(to: object), messages: ["\(label) \(verb)"])
            } catch {
                return failed("the annotation patch does not apply: \(error.description)")
            }
        }
        let namespace = object.value(atPath: "metadata.namespace")?.stringValue ?? ""

        switch kind {
        case "Namespace":
            return annotatedForInjection(at: ["metadata"], verb: "annotated")
        case "Service":
            if let ports = settings.annotations[MeshKeys.opaquePorts] {
                return annotated([MeshKeys.opaquePorts: ports], at: ["metadata"], verb: "annotated")
            }
            guard settings.manual else { return unchanged("only --opaque-ports applies to services") }
            // As the webhook does for Services (§2.3 step 7): the default opaque ports the Service names.
            let result = injector.inject(
                InjectionRequest(object: object, kind: kind, namespace: namespace, origin: .cli))
            guard let patch = result.patch else {
                return unchanged("it has config.linkerd.io/opaque-ports already or names no default opaque port")
            }
            do throws(JSONPatchError) {
                return ObjectOutcome(object: try patch.apply(to: object), messages: ["\(label) annotated"])
            } catch {
                return failed("the opaque-ports patch does not apply: \(error.description)")
            }
        default:
            break
        }
        guard let tokens = PodLocation.tokens(forKind: kind) else {
            return unchanged(SkipReason.unsupportedResource.text)
        }
        let path = tokens + ["metadata"]
        guard tokens.isEmpty || object.value(atPath: tokens.joined(separator: "."))?.objectValue != nil else {
            return unchanged("it has no pod template (\(tokens.joined(separator: ".")))")
        }
        let request = InjectionRequest(object: object, kind: kind, namespace: namespace, origin: .cli)
        let warnings = { (report: InjectionReport) in report.warnings.map { "warning: \(label): \($0)" } }

        guard settings.manual else {
            // Upstream refuses to annotate control-plane pods for the webhook, which never injects them; `--manual`
            // injects them (§2.8).
            if ProxyInjector.isControlPlaneComponent(object, kind: kind) {
                return ObjectOutcome(
                    object: object, messages: [],
                    failures: ["\(label) is a control-plane component: inject it with --manual"])
            }
            let report = injector.report(request)
            guard report.injectable else { return unchanged(report.skipReasonText) }
            return annotatedForInjection(at: path, verb: "injected")
        }

        var annotations = settings.annotations
        if settings.ingress {
            annotations[MeshKeys.inject] = MeshKeys.injectIngress
        }
        let configured: JSONValue
        do throws(ObjectShapeError) {
            configured = try adding(annotations, atMetadata: path, of: object)
        } catch {
            return failed(error.description)
        }
        var configuredRequest = request
        configuredRequest.object = configured
        let result = injector.inject(configuredRequest)
        guard result.report.injectable else {
            return ObjectOutcome(
                object: object,
                messages: warnings(result.report) + ["\(label) skipped: \(result.report.skipReasonText)"])
        }
        guard let patch = result.patch else {
            return ObjectOutcome(object: configured, messages: warnings(result.report) + ["\(label) injected"])
        }
        do throws(JSONPatchError) {
            let injected = try patch.apply(to: configured)
            return ObjectOutcome(object: injected, messages: warnings(result.report) + ["\(label) injected"])
        } catch {
            return failed(
                "the injection patch does not apply: \(error.description)", messages: warnings(result.report))
        }
    }

    /// The annotations `linkerd inject` without `--manual` adds: the flags' and `linkerd.io/inject`.
    private static func webhookAnnotations(for settings: InjectSettings) -> [String: String] {
        var annotations = settings.annotations
        annotations[MeshKeys.inject] = settings.ingress ? MeshKeys.injectIngress : MeshKeys.injectEnabled
        return annotations
    }

    // MARK: - Object editing

    /// A part of an object that is not of the shape Kubernetes gives it.
    struct ObjectShapeError: Error, CustomStringConvertible {
        var description: String
    }

    /// `object` with `annotations` set in the metadata at `path`, creating the metadata and its `annotations` when
    /// absent (or `null`).
    static func adding(
        _ annotations: [String: String], atMetadata path: [String], of object: JSONValue
    ) throws(ObjectShapeError) -> JSONValue {
        try updating(object, at: path[...] + ["annotations"]) { existing throws(ObjectShapeError) in
            var members: [String: JSONValue]
            switch existing {
            case nil, .null?: members = [:]
            case .object(let current)?: members = current
            case let other?:
                throw ObjectShapeError(
                    description: "\(path.joined(separator: ".")).annotations is a \(other.typeName), not a mapping")
            }
            for (key, value) in annotations {
                members[key] = .string(value)
            }
            return .object(members)
        }
    }

    private static func updating(
        _ value: JSONValue, at path: ArraySlice<String>,
        _ update: (JSONValue?) throws(ObjectShapeError) -> JSONValue
    ) throws(ObjectShapeError) -> JSONValue {
        guard let key = path.first else { return try update(value) }
        var members: [String: JSONValue]
        switch value {
        case .object(let current): members = current
        case .null: members = [:]
        default:
            throw ObjectShapeError(description: "the parent of \(key.quoted) is a \(value.typeName), not a mapping")
        }
        if path.count == 1 {
            members[key] = try update(members[key])
        } else {
            members[key] = try updating(members[key] ?? .null, at: path.dropFirst(), update)
        }
        return .object(members)
    }

    /// `<kind in lower case> "<name>"`, as upstream's report names objects.
    static func label(of object: JSONValue) -> String {
        let kind = object["kind"]?.stringValue?.lowercased() ?? "object"
        let name =
            object.value(atPath: "metadata.name")?.stringValue
            ?? object.value(atPath: "metadata.generateName")?.stringValue ?? ""
        return "\(kind) \(name.quoted)"
    }
}
