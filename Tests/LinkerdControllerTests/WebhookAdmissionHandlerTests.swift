import Foundation
import KubeModel
import LinkerdController
import LinkerdInject
import LinkerdTestSupport
import Logging
import Testing

@Suite("AdmissionHandler: the webhook's decision, without sockets")
struct WebhookAdmissionHandlerTests {
    @Test(
        "an injectable pod gets a base64 JSON patch that adds linkerd-proxy",
        arguments: [
            AdmissionReview.v1, AdmissionReview.v1beta1,
        ])
    func injectsPod(apiVersion: String) async throws {
        let subject = HandlerUnderTest()
        let pod = Fixtures.pod()
        let outcome = await subject.handler.review(
            try Fixtures.review(apiVersion: apiVersion, uid: "uid-\(apiVersion)", object: pod))
        let answer = try Answer(outcome)
        #expect(answer.review.apiVersion == apiVersion)
        #expect(answer.review.kind == "AdmissionReview")
        #expect(answer.review.request == nil)
        let response = try #require(answer.response)
        #expect(response.uid == "uid-\(apiVersion)")
        #expect(response.allowed)
        #expect(response.patchType == "JSONPatch")
        let patched = try #require(try answer.patch()).apply(to: pod)
        #expect(patched.containerNames.contains(MeshKeys.proxyContainerName))
        #expect(
            patched["metadata"]?["annotations"]?[MeshKeys.createdBy]?.stringValue?.hasPrefix("linkerd/proxy-injector")
                == true)
        #expect(outcome.events.isEmpty, "a bare pod has no owner to report on")
        let requests = subject.samples("proxy_inject_admission_requests_total")
        #expect(requests.count == 1)
        #expect(requests.first?.contains(#"owner_kind="pod""#) == true)
        #expect(requests.first?.contains(#"annotation_at="namespace""#) == true)
        #expect(requests.first?.contains(#"namespace="apps""#) == true)
        let responses = subject.samples("proxy_inject_admission_responses_total")
        #expect(responses.first?.contains(#"skip="false""#) == true)
        #expect(responses.first?.hasSuffix(" 1") == true)
    }

    @Test func podGetsTheRequestNamespaceBeforeInjection() async throws {
        // Only the review's namespace says "inject": the pod itself carries none, as pods from templates.
        let subject = HandlerUnderTest(namespaces: ["team-a": [MeshKeys.inject: MeshKeys.injectEnabled]])
        let pod = Fixtures.pod(name: nil, generateName: "web-")
        let answer = try Answer(
            await subject.handler.review(try Fixtures.review(namespace: "team-a", object: pod)))
        let patched = try #require(try answer.patch()).apply(to: pod)
        #expect(patched.containerNames.contains(MeshKeys.proxyContainerName))
        #expect(
            subject.samples("proxy_inject_admission_requests_total").first?.contains(#"namespace="team-a""#) == true)
    }

    @Test func skippedPodIsAllowedWithoutPatch() async throws {
        let subject = HandlerUnderTest(namespaces: [:])
        let answer = try Answer(await subject.handler.review(try Fixtures.review(object: Fixtures.pod())))
        #expect(answer.response?.allowed == true)
        #expect(answer.response?.patch == nil)
        #expect(answer.response?.patchType == nil)
        let responses = subject.samples("proxy_inject_admission_responses_total")
        #expect(responses.first?.contains(#"skip="true""#) == true)
        #expect(responses.first?.contains(#"skip_reason="injection_enable_annotation_absent""#) == true)
    }

    @Test func disabledPodInInjectedNamespaceIsSkipped() async throws {
        let subject = HandlerUnderTest()
        let pod = Fixtures.pod(annotations: [MeshKeys.inject: MeshKeys.injectDisabled])
        let answer = try Answer(await subject.handler.review(try Fixtures.review(object: pod)))
        #expect(answer.response?.patch == nil)
        #expect(
            subject.samples("proxy_inject_admission_responses_total").first?.contains(
                #"skip_reason="injection_disable_annotation_present""#) == true)
    }

    @Test func skippedPodWithAnOpaquePortGetsTheAnnotationPatch() async throws {
        let subject = HandlerUnderTest(namespaces: [:])
        let pod = Fixtures.pod(containerPorts: [[3306, 8080]])
        let answer = try Answer(await subject.handler.review(try Fixtures.review(object: pod)))
        let patched = try #require(try answer.patch()).apply(to: pod)
        #expect(patched["metadata"]?["annotations"]?[MeshKeys.opaquePorts] == "3306")
        #expect(!patched.containerNames.contains(MeshKeys.proxyContainerName))
        // Upstream counts a skipped pod that got a patch as not skipped.
        #expect(subject.samples("proxy_inject_admission_responses_total").first?.contains(#"skip="false""#) == true)
    }

    @Test func serviceGetsTheOpaquePortsPatch() async throws {
        let subject = HandlerUnderTest()
        let service = Fixtures.service(ports: [5432, 80])
        let answer = try Answer(
            await subject.handler.review(
                try Fixtures.review(kind: "Service", resource: "services", object: service)))
        let patched = try #require(try answer.patch()).apply(to: service)
        #expect(patched["metadata"]?["annotations"]?[MeshKeys.opaquePorts] == "5432")
        #expect(subject.samples("proxy_inject_admission_requests_total").first?.contains(#"owner_kind="""#) == true)
    }

    @Test func serviceWithoutOpaquePortsIsAllowedUnchanged() async throws {
        let subject = HandlerUnderTest()
        let answer = try Answer(
            await subject.handler.review(
                try Fixtures.review(kind: "Service", resource: "services", object: Fixtures.service(ports: [80]))))
        #expect(answer.response?.allowed == true)
        #expect(answer.response?.patch == nil)
    }

    @Test func otherKindsAreAllowedUnchanged() async throws {
        let subject = HandlerUnderTest()
        let configMap: JSONValue = [
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "settings"], "data": ["a": "b"],
        ]
        let answer = try Answer(
            await subject.handler.review(
                try Fixtures.review(kind: "ConfigMap", resource: "configmaps", object: configMap)))
        #expect(answer.response?.allowed == true)
        #expect(answer.response?.patch == nil)
    }

    @Test func podOfADeploymentReportsOnTheDeployment() async throws {
        let api = StubKubeAPI(objects: [
            "replicasets/apps/web-7d9f": [
                "metadata": [
                    "name": "web-7d9f", "namespace": "apps", "uid": "rs-uid",
                    "ownerReferences": [Fixtures.ownerReference(kind: "Deployment", name: "web", uid: "deploy-uid")],
                ]
            ]
        ])
        let subject = HandlerUnderTest(api: api)
        let pod = Fixtures.pod(ownerReferences: [
            Fixtures.ownerReference(kind: "ReplicaSet", name: "web-7d9f", uid: "rs-uid")
        ])
        let outcome = await subject.handler.review(try Fixtures.review(object: pod))
        let patched = try #require(try Answer(outcome).patch()).apply(to: pod)
        #expect(patched.containerNames.contains(MeshKeys.proxyContainerName))
        #expect(
            outcome.events == [
                AdmissionEvent(
                    type: .normal, reason: "Injected", message: "Linkerd sidecar proxy injected",
                    object: ObjectReference(
                        apiVersion: "apps/v1", kind: "Deployment", namespace: "apps", name: "web", uid: "deploy-uid"))
            ])
        #expect(
            subject.samples("proxy_inject_admission_requests_total").first?.contains(#"owner_kind="deployment""#)
                == true)

        // The ReplicaSet's owners are cached: a second pod of it needs no lookup.
        _ = await subject.handler.review(try Fixtures.review(uid: "second", object: pod))
        #expect(api.gets.value == ["replicasets/apps/web-7d9f"])
    }

    @Test func skippedPodOfADeploymentReportsWhy() async throws {
        let subject = HandlerUnderTest(namespaces: [:])
        let pod = Fixtures.pod(ownerReferences: [
            Fixtures.ownerReference(kind: "StatefulSet", name: "db", uid: "sts-uid")
        ])
        let outcome = await subject.handler.review(try Fixtures.review(object: pod))
        #expect(
            outcome.events.map(\.message) == [
                "Linkerd sidecar proxy injection skipped: \(SkipReason.injectionEnableAnnotationAbsent.text)"
            ])
        #expect(outcome.events.map(\.reason) == ["InjectionSkipped"])
        #expect(outcome.events.first?.object.kind == "StatefulSet")
    }

    @Test func dryRunEmitsNoEvents() async throws {
        let subject = HandlerUnderTest()
        let pod = Fixtures.pod(ownerReferences: [Fixtures.ownerReference(kind: "DaemonSet", name: "agent", uid: "ds")])
        let dryRun = await subject.handler.review(try Fixtures.review(object: pod, dryRun: true))
        #expect(dryRun.events.isEmpty)
        let patched = try #require(try Answer(dryRun).patch()).apply(to: pod)
        #expect(patched.containerNames.contains(MeshKeys.proxyContainerName), "a dry run still gets the patch")
        let real = await subject.handler.review(try Fixtures.review(object: pod, dryRun: false))
        #expect(real.events.map(\.reason) == ["Injected"])
    }

    @Test func annotationWarningsAreCounted() async throws {
        let subject = HandlerUnderTest()
        let pod = Fixtures.pod(annotations: [MeshKeys.proxyCPURequest: "lots"])
        let answer = try Answer(await subject.handler.review(try Fixtures.review(object: pod)))
        #expect(answer.response?.allowed == true)
        let warnings = subject.samples("proxy_inject_annotation_warnings_total")
        #expect(warnings.count == 1)
        #expect(warnings.first?.contains(#"annotation="config.linkerd.io/proxy-cpu-request""#) == true)
        #expect(warnings.first?.contains(#"namespace="apps""#) == true)
        #expect(
            subject.samples("proxy_inject_admission_requests_total").first?.contains(#"proxy_cpu_request="lots""#)
                == true)
    }

    @Test func configurationFailureAdmitsWithoutPatch() async throws {
        struct Unreadable: Error {}
        let subject = HandlerUnderTest(configuration: { throw Unreadable() })
        let answer = try Answer(await subject.handler.review(try Fixtures.review(uid: "u-9", object: Fixtures.pod())))
        #expect(answer.response?.uid == "u-9")
        #expect(answer.response?.allowed == true)
        #expect(answer.response?.patch == nil)
        #expect(answer.response?.warnings?.first?.contains("mesh configuration") == true)
        #expect(subject.samples("proxy_inject_admission_errors_total") == ["proxy_inject_admission_errors_total 1"])
        #expect(subject.samples("proxy_inject_admission_requests_total").isEmpty)
    }

    @Test func namespaceLookupFailureAdmitsWithoutPatch() async throws {
        let api = StubKubeAPI(getFailure: KubeError(code: .server(statusCode: 503), message: "unavailable"))
        let subject = HandlerUnderTest(api: api, namespaceLookup: NamespaceAnnotationLookup(api: api))
        let answer = try Answer(await subject.handler.review(try Fixtures.review(object: Fixtures.pod())))
        #expect(answer.response?.allowed == true)
        #expect(answer.response?.patch == nil)
        #expect(subject.samples("proxy_inject_admission_errors_total") == ["proxy_inject_admission_errors_total 1"])
    }

    @Test(.timeLimit(.minutes(1)))
    func namespaceLookupOutOfTimeAdmitsWithoutPatch() async throws {
        let api = StubKubeAPI(hangingResources: ["namespaces"])
        let subject = HandlerUnderTest(api: api, namespaceLookup: NamespaceAnnotationLookup(api: api))
        let review = Task { await subject.handler.review(try Fixtures.review(object: Fixtures.pod())) }
        try await subject.clock.waitForSleepers(atLeast: 1)
        subject.clock.advance(by: .seconds(2))
        let answer = try Answer(try await review.value)
        #expect(answer.response?.allowed == true)
        #expect(answer.response?.patch == nil)
        #expect(answer.response?.warnings?.first?.contains("reading namespace \"apps\"") == true)
        #expect(subject.samples("proxy_inject_admission_errors_total") == ["proxy_inject_admission_errors_total 1"])
        #expect(
            subject.log.records.contains {
                $0.level == .error && $0.metadata["error"]?.contains("no answer within") == true
            })
        try await eventually("the hung lookup is cancelled") { api.cancelledGets.value == 1 }
    }

    @Test(.timeLimit(.minutes(1)))
    func ownerLookupOutOfTimeInjectsWithoutOwner() async throws {
        let api = StubKubeAPI(hangingResources: ["replicasets"])
        let subject = HandlerUnderTest(api: api)
        let pod = Fixtures.pod(ownerReferences: [
            Fixtures.ownerReference(kind: "ReplicaSet", name: "web-7d9f", uid: "rs-uid")
        ])
        let review = Task { await subject.handler.review(try Fixtures.review(object: pod)) }
        try await subject.clock.waitForSleepers(atLeast: 1)
        subject.clock.advance(by: .seconds(1))
        #expect(subject.clock.sleeperCount == 1, "the budget is 2 s")
        subject.clock.advance(by: .seconds(1))
        let outcome = try await review.value
        let patched = try #require(try Answer(outcome).patch()).apply(to: pod)
        #expect(patched.containerNames.contains(MeshKeys.proxyContainerName))
        #expect(outcome.events.isEmpty, "no owner, so no Event")
        #expect(
            !subject.samples("proxy_inject_admission_errors_total").contains("proxy_inject_admission_errors_total 1"))
        #expect(subject.log.records.contains { $0.level == .warning && $0.message.contains("owner") })
        try await eventually("the hung lookup is cancelled") { api.cancelledGets.value == 1 }
    }

    @Test func lookupsAnsweredInTimeStopTheTimer() async throws {
        let api = StubKubeAPI()
        let subject = HandlerUnderTest(api: api, namespaceLookup: NamespaceAnnotationLookup(api: api))
        _ = try Answer(await subject.handler.review(try Fixtures.review(object: Fixtures.pod())))
        #expect(api.gets.value == ["namespaces//apps"])
        try await eventually("the deadline's timer is cancelled") { subject.clock.sleeperCount == 0 }
    }

    @Test func longAnnotationValuesAreLoggedAbbreviated() async throws {
        let subject = HandlerUnderTest()
        let value = String(repeating: "x", count: 100_000)
        let pod = Fixtures.pod(annotations: [MeshKeys.proxyCPURequest: value])
        _ = try Answer(await subject.handler.review(try Fixtures.review(object: pod)))
        let logged = try #require(subject.log.records.first { $0.message == "ignoring an annotation" })
        let loggedValue = try #require(logged.metadata["value"])
        #expect(loggedValue == "\"" + String(repeating: "x", count: 200) + "\"…")
    }

    @Test func shortAnnotationValuesAreLoggedQuoted() async throws {
        let subject = HandlerUnderTest()
        let pod = Fixtures.pod(annotations: [MeshKeys.proxyCPURequest: "lots\n"])
        _ = try Answer(await subject.handler.review(try Fixtures.review(object: pod)))
        let logged = try #require(subject.log.records.first { $0.message == "ignoring an annotation" })
        #expect(logged.metadata["value"] == #""lots\n""#)
    }

    @Test func emptyBodyIsAnsweredEmpty() async {
        let outcome = await HandlerUnderTest().handler.review(Data())
        #expect(outcome.statusCode == 200)
        #expect(outcome.body.isEmpty)
    }

    @Test(
        "a body that is not an AdmissionReview is answered 400 with the reason",
        arguments: [
            (#"{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"#, "not valid JSON"),
            (#"[1, 2]"#, "the body is a JSON array, expected an AdmissionReview object"),
            (#"{"kind": "AdmissionReview", "request": {"uid": "x"}}"#, "apiVersion is missing"),
            (
                #"{"apiVersion": "admission.k8s.io/v2", "kind": "AdmissionReview", "request": {"uid": "x"}}"#,
                #"apiVersion "admission.k8s.io/v2" is not supported"#
            ),
            (#"{"apiVersion": "admission.k8s.io/v1", "kind": "Pod"}"#, #"kind "Pod" is not "AdmissionReview""#),
            (#"{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}"#, "request is missing"),
            (
                #"{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"kind": {"kind": "Pod"}}}"#,
                "request.uid is missing"
            ),
            (
                #"{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": 7}}"#,
                "request.uid is a number, expected a string"
            ),
            (
                #"{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": "x", "object": []}}"#,
                "request.object is a array, expected an object"
            ),
        ])
    func malformedRequests(body: String, message: String) async {
        let subject = HandlerUnderTest()
        let outcome = await subject.handler.review(Data(body.utf8))
        #expect(outcome.statusCode == 400)
        let text = String(decoding: outcome.body, as: UTF8.self)
        #expect(text.contains(message), "\(text)")
        #expect(subject.samples("proxy_inject_admission_requests_total").isEmpty)
    }

    @Test func otherOperationsAreAllowedUnchanged() async throws {
        let subject = HandlerUnderTest()
        let answer = try Answer(
            await subject.handler.review(try Fixtures.review(object: Fixtures.pod(), operation: "UPDATE")))
        #expect(answer.response?.allowed == true)
        #expect(answer.response?.patch == nil)
    }

    @Test func podWithThreeHundredContainers() async throws {
        let subject = HandlerUnderTest()
        let pod = Fixtures.pod(containerPorts: (0..<300).map { [8000 + $0] })
        let clock = ContinuousClock()
        let start = clock.now
        let outcome = await subject.handler.review(try Fixtures.review(object: pod))
        let elapsed = clock.now - start
        let patched = try #require(try Answer(outcome).patch()).apply(to: pod)
        #expect(patched.containerNames.contains(MeshKeys.proxyContainerName))
        #expect(patched["spec"]?["containers"]?.arrayValue?.count ?? 0 >= 300)
        #expect(elapsed < .seconds(2), "took \(elapsed)")
    }
}
