import Foundation
import KubeModel
import LinkerdTestSupport

extension KubeTestServer {
    /// A kubeconfig YAML text pointing at this server: one cluster (`server`, and with TLS
    /// `certificate-authority-data`), one user with `token` (or no credentials for nil), one context with the
    /// optional namespace, and `current-context` set.
    public func kubeconfig(token: String?, namespace: String? = nil) -> String {
        var user: [String] = []
        if let token {
            user.append("token: \(Self.quoted(token))")
        }
        return kubeconfig(userFields: user, namespace: namespace)
    }

    /// Like `kubeconfig(token:namespace:)`, with a client certificate (`client-certificate-data`,
    /// `client-key-data`) as the user's credential; issue one with `certificateAuthority.issue(commonName:)`.
    public func kubeconfig(clientCertificate: IssuedCertificate, namespace: String? = nil) -> String {
        kubeconfig(
            userFields: [
                "client-certificate-data: \(Data(clientCertificate.certificatePEM.utf8).base64EncodedString())",
                "client-key-data: \(Data(clientCertificate.privateKeyPEM.utf8).base64EncodedString())",
            ],
            namespace: namespace)
    }

    private func kubeconfig(userFields: [String], namespace: String?) -> String {
        var lines = [
            "apiVersion: v1",
            "kind: Config",
            "clusters:",
            "- name: kube-test-server",
            "  cluster:",
            "    server: \(Self.quoted(baseURL))",
        ]
        if core.configuration.tls {
            lines.append("    certificate-authority-data: \(Data(caCertificatePEM.utf8).base64EncodedString())")
        }
        lines += ["users:", "- name: kube-test-user"]
        lines += userFields.isEmpty ? ["  user: {}"] : ["  user:"] + userFields.map { "    " + $0 }
        lines += [
            "contexts:",
            "- name: kube-test-server",
            "  context:",
            "    cluster: kube-test-server",
            "    user: kube-test-user",
        ]
        if let namespace {
            lines.append("    namespace: \(Self.quoted(namespace))")
        }
        lines += ["current-context: kube-test-server", "preferences: {}"]
        return lines.joined(separator: "\n") + "\n"
    }

    /// A YAML double-quoted scalar (JSON string syntax is valid YAML).
    private static func quoted(_ text: String) -> String {
        JSONValue.string(text).jsonString
    }
}
