import ArgumentParser
import Foundation
import LinkerdCore
import X509

/// A command whose outcome depends on the time: it gets the time once, as a parameter, so tests can choose it.
protocol ClockedCommand: OutcomeCommand {
    func outcome(in context: CommandContext, now: Date) -> CommandOutcome
}

extension ClockedCommand {
    /// The outcome at the system clock's current time.
    func outcome(in context: CommandContext) -> CommandOutcome {
        outcome(in: context, now: SystemWallClock().now())
    }
}

extension LinkerdCommand {
    /// As ``run(_:context:)``, with `now` as the current time of the commands that read the time (`identity`).
    public static func run(_ arguments: [String], context: CommandContext, now: Date) -> CommandOutcome {
        guard let command = try? parseAsRoot(arguments), let clocked = command as? any ClockedCommand else {
            return run(arguments, context: context)
        }
        return clocked.outcome(in: context, now: now)
    }
}

/// `linkerd identity`: the mesh's PKI, created and checked with this tool alone.
struct IdentityCommand: OutcomeCommand {
    static let configuration = CommandConfiguration(
        commandName: "identity",
        abstract: "Create and inspect the mesh's trust anchor and issuer certificates.",
        discussion: """
            Every meshed workload gets a short-lived certificate from the identity service, which signs it with \
            the issuer certificate; proxies trust the trust anchor that signed the issuer. Typical bootstrap:

              linkerd identity create-trust-anchor --cert-out ca.crt --key-out ca.key
              linkerd identity create-issuer --ca-cert ca.crt --ca-key ca.key \\
                --cert-out issuer.crt --key-out issuer.key
              linkerd identity inspect issuer.crt ca.crt
            """,
        subcommands: [CreateTrustAnchorCommand.self, CreateIssuerCommand.self, InspectCertificatesCommand.self]
    )

    /// Without a subcommand: the group's help.
    func outcome(in context: CommandContext) -> CommandOutcome {
        CommandOutcome(standardOutput: LinkerdCommand.helpMessage(for: Self.self) + "\n")
    }
}

/// The options every certificate-creating command shares.
struct CertificateCreationOptions: ParsableArguments {
    @Option(help: "The mesh's trust domain, which the default names end with.")
    var trustDomain = "cluster.local"

    @Option(
        name: .customLong("cert-out"), help: ArgumentHelp("Where to write the PEM certificate.", valueName: "file"))
    var certificateOutput: String

    @Option(
        name: .customLong("key-out"),
        help: ArgumentHelp("Where to write the PKCS#8 PEM private key (mode 0600).", valueName: "file"))
    var keyOutput: String

    @Flag(help: "Overwrite the output files if they exist.")
    var force = false

    func validate() throws {
        do {
            _ = try IdentityName.controlPlane(
                component: "linkerd-identity", namespace: "linkerd", trustDomain: trustDomain)
        } catch {
            throw ValidationError("--trust-domain: \(error)")
        }
    }

    /// Checks that the outputs can be created, before anything is generated.
    func checkOutputs() throws(IdentityError) {
        try IdentityFiles.checkOutputs([certificateOutput, keyOutput], force: force)
    }

    /// Writes `authority`'s certificate (mode 0644) and key (mode 0600), both or neither.
    func write(_ authority: CreatedAuthority) throws(IdentityError) {
        try IdentityFiles.create(
            [
                OutputFile(path: certificateOutput, contents: authority.certificatePEM, mode: 0o644),
                OutputFile(path: keyOutput, contents: authority.privateKeyPEM, mode: 0o600),
            ],
            force: force)
    }

    /// The lines that name the written files.
    func writtenFiles() -> String {
        "  certificate  \(certificateOutput)\n  private key  \(keyOutput) (mode 0600)\n"
    }
}

/// Parses a `--validity` value, which must be positive.
private func parseValidity(_ text: String) throws -> GoDuration {
    let duration = try GoDuration(parsing: text)
    guard duration > .zero else {
        throw ValidationError("the validity \(text) is not positive")
    }
    return duration
}

/// Checks a `--common-name` value.
private func validateCommonName(_ name: String?) throws {
    if let name, name.trimmingWhitespace.isEmpty {
        throw ValidationError("--common-name is empty")
    }
}

