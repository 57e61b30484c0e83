import KubeModel

extension KubeTestServer {
    /// One call of a mutating webhook during a pod CREATE, as logged in `admissionLog`.
    public struct AdmissionRecord: Sendable, Hashable {
        /// What the call came to.
        public enum Outcome: Sendable, Hashable {
            /// Allowed without a patch.
            case allowed
            /// Allowed with this JSON patch, which was applied.
            case patched(JSONPatch)
            /// The webhook refused; `message` is the one the create was rejected with.
            case denied(message: String)
            /// The call failed (unreachable, TLS, timeout, non-200, bad or mismatched response, or a patch that
            /// cannot be applied). `ignored` when `failurePolicy: Ignore` let the create go on.
            case failed(message: String, ignored: Bool)
        }

        /// The MutatingWebhookConfiguration's name.
        public var configuration: String
        /// The webhook's name.
        public var webhook: String
        /// The AdmissionReview request that was sent.
        public var request: AdmissionReview.Request
        public var outcome: Outcome

        public init(configuration: String, webhook: String, request: AdmissionReview.Request, outcome: Outcome) {
            self.configuration = configuration
            self.webhook = webhook
            self.request = request
            self.outcome = outcome
        }
    }
}
