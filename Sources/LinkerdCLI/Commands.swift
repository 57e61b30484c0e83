import ArgumentParser
import Foundation
import KubeModel
import LinkerdCore
import LinkerdInject

/// The `linkerd` command line. The executable runs `LinkerdCommand.main()`; tests run ``run(_:context:)``.
public struct LinkerdCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "linkerd",
        abstract: "linkerd manages the Linkerd service mesh (linkerd-swift).",
        subcommands: [InjectCommand.self, UninjectCommand.self, IdentityCommand.self, VersionCommand.self]
    )

    public init() {}

    /// Parses `arguments` (without the program name) and runs the command they name, as the executable would, but
    /// returning what it would print and its exit status: help and usage errors included (exit status 64 for a
    /// flag ArgumentParser or a command's validation rejects).
    public static func run(_ arguments: [String], context: CommandContext) -> CommandOutcome {
        do {
            let command = try parseAsRoot(arguments)
            guard let runnable = command as? any OutcomeCommand else {
                return CommandOutcome(standardOutput: helpMessage() + "\n")
            }
            return runnable.outcome(in: context)
        } catch {
            let message = fullMessage(for: error) + "\n"
            let code = exitCode(for: error).rawValue
            return code == 0
                ? CommandOutcome(standardOutput: message)
                : CommandOutcome(standardError: message, exitCode: code)
        }
    }
}

/// A command whose whole effect is a ``CommandOutcome``: the executable prints it, tests inspect it.
protocol OutcomeCommand: ParsableCommand {
    func outcome(in context: CommandContext) -> CommandOutcome
}

extension OutcomeCommand {
    /// Prints the outcome for the process and exits with its status.
    func run() throws {
        let outcome = outcome(in: .process)
        FileHandle.standardOutput.write(Data(outcome.standardOutput.utf8))
        FileHandle.standardError.write(Data(outcome.standardError.utf8))
        if outcome.exitCode != 0 {
            throw ExitCode(outcome.exitCode)
        }
    }
}

extension OutputFormat: ExpressibleByArgument {}

/// The inputs and output shared by `inject` and `uninject`.
struct ManifestOptions: ParsableArguments {
    @Argument(help: "Files, directories (their .yaml, .yml and .json files) or - for standard input.")
    var inputs: [String] = []

    @Flag(name: [.customShort("R"), .long], help: "Also read the subdirectories of directories.")
    var recursive = false

    @Option(name: [.short, .long], help: "Output format: yaml or json.")
    var output: OutputFormat = .yaml

    func validate() throws {
        guard !inputs.isEmpty else {
            throw ValidationError("no input: give files, directories, or - for standard input")
        }
    }

    func sources(in context: CommandContext) throws(ManifestError) -> [ManifestSource] {
        try ManifestInputs.read(inputs, recursive: recursive, context: context)
    }
}

struct InjectCommand: OutcomeCommand {
    static let configuration = CommandConfiguration(
        commandName: "inject",
        abstract: "Add the Linkerd proxy to Kubernetes configs.",
        discussion: """
            Reads Kubernetes objects (YAML or JSON) and writes them to standard output, with one line per object on \
            standard error. Without --manual, pod templates and namespaces get the linkerd.io/inject annotation and \
            the annotations of the proxy flags, and the proxy injector adds the proxy when the pods are created. \
            With --manual, the proxy is added here, with the mesh configuration of --values and --trust-anchors.

            Example: kubectl get deploy -o yaml | linkerd inject - | kubectl apply -f -
            """
    )

    @OptionGroup var manifests: ManifestOptions

    @Flag(help: "Add the proxy here instead of leaving it to the proxy injector.")
    var manual = false

    @Option(
        help: ArgumentHelp(
            "With --manual: the mesh values (YAML or JSON), or ConfigMap linkerd-config holding them under 'values'.",
            valueName: "file"))
    var values: String?

    @Option(
        name: .customLong("trust-anchors"),
        help: ArgumentHelp(
            "With --manual: the trust anchors (PEM) the proxies verify identities with.", valueName: "file"))
    var trustAnchors: String?

    @OptionGroup var proxy: ProxyOptions

    func validate() throws {
        if !manual, values != nil || trustAnchors != nil {
            throw ValidationError("--values and --trust-anchors apply only with --manual")
        }
    }

    func outcome(in context: CommandContext) -> CommandOutcome {
        let sources: [ManifestSource]
        let configuration: MeshConfiguration
        let annotations: [String: String]
        do {
            annotations = try proxy.annotations()
            configuration = try meshConfiguration()
            sources = try manifests.sources(in: context)
        } catch {
            return .failure("\(error)")
        }
        var outcome = ManifestTransform.inject(
            sources,
            settings: InjectSettings(
                manual: manual, ingress: proxy.ingress, annotations: annotations, configuration: configuration),
            format: manifests.output)
        if manual, configuration.trustAnchorsPEM.isEmpty {
            outcome.standardError =
                "warning: no --trust-anchors: the injected proxies cannot verify identities\n" + outcome.standardError
        }
        return outcome
    }

    /// The defaults, with the values and trust anchors of the files given.
    private func meshConfiguration() throws(ManifestError) -> MeshConfiguration {
        var anchors = ""
        if let trustAnchors {
            let source = try ManifestInputs.readFile(trustAnchors)
            guard source.text.contains("-----BEGIN CERTIFICATE-----") else {
                throw ManifestError(source: trustAnchors, reason: "no PEM certificate (-----BEGIN CERTIFICATE-----)")
            }
            anchors = source.text
        }
        guard let values else {
            var configuration = MeshConfiguration.defaults
            configuration.trustAnchorsPEM = anchors
            return configuration
        }
        let source = try ManifestInputs.readFile(values)
        let text = try valuesText(of: source)
        do throws(MeshConfigurationError) {
            return try MeshConfiguration(valuesYAML: text, trustAnchorsPEM: anchors)
        } catch {
            throw ManifestError(source: values, reason: error.description)
        }
    }

    /// The values document: the file itself, or the `values` key of the ConfigMap it holds.
    private func valuesText(of source: ManifestSource) throws(ManifestError) -> String {
        guard let objects = try? ManifestCodec.objects(in: source), objects.count == 1,
            objects[0]["kind"] == .string("ConfigMap")
        else {
            return source.text
        }
        guard case .string(let text)? = objects[0].value(atPath: "data.values") else {
            throw ManifestError(source: source.name, reason: "a ConfigMap without the string key data.values")
        }
        return text
    }
}

struct UninjectCommand: OutcomeCommand {
    static let configuration = CommandConfiguration(
        commandName: "uninject",
        abstract: "Remove the Linkerd proxy from Kubernetes configs.",
        discussion: """
            Removes what injection added: the linkerd-init and linkerd-proxy containers, their volumes, and the \
            linkerd.io annotations and labels (linkerd.io/inject: disabled and the config.linkerd.io annotations \
            stay). Control-plane objects are left alone.
            """
    )

    @OptionGroup var manifests: ManifestOptions

    func outcome(in context: CommandContext) -> CommandOutcome {
        do {
            return ManifestTransform.uninject(try manifests.sources(in: context), format: manifests.output)
        } catch {
            return .failure(error.description)
        }
    }
}

struct VersionCommand: OutcomeCommand {
    static let configuration = CommandConfiguration(commandName: "version", abstract: "Print the CLI version.")

    @Flag(help: "Print only the version.")
    var short = false

    func outcome(in context: CommandContext) -> CommandOutcome {
        CommandOutcome(
            standardOutput: short ? "\(LinkerdVersion.current)\n" : "Client version: \(LinkerdVersion.current)\n")
    }
}