/// How many days `end` is after `start`, to the nearest day (certificate times drop the fraction of a second, so
/// a 365-day certificate ends just under 365 days after its creation).
private func days(from start: Date, to end: Date) -> Int {
    Int((end.timeIntervalSince(start) / 86_400).rounded())
}

struct CreateTrustAnchorCommand: ClockedCommand {
    static let configuration = CommandConfiguration(
        commandName: "create-trust-anchor",
        abstract: "Create the mesh's trust anchor: a self-signed ECDSA P-256 root CA.",
        discussion: """
            The certificate has basicConstraints CA:TRUE with path length 1, keyUsage keyCertSign and cRLSign, and \
            a subject key identifier. Proxies and the identity service read it from the ConfigMap \
            linkerd-identity-trust-roots (key ca-bundle.crt). Keep the key offline: it only signs issuers.
            """
    )

    @OptionGroup var creation: CertificateCreationOptions

    @Option(help: ArgumentHelp("The subject's common name (default: root.linkerd.<trust-domain>).", valueName: "name"))
    var commonName: String?

    @Option(
        help: "How long the certificate is valid, in Go duration syntax (default: 87600h, 10 years).",
        transform: parseValidity
    )
    var validity = GoDuration(.seconds(87_600 * 3_600))

    func validate() throws {
        try validateCommonName(commonName)
    }

    func outcome(in context: CommandContext, now: Date) -> CommandOutcome {
        let name = commonName ?? "root.linkerd.\(creation.trustDomain)"
        do {
            try creation.checkOutputs()
            let anchor = try IdentityPKI.makeTrustAnchor(commonName: name, validity: validity, now: now)
            try creation.write(anchor)
            let end = anchor.certificate.notValidAfter
            return CommandOutcome(
                standardOutput: """
                    Created the trust anchor \(anchor.certificate.subject) (ECDSA P-256), valid until \
                    \(IdentityPKI.timestamp(end)) (\(days(from: now, to: end)) days):
                    \(creation.writtenFiles())\
                    Next: linkerd identity create-issuer --ca-cert \(creation.certificateOutput) \
                    --ca-key \(creation.keyOutput) --cert-out issuer.crt --key-out issuer.key

                    """)
        } catch {
            return .failure("\(error)")
        }
    }
}

struct CreateIssuerCommand: ClockedCommand {
    static let configuration = CommandConfiguration(
        commandName: "create-issuer",
        abstract: "Create the identity service's issuer: an ECDSA P-256 intermediate CA signed by the trust anchor.",
        discussion: """
            The certificate has basicConstraints CA:TRUE with path length 0, keyUsage keyCertSign and cRLSign, \
            subject and authority key identifiers, and an ECDSA-SHA256 signature; it never outlives the trust \
            anchor. Store it in the Secret linkerd-identity-issuer in either layout the identity service reads: \
            crt.pem and key.pem (linkerd.io/tls), or tls.crt, tls.key and ca.crt (kubernetes.io/tls); the command \
            prints both kubectl commands.
            """
    )

    @Option(
        name: .customLong("ca-cert"),
        help: ArgumentHelp("The trust anchor's PEM certificate (or a bundle holding it).", valueName: "file"))
    var anchorCertificate: String

    @Option(
        name: .customLong("ca-key"),
        help: ArgumentHelp("The trust anchor's PEM private key (ECDSA P-256).", valueName: "file"))
    var anchorKey: String

    @OptionGroup var creation: CertificateCreationOptions

    @Option(
        help: ArgumentHelp("The subject's common name (default: identity.linkerd.<trust-domain>).", valueName: "name"))
    var commonName: String?

    @Option(
        help: "How long the certificate is valid, in Go duration syntax (default: 8760h, 1 year).",
        transform: parseValidity)
    var validity = GoDuration(.seconds(8_760 * 3_600))

    func validate() throws {
        try validateCommonName(commonName)
    }

