import Foundation
import KubeModel

/// Mutating admission of a pod CREATE: the only admission the server models.
///
/// Configurations run in name order, their webhooks in order, each seeing the pod as mutated by the ones before
/// (no reinvocation). A webhook is called when one of its rules matches CREATE of `pods` in group "" version
/// `v1` (scope `*`, `Namespaced` or absent), its `namespaceSelector` matches the namespace's labels and its
/// `objectSelector` the pod's labels (absent selectors match everything). Outcomes, as in kube-apiserver:
/// - a failed call: with `failurePolicy: Ignore` the pod goes on unchanged, otherwise (`Fail`, the default) the
///   create is rejected with 500 `Internal error occurred: failed calling webhook "NAME": ...`;
/// - `allowed: false`: rejected with the result's code (at least 400) and
///   `admission webhook "NAME" denied the request: MESSAGE`;
/// - a `JSONPatch` patch is applied; one that cannot be decoded or applied is a 500 whatever the failure policy.
/// Every call is logged in `admissionLog`.
struct PodAdmission: Sendable {
    let core: ServerCore
    let caller = WebhookCaller()

    func admit(pod: JSONValue, namespace: String, user: UserInfo, dryRun: Bool) async throws(Status) -> JSONValue {
        let (configurations, namespaceLabels) = core.read { store in
            (
                store.objects(.mutatingWebhookConfigurations),
                store.object(.namespaces, namespace: nil, name: namespace)?.objectLabels ?? [:]
            )
        }
        var pod = pod
        for configuration in configurations.sorted(by: { $0.objectName < $1.objectName }) {
            guard let decoded = try? configuration.decode(as: MutatingWebhookConfiguration.self) else { continue }
            for webhook in decoded.webhooks ?? [] where selects(webhook, pod: pod, namespaceLabels: namespaceLabels) {
                pod = try await call(
                    webhook, configuration: configuration.objectName, pod: pod, namespace: namespace, user: user,
                    dryRun: dryRun)
            }
        }
        return pod
    }

    private func selects(
        _ webhook: MutatingWebhookConfiguration.Webhook, pod: JSONValue, namespaceLabels: [String: String]
    ) -> Bool {
        let ruleMatches = (webhook.rules ?? []).contains { rule in
            rule.matches(operation: "CREATE", group: "", version: "v1", resource: "pods")
                && [nil, "*", "Namespaced"].contains(rule.scope)
        }
        return ruleMatches && (webhook.namespaceSelector?.matches(namespaceLabels) ?? true)
            && (webhook.objectSelector?.matches(pod.objectLabels) ?? true)
    }

    private func call(
        _ webhook: MutatingWebhookConfiguration.Webhook, configuration: String, pod: JSONValue, namespace: String,
        user: UserInfo, dryRun: Bool
    ) async throws(Status) -> JSONValue {
        let kind = AdmissionReview.GroupVersionKind(group: "", version: "v1", kind: "Pod")
        let resource = AdmissionReview.GroupVersionResource(group: "", version: "v1", resource: "pods")
        var request = AdmissionReview.Request(
            uid: UUID().uuidString.lowercased(), kind: kind, resource: resource,
            name: pod.objectName.isEmpty ? nil : pod.objectName, namespace: namespace, operation: "CREATE",
            userInfo: user, object: pod, dryRun: dryRun)
        request.requestKind = kind
        request.requestResource = resource
        request.options = ["kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"]

        func log(_ outcome: KubeTestServer.AdmissionRecord.Outcome) {
            let record = KubeTestServer.AdmissionRecord(
                configuration: configuration, webhook: webhook.name, request: request, outcome: outcome)
            core.withState { $0.admissionLog.append(record) }
        }

        let response: AdmissionReview.Response
        let routes = core.withState { $0.serviceRoutes }
        switch await caller.call(webhook, review: AdmissionReview(request: request), serviceRoutes: routes) {
        case .failure(let failure):
            let ignored = webhook.failurePolicy == "Ignore"
            log(.failed(message: failure.message, ignored: ignored))
            if ignored { return pod }
            throw Status.internalError("failed calling webhook \"\(webhook.name)\": \(failure.message)")
        case .success(let success):
            response = success
        }

        guard response.allowed else {
            let status = Self.denial(webhook: webhook.name, result: response.result)
            log(.denied(message: status.message ?? ""))
            throw status
        }
        guard let encodedPatch = response.patch else {
            log(.allowed)
            return pod
        }
        do throws(Status) {
            guard response.patchType == "JSONPatch" else {
                let patchType = response.patchType ?? "none"
                throw Status.internalError(
                    "webhook \"\(webhook.name)\" returned a patch of type \(patchType), not JSONPatch")
            }
            guard let data = Data(base64Encoded: encodedPatch),
                let patch = try? JSONDecoder().decode(JSONPatch.self, from: data)
            else {
                throw Status.internalError(
                    "webhook \"\(webhook.name)\" returned a patch that is not a base64 JSON patch")
            }
            let patched: JSONValue
            do {
                patched = try patch.apply(to: pod)
            } catch {
                throw Status.internalError(
                    "webhook \"\(webhook.name)\" returned a patch that cannot be applied: \(error)")
            }
            log(.patched(patch))
            return patched
        } catch {
            log(.failed(message: error.message ?? "", ignored: false))
            throw error
        }
    }

    /// kube-apiserver's `ToStatusErr`: the webhook's result status with a code of at least 400, status Failure, and
    /// the message prefixed with who denied.
    private static func denial(webhook: String, result: Status?) -> Status {
        var status = result ?? Status(status: "Failure")
        status.apiVersion = "v1"
        status.kind = "Status"
        if (status.code ?? 0) < 400 {
            status.code = 400
        }
        status.status = "Failure"
        let deniedBy = "admission webhook \"\(webhook)\" denied the request"
        if let message = status.message, !message.isEmpty {
            status.message = "\(deniedBy): \(message)"
        } else if let reason = status.reason, !reason.isEmpty {
            status.message = "\(deniedBy): \(reason)"
        } else {
            status.message = "\(deniedBy) without explanation"
        }
        return status
    }
}
