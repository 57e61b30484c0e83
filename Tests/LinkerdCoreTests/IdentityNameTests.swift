import Foundation
import LinkerdCore
import Testing

@Suite struct IdentityNameTests {
    @Test(arguments: [
        (
            "default.emojivoto.serviceaccount.identity.linkerd.cluster.local", "default", "emojivoto", "linkerd",
            "cluster.local"
        ),
        ("web-1.ns-2.serviceaccount.identity.linkerd-cp.example.com", "web-1", "ns-2", "linkerd-cp", "example.com"),
        ("a.b.serviceaccount.identity.c.d", "a", "b", "c", "d"),
        ("0.9.serviceaccount.identity.l.a.b.c.d", "0", "9", "l", "a.b.c.d"),
    ])
    func parsesTheGeneralForm(
        string: String,
        serviceAccount: String,
        namespace: String,
        controlPlaneNamespace: String,
        trustDomain: String
    ) throws {
        let name = try IdentityName(parsing: string)
        #expect(name.serviceAccount == serviceAccount)
        #expect(name.namespace == namespace)
        #expect(name.controlPlaneNamespace == controlPlaneNamespace)
        #expect(name.trustDomain == trustDomain)
        #expect(name.description == string)
        let built = try IdentityName(
            serviceAccount: serviceAccount,
            namespace: namespace,
            controlPlaneNamespace: controlPlaneNamespace,
            trustDomain: trustDomain
        )
        #expect(built == name)
    }

    @Test func controlPlaneComponentIdentity() throws {
        let name = try IdentityName.controlPlane(
            component: "linkerd-identity",
            namespace: "linkerd",
            trustDomain: "cluster.local"
        )
        #expect(name.description == "linkerd-identity.linkerd.serviceaccount.identity.linkerd.cluster.local")
        #expect(name.serviceAccount == "linkerd-identity")
        #expect(name.controlPlaneNamespace == "linkerd")
    }

    @Test(arguments: [
        ("", "it has 1 label, but an identity has at least 6"),
        ("default.emojivoto.serviceaccount.identity.linkerd", "it has 5 labels, but an identity has at least 6"),
        (
            "default.emojivoto.sa.identity.linkerd.cluster.local",
            #"the third and fourth labels are "sa.identity", but expected "serviceaccount.identity""#
        ),
        (
            "default.emojivoto.identity.serviceaccount.linkerd.cluster.local",
            #"the third and fourth labels are "identity.serviceaccount""#
        ),
        (
            "Default.emojivoto.serviceaccount.identity.linkerd.cluster.local",
            #"the service account "Default" contains "D", but a DNS-1123 label has only lowercase letters"#
        ),
        (
            "default.emoji_voto.serviceaccount.identity.linkerd.cluster.local",
            #"the namespace "emoji_voto" contains "_""#
        ),
        (".emojivoto.serviceaccount.identity.linkerd.cluster.local", #"the service account "" is empty"#),
        (
            "default.-emojivoto.serviceaccount.identity.linkerd.cluster.local",
            #"the namespace "-emojivoto" starts with "-""#
        ),
        (
            "default.emojivoto.serviceaccount.identity.linkerd-.cluster.local",
            #"the control-plane namespace "linkerd-" ends with "-""#
        ),
        (
            "default.emojivoto.serviceaccount.identity.linkerd.cluster..local",
            #"the trust domain "cluster..local" has an empty label"#
        ),
        (
            "default.emojivoto.serviceaccount.identity.linkerd.cluster.local.",
            #"the trust domain "cluster.local." has an empty label"#
        ),
        (
            "default.emojivoto.serviceaccount.identity.linkerd.cluster.Local",
            #"the trust domain "cluster.Local" has the label "Local", which contains "L""#
        ),
        (
            "default.emojivoto.serviceaccount.identity.linkerd.",
            #"the trust domain "" is empty"#
        ),
        (
            "\(String(repeating: "a", count: 64)).emojivoto.serviceaccount.identity.linkerd.cluster.local",
            "is 64 characters long, but a DNS-1123 label has at most 63"
        ),
    ])
    func rejectsMalformedNames(string: String, reason: String) {
        expectParseError(string, expected: "identity name", reason: reason) {
            try IdentityName(parsing: string)
        }
    }

    @Test func acceptsNamesOfUpTo253Characters() throws {
        let label50 = String(repeating: "a", count: 50)
        let prefix = "default.emojivoto.serviceaccount.identity.linkerd."
        let longest = prefix + [label50, label50, label50, label50].joined(separator: ".")
        #expect(longest.count == 253)
        #expect(try IdentityName(parsing: longest).description == longest)

        let tooLong = longest + "a"
        let reason = "it is 254 characters long, but a DNS name has at most 253"
        expectParseError(tooLong, expected: "identity name", reason: reason) {
            try IdentityName(parsing: tooLong)
        }
        expectParseError(tooLong, expected: "identity name", reason: "it is 254 characters long") {
            try IdentityName(
                serviceAccount: "default",
                namespace: "emojivoto",
                controlPlaneNamespace: "linkerd",
                trustDomain: String(tooLong.dropFirst(prefix.count))
            )
        }
    }

    @Test(arguments: [
        ("Web", "emojivoto", "linkerd", "cluster.local", "Web", "service account", #"it contains "W""#),
        ("web", "", "linkerd", "cluster.local", "", "namespace", "it is empty"),
        ("web", "emojivoto", "a.b", "cluster.local", "a.b", "control-plane namespace", #"it contains ".""#),
        (
            "web", "emojivoto", "linkerd", "-cluster.local", "-cluster.local", "trust domain",
            #"it has the label "-cluster", which starts with "-""#
        ),
    ])
    func rejectsInvalidParts(
        serviceAccount: String,
        namespace: String,
        controlPlaneNamespace: String,
        trustDomain: String,
        value: String,
        expected: String,
        reason: String
    ) {
        expectParseError(value, expected: expected, reason: reason) {
            try IdentityName(
                serviceAccount: serviceAccount,
                namespace: namespace,
                controlPlaneNamespace: controlPlaneNamespace,
                trustDomain: trustDomain
            )
        }
    }

    @Test func codesAsItsString() throws {
        let name = try IdentityName(parsing: "default.emojivoto.serviceaccount.identity.linkerd.cluster.local")
        let data = try JSONEncoder().encode([name])
        let json = #"["default.emojivoto.serviceaccount.identity.linkerd.cluster.local"]"#
        #expect(String(decoding: data, as: UTF8.self) == json)
        #expect(try JSONDecoder().decode([IdentityName].self, from: data) == [name])
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode([IdentityName].self, from: Data(#"["nope"]"#.utf8))
        }
    }
}