    func outcome(in context: CommandContext, now: Date) -> CommandOutcome {
        let name = commonName ?? "identity.linkerd.\(creation.trustDomain)"
        do {
            try creation.checkOutputs()
            let signer = try IdentityPKI.signingAuthority(
                certificatePEM: try IdentityFiles.readText(anchorCertificate, context: context),
                certificateSource: anchorCertificate,
                keyPEM: try IdentityFiles.readText(anchorKey, context: context),
                keySource: anchorKey,
                now: now)
            let (issuer, clamped) = try IdentityPKI.makeIssuer(
                commonName: name, validity: validity, signer: signer, now: now)
            try creation.write(issuer)
            let end = issuer.certificate.notValidAfter
            let certificate = creation.certificateOutput
            let key = creation.keyOutput
            let secret = "kubectl -n linkerd create secret generic linkerd-identity-issuer"
            return CommandOutcome(
                standardOutput: """
                    Created the issuer \(issuer.certificate.subject) (ECDSA P-256), signed by \
                    \(signer.certificate.subject), valid until \(IdentityPKI.timestamp(end)) \
                    (\(days(from: now, to: end)) days):
                    \(creation.writtenFiles())\
                    Store it in the Secret linkerd-identity-issuer, in either layout the identity service reads:
                      linkerd.io/tls:    \(secret) --from-file=crt.pem=\(certificate) --from-file=key.pem=\(key)
                      kubernetes.io/tls: \(secret) --type=kubernetes.io/tls --from-file=tls.crt=\(certificate) \
                    --from-file=tls.key=\(key) --from-file=ca.crt=\(anchorCertificate)

                    """,
                standardError: clamped
                    ? "warning: the validity is cut to the trust anchor's, which ends \(IdentityPKI.timestamp(end))\n"
                    : "")
        } catch {
            return .failure("\(error)")
        }
    }
}

/// The output formats of `linkerd identity inspect`.
enum InspectionFormat: String, CaseIterable, ExpressibleByArgument {
    case text
    case json
}

struct InspectCertificatesCommand: ClockedCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Describe the certificates of PEM bundles: names, key, usages, validity and days left, chain.",
        discussion: """
            For each certificate: subject, issuer, serial, SANs, key algorithm, CA and path length, key usages, \
            validity, whole days left (negative once expired), SHA-256 fingerprint, and whether the next \
            certificate of the bundle signed it. A certificate that has expired, is not yet valid, or expires \
            within 60 days (when linkerd check starts warning) gets a warning. The exit status is 0 whatever the \
            certificates' state; it is 1 when an input cannot be read or decoded.
            """
    )

    @Argument(help: ArgumentHelp("PEM files, or - for standard input.", valueName: "file"))
    var files: [String] = []

    @Option(name: [.short, .long], help: "Output format: text or json.")
    var output: InspectionFormat = .text

    func validate() throws {
        guard !files.isEmpty else {
            throw ValidationError("no input: give PEM files, or - for standard input")
        }
        guard files.filter({ $0 == "-" }).count <= 1 else {
            throw ValidationError("\"-\" (standard input) is given more than once")
        }
    }

    func outcome(in context: CommandContext, now: Date) -> CommandOutcome {
        do {
            let bundles = try files.map { file throws(IdentityError) in
                try inspect(file, context: context, now: now)
            }
            switch output {
            case .text:
                return CommandOutcome(standardOutput: InspectionText.render(bundles))
            case .json:
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                let data = try encoder.encode(bundles)
                return CommandOutcome(standardOutput: String(decoding: data, as: UTF8.self) + "\n")
            }
        } catch {
            return .failure("\(error)")
        }
    }

    private func inspect(_ file: String, context: CommandContext, now: Date) throws(IdentityError) -> BundleInspection {
        let source = file == "-" ? "stdin" : file
        let bundle = try IdentityPKI.certificates(
            inPEM: try IdentityFiles.readText(file, context: context), source: source)
        var certificates: [CertificateInspection] = []
        for (index, bundled) in bundle.enumerated() {
            let next = index + 1 < bundle.count ? bundle[index + 1].certificate : nil
            certificates.append(
                try CertificateInspection(bundled, next: next, now: now, source: source, position: index + 1))
        }
        return BundleInspection(source: source, certificates: certificates)
    }
}
