/// Identity material that cannot be used, naming where it came from so an operator knows what to fix:
/// `"/var/run/linkerd/identity/end-entity/key.p8: is not a PKCS#8 DER private key: ..."`.
///
/// Thrown for the identity directory and its files (``IdentityFiles``), the trust anchors
/// (``IdentityTrustAnchors``) and certificates that cannot be installed (``ProxyCredentials``).
public struct IdentityMaterialError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A file path, an environment variable, or a description of the input when it came from neither.
    public var source: String
    /// What is wrong with it.
    public var reason: String

    public init(source: String, reason: String) {
        self.source = source
        self.reason = reason
    }

    /// `<source>: <reason>`.
    public var description: String {
        "\(source): \(reason)"
    }
}
