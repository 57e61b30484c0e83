import Foundation
import KubeModel
import Testing

@Suite("JSON value")
struct JSONValueTests {
    @Test("keeps integers, doubles and unknown fields through a round trip")
    func lossless() throws {
        let text =
            #"{"big":9007199254740993,"ratio":0.25,"flag":true,"none":null,"list":[1,"a"],"x-unknown":{"deep":[{}]}}"#
        let value = try JSONValue(json: Data(text.utf8))
        #expect(value["big"] == .integer(9_007_199_254_740_993))
        #expect(value["ratio"] == .double(0.25))
        #expect(try JSONValue(json: value.jsonData()) == value)
    }

    @Test("a Pod decoded as JSONValue keeps the fields the typed model does not have")
    func podRoundTrip() throws {
        let text = #"""
            {"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","namespace":"emojivoto","labels":{"app":"web"}},
             "spec":{"containers":[{"name":"web","image":"web:1","futureField":{"x":1}}],"tolerations":[{"key":"k"}]}}
            """#
        let raw = try JSONValue(json: Data(text.utf8))
        let pod: Pod = try raw.decode()
        #expect(pod.metadata.name == "web")
        #expect(pod.spec?.containers.first?.image == "web:1")
        #expect(raw.value(atPath: "spec.tolerations") != nil)
        #expect(try JSONValue(json: raw.jsonData()) == raw)
    }

    @Test("garbage is a decoding error, not a crash")
    func garbage() {
        #expect(throws: DecodingError.self) { try JSONValue(json: Data("{not json".utf8)) }
        #expect(throws: DecodingError.self) { try JSONValue(json: Data()) }
    }
}

@Suite("Label and field selectors")
struct SelectorTests {
    @Test(
        "label queries match like the API server",
        arguments: [
            ("app=web", ["app": "web"], true),
            ("app==web", ["app": "db"], false),
            ("app!=web", [:], true),
            ("app!=web", ["app": "web"], false),
            ("env in (prod, staging)", ["env": "staging"], true),
            ("env in (prod,staging)", [:], false),
            ("env notin (prod)", [:], true),
            ("env notin (prod)", ["env": "prod"], false),
            ("canary", ["canary": ""], true),
            ("!canary", ["canary": "yes"], false),
            ("app=web,tier in (front),!canary", ["app": "web", "tier": "front"], true),
            ("linkerd.io/control-plane-ns=linkerd", ["linkerd.io/control-plane-ns": "linkerd"], true),
            ("", ["any": "thing"], true),
        ])
    func labelQuery(selector: String, labels: [String: String], matches: Bool) throws {
        #expect(try LabelQuery(parsing: selector).matches(labels) == matches)
    }

    @Test(
        "malformed label queries are rejected with the reason",
        arguments: [
            ("app=web,", "empty requirement"),
            ("env in (a", "unbalanced parenthesis"),
            ("env in a,b", "parentheses"),
            ("a b c d", "is not key=value"),
            ("app=we b", "not a valid label value"),
            ("=web", "not a valid label key"),
        ])
    func malformed(selector: String, reason: String) {
        let error = #expect(throws: SelectorParseError.self) { try LabelQuery(parsing: selector) }
        #expect(error?.description.contains(reason) == true, "\(error?.description ?? "")")
        #expect(error?.description.contains(selector) == true)
    }

    @Test("field queries compare dotted paths, a missing field being empty")
    func fieldQuery() throws {
        let pod: JSONValue = ["metadata": ["name": "web", "namespace": "a"], "spec": ["nodeName": "n1"]]
        #expect(try FieldQuery(parsing: "metadata.name=web,spec.nodeName!=n2").matches(pod))
        #expect(try FieldQuery(parsing: "status.phase=").matches(pod))
        #expect(try !FieldQuery(parsing: "metadata.namespace==b").matches(pod))
        #expect(throws: SelectorParseError.self) { try FieldQuery(parsing: "metadata.name") }
    }

    @Test("LabelSelector objects match with expressions")
    func labelSelector() {
        let selector = LabelSelector(
            matchLabels: ["app": "web"],
            matchExpressions: [
                .init(key: "config.linkerd.io/admission-webhooks", operator: "NotIn", values: ["disabled"])
            ])
        #expect(selector.matches(["app": "web"]))
        #expect(!selector.matches(["app": "web", "config.linkerd.io/admission-webhooks": "disabled"]))
        #expect(LabelSelector().matches([:]))
        #expect(!LabelSelector(matchExpressions: [.init(key: "a", operator: "Bogus")]).matches(["a": "b"]))
    }
}

@Suite("Resource paths, errors and time")
struct ResourcePathTests {
    @Test("paths follow the API layout")
    func paths() {
        #expect(
            ResourceType.pods.path(namespace: "a", name: "web", subresource: "status")
                == "/api/v1/namespaces/a/pods/web/status")
        #expect(ResourceType.pods.path() == "/api/v1/pods")
        #expect(ResourceType.namespaces.path(namespace: "ignored", name: "a") == "/api/v1/namespaces/a")
        #expect(
            ResourceType.leases.path(namespace: "linkerd", name: "l")
                == "/apis/coordination.k8s.io/v1/namespaces/linkerd/leases/l")
        #expect(ResourceType.mutatingWebhookConfigurations.apiVersion == "admissionregistration.k8s.io/v1")
        #expect(Set(ResourceType.builtIn.map(\.plural)).count == ResourceType.builtIn.count)
    }

    @Test(
        "HTTP failures are classified",
        arguments: [
            (401, nil, KubeError.Code.unauthorized), (403, nil, .forbidden), (404, nil, .notFound),
            (409, "AlreadyExists", .alreadyExists), (409, "Conflict", .conflict), (410, "Expired", .gone),
            (422, "Invalid", .invalid), (429, "TooManyRequests", .tooManyRequests), (400, "BadRequest", .badRequest),
            (503, "ServiceUnavailable", .server(statusCode: 503)), (504, "Timeout", .timeout),
        ] as [(Int, String?, KubeError.Code)])
    func classification(statusCode: Int, reason: String?, code: KubeError.Code) {
        let status = reason.map { Status.failure(code: statusCode, reason: $0, message: "m") }
        #expect(KubeError(statusCode: statusCode, status: status).code == code)
    }

    @Test("Retry-After comes from the header or the Status details")
    func retryAfter() {
        let status = Status.failure(
            code: 429, reason: "TooManyRequests", message: "slow", details: .init(retryAfterSeconds: 3))
        #expect(KubeError(statusCode: 429, status: status).retryAfter == .seconds(3))
        #expect(KubeError(statusCode: 429, status: nil, retryAfter: .seconds(7)).retryAfter == .seconds(7))
        #expect(KubeError(statusCode: 429, status: status).isRetryable)
        #expect(!KubeError(statusCode: 404, status: nil).isRetryable)
    }

    @Test("timestamps format and parse in both precisions")
    func timestamps() throws {
        let date = Date(timeIntervalSince1970: 1_714_564_800.123456)
        #expect(KubeTime.format(date) == "2024-05-01T12:00:00Z")
        #expect(KubeTime.formatMicro(date) == "2024-05-01T12:00:00.123456Z")
        let parsed = try #require(KubeTime.parse("2024-05-01T12:00:00.123456Z"))
        #expect(abs(parsed.timeIntervalSince(date)) < 0.000_001)
        #expect(KubeTime.parse("2024-05-01T14:00:00+02:00") == Date(timeIntervalSince1970: 1_714_564_800))
        #expect(KubeTime.parse("1969-12-31T23:59:59Z") == Date(timeIntervalSince1970: -1))
        for bad in [
            "", "2024-05-01", "2024-13-01T00:00:00Z", "2024-05-01T12:00:00", "2024-05-01T12:00:00.Z",
            "x024-05-01T12:00:00Z",
        ] {
            #expect(KubeTime.parse(bad) == nil, "\(bad)")
        }
    }
}

@Suite("AdmissionReview")
struct AdmissionReviewTests {
    @Test("decodes a v1beta1 review and keeps the object whole")
    func decodesV1beta1() throws {
        let text = #"""
            {"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"705ab4f5","kind":{"group":"","version":"v1","kind":"Pod"},
            "resource":{"group":"","version":"v1","resource":"pods"},"namespace":"emojivoto","operation":"CREATE",
            "userInfo":{"username":"system:serviceaccount:kube-system:replicaset-controller"},
            "object":{"metadata":{"generateName":"web-"},"spec":{"containers":[{"name":"web"}]},"x":1},"dryRun":false}}
            """#
        let review = try JSONDecoder().decode(AdmissionReview.self, from: Data(text.utf8))
        #expect(review.apiVersion == AdmissionReview.v1beta1)
        #expect(review.request?.object?["x"] == 1)
        let pod: Pod = try #require(review.request?.object).decode()
        #expect(pod.spec?.containers.map(\.name) == ["web"])
    }

    @Test("webhook rules match operations and resources with wildcards")
    func rules() {
        let rule = MutatingWebhookConfiguration.Rule(
            operations: ["CREATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["pods"])
        #expect(rule.matches(operation: "CREATE", group: "", version: "v1", resource: "pods"))
        #expect(!rule.matches(operation: "UPDATE", group: "", version: "v1", resource: "pods"))
        let all = MutatingWebhookConfiguration.Rule(
            operations: ["*"], apiGroups: ["*"], apiVersions: ["*"], resources: ["*"])
        #expect(all.matches(operation: "CREATE", group: "apps", version: "v1", resource: "deployments"))
    }
}
