import Foundation
import KubeModel
import LinkerdInject
import LinkerdTestSupport
import Testing

@testable import LinkerdController

private let web = RestartPolicy.Target(kind: .deployment, namespace: "app", name: "web")
private let optIn = [MeshKeys.autoRestart: "enabled"]
private let optOut = [MeshKeys.autoRestart: "disabled"]

struct RestartCase: Sendable, CustomTestStringConvertible {
    var name: String
    var workload: RestartPolicy.Workload
    var namespaceAnnotations: [String: String] = [:]
    var expected: RestartPolicy.Decision

    var testDescription: String { name }
}

@Suite("MeshAudit restart policy")
struct MeshAuditRestartPolicyTests {
    static let start = Date(timeIntervalSince1970: 1_700_000_000)

    static let cases: [RestartCase] = [
        RestartCase(name: "workload opted in", workload: .init(target: web, annotations: optIn), expected: .restart),
        RestartCase(
            name: "namespace opted in", workload: .init(target: web), namespaceAnnotations: optIn,
            expected: .restart),
        RestartCase(name: "nobody opted in", workload: .init(target: web), expected: .skip(.notOptedIn)),
        RestartCase(
            name: "namespace says disabled", workload: .init(target: web), namespaceAnnotations: optOut,
            expected: .skip(.optedOut)),
        RestartCase(
            name: "workload opts out of an opted-in namespace",
            workload: .init(target: web, annotations: optOut), namespaceAnnotations: optIn,
            expected: .skip(.optedOut)),
        RestartCase(
            name: "workload opts in within an opted-out namespace",
            workload: .init(target: web, annotations: optIn), namespaceAnnotations: optOut, expected: .restart),
        RestartCase(
            name: "typo on the workload",
            workload: .init(target: web, annotations: [MeshKeys.autoRestart: "Enabled"]), namespaceAnnotations: optIn,
            expected: .skip(.invalidAnnotation(.workload, value: "Enabled"))),
        RestartCase(
            name: "typo on the namespace", workload: .init(target: web),
            namespaceAnnotations: [MeshKeys.autoRestart: "true"],
            expected: .skip(.invalidAnnotation(.namespace, value: "true"))),
        RestartCase(
            name: "control-plane namespace",
            workload: .init(target: .init(kind: .deployment, namespace: "linkerd", name: "x"), annotations: optIn),
            expected: .skip(.controlPlane)),
        RestartCase(
            name: "restarted by kubectl 5 minutes ago",
            workload: .init(target: web, annotations: optIn, restartedAt: start.addingTimeInterval(-300)),
            expected: .skip(.recentlyRestarted(until: start.addingTimeInterval(300)))),
        RestartCase(
            name: "restarted 11 minutes ago",
            workload: .init(target: web, annotations: optIn, restartedAt: start.addingTimeInterval(-660)),
            expected: .restart),
        RestartCase(
            name: "restartedAt set by hand to year 9999 counts as now",
            workload: .init(
                target: web, annotations: optIn, restartedAt: KubeTime.parse("9999-01-01T00:00:00Z")),
            expected: .skip(.recentlyRestarted(until: start.addingTimeInterval(600)))),
        RestartCase(
            name: "restartedAt within one interval ahead is kept",
            workload: .init(target: web, annotations: optIn, restartedAt: start.addingTimeInterval(300)),
            expected: .skip(.recentlyRestarted(until: start.addingTimeInterval(900)))),
        RestartCase(
            name: "proxy in the template (linkerd inject --manual)",
            workload: .init(target: web, annotations: optIn, templateHasProxy: true),
            expected: .skip(.proxyInTemplate)),
        RestartCase(
            name: "rollout in progress",
            workload: .init(target: web, annotations: optIn, rolloutInProgress: true),
            expected: .skip(.rolloutInProgress)),
        RestartCase(
            name: "statefulset opted in",
            workload: .init(target: .init(kind: .statefulSet, namespace: "app", name: "db"), annotations: optIn),
            expected: .restart),
        RestartCase(
            name: "daemonset opted in by its namespace",
            workload: .init(target: .init(kind: .daemonSet, namespace: "app", name: "agent")),
            namespaceAnnotations: optIn, expected: .restart),
    ]

    @Test("decides from opt-in, namespace, template and rollout", arguments: cases)
    func decide(_ restart: RestartCase) {
        let policy = RestartPolicy(controlPlaneNamespace: "linkerd")
        #expect(
            policy.decide(restart.workload, namespaceAnnotations: restart.namespaceAnnotations, now: Self.start)
                == restart.expected)
    }

    @Test("only deployments, statefulsets and daemonsets are restartable")
    func restartableKinds() {
        #expect(RestartPolicy.Kind(ownerKind: "deployment") == .deployment)
        #expect(RestartPolicy.Kind(ownerKind: "StatefulSet") == .statefulSet)
        #expect(RestartPolicy.Kind(ownerKind: "daemonset") == .daemonSet)
        for kind in ["job", "cronjob", "pod", "replicaset", "replicationcontroller", ""] {
            #expect(RestartPolicy.Kind(ownerKind: kind) == nil, "\(kind)")
        }
    }

    @Test("at most one restart per workload per interval, on the injected clock")
    func rateLimit() {
        let clock = ManualClock(start: Self.start)
        var policy = RestartPolicy(controlPlaneNamespace: "linkerd", interval: .seconds(120))
        let workload = RestartPolicy.Workload(target: web, annotations: optIn)
        let other = RestartPolicy.Workload(
            target: .init(kind: .deployment, namespace: "app", name: "api"), annotations: optIn)

        #expect(policy.decide(workload, namespaceAnnotations: [:], now: clock.now()) == .restart)
        policy.noteRestart(of: web, at: clock.now())
        let until = clock.now().addingTimeInterval(120)
        #expect(policy.remembersRestart(of: web, now: clock.now()) == until)

        clock.advance(by: .seconds(119))
        #expect(
            policy.decide(workload, namespaceAnnotations: [:], now: clock.now())
                == .skip(.recentlyRestarted(until: until)))
        #expect(policy.decide(other, namespaceAnnotations: [:], now: clock.now()) == .restart, "per workload")

        clock.advance(by: .seconds(1))
        #expect(policy.remembersRestart(of: web, now: clock.now()) == nil)
        #expect(policy.decide(workload, namespaceAnnotations: [:], now: clock.now()) == .restart)

        // A failed patch gives the slot back.
        policy.noteRestart(of: web, at: clock.now())
        policy.retractRestart(of: web, at: clock.now())
        #expect(policy.decide(workload, namespaceAnnotations: [:], now: clock.now()) == .restart)
    }

    @Test("a huge interval and far dates decide without trapping")
    func hugeInterval() {
        var policy = RestartPolicy(controlPlaneNamespace: "linkerd", interval: .seconds(Int64.max / 2))
        let workload = RestartPolicy.Workload(
            target: web, annotations: optIn, restartedAt: KubeTime.parse("9999-01-01T00:00:00Z"))
        guard case .skip(.recentlyRestarted) = policy.decide(workload, namespaceAnnotations: [:], now: Self.start)
        else {
            Issue.record("expected recentlyRestarted")
            return
        }
        policy.noteRestart(of: web, at: Self.start)
        #expect(policy.remembersRestart(of: web, now: Self.start) != nil)
    }

    @Test("only a proxy the webhook injected can be replaced by a restart")
    func restartCanFix() {
        let drift = MeshAudit.ProxyDrift(aspect: .proxyVersion, running: "edge-1", expected: "edge-2")
        #expect(RestartPolicy.restartCanFix(.proxyMissing, podAnnotations: [:]))
        #expect(
            RestartPolicy.restartCanFix(
                .proxyOutdated([drift]), podAnnotations: [MeshKeys.createdBy: "linkerd/proxy-injector edge-1"]))
        #expect(
            !RestartPolicy.restartCanFix(
                .proxyOutdated([drift]), podAnnotations: [MeshKeys.createdBy: "linkerd/cli edge-1"]))
        #expect(!RestartPolicy.restartCanFix(.proxyOutdated([drift]), podAnnotations: [:]))
    }

    @Test("reads annotations, restartedAt and the rollout state from workload objects")
    func workloadFromObject() throws {
        let deployment: JSONValue = [
            "metadata": [
                "name": "web", "namespace": "app", "generation": 3,
                "annotations": [MeshKeys.autoRestart: "enabled"],
            ],
            "spec": [
                "replicas": 2,
                "template": [
                    "metadata": ["annotations": [RestartPolicy.restartedAtAnnotation: "2023-11-14T22:10:00Z"]]
                ],
            ],
            "status": ["observedGeneration": 3, "replicas": 2, "updatedReplicas": 2],
        ]
        let settled = RestartPolicy.Workload(kind: .deployment, object: deployment)
        #expect(settled.target == web)
        #expect(settled.annotations == optIn)
        #expect(settled.restartedAt == Date(timeIntervalSince1970: 1_699_999_800))
        #expect(!settled.rolloutInProgress)
        #expect(!settled.templateHasProxy)
        for field in ["containers", "initContainers"] {
            var manual = deployment
            manual["spec"]?["template"]?["spec"] = [field: [["name": "linkerd-proxy"]]]
            #expect(RestartPolicy.Workload(kind: .deployment, object: manual).templateHasProxy, "\(field)")
        }

        var newGeneration = deployment
        newGeneration["metadata"]?["generation"] = 4
        #expect(RestartPolicy.Workload(kind: .deployment, object: newGeneration).rolloutInProgress)
        var rolling = deployment
        rolling["status"]?["updatedReplicas"] = 1
        #expect(RestartPolicy.Workload(kind: .deployment, object: rolling).rolloutInProgress)
        var oldPodsLeft = deployment
        oldPodsLeft["status"]?["replicas"] = 3
        #expect(RestartPolicy.Workload(kind: .deployment, object: oldPodsLeft).rolloutInProgress)
        #expect(!RestartPolicy.Workload(kind: .statefulSet, object: oldPodsLeft).rolloutInProgress)

        let bare: JSONValue = ["metadata": ["name": "agent", "namespace": "app"], "spec": ["template": [:]]]
        let noStatus = RestartPolicy.Workload(kind: .daemonSet, object: bare)
        #expect(noStatus.restartedAt == nil && !noStatus.rolloutInProgress && noStatus.annotations.isEmpty)
        var daemonSet = bare
        daemonSet["status"] = ["desiredNumberScheduled": 3, "updatedNumberScheduled": 2]
        #expect(RestartPolicy.Workload(kind: .daemonSet, object: daemonSet).rolloutInProgress)
        var garbage = deployment
        garbage["spec"]?["template"] = ["metadata": ["annotations": [RestartPolicy.restartedAtAnnotation: "yesterday"]]]
        #expect(RestartPolicy.Workload(kind: .deployment, object: garbage).restartedAt == nil)
    }

    @Test("restarts as kubectl rollout restart does: a merge patch of the template's restartedAt")
    func patch() {
        #expect(
            RestartPolicy.restartPatch(at: Self.start)
                == .merge([
                    "spec": [
                        "template": [
                            "metadata": ["annotations": ["kubectl.kubernetes.io/restartedAt": "2023-11-14T22:13:20Z"]]
                        ]
                    ]
                ]))
    }
}

@Suite("MeshAudit book")
struct MeshAuditBookTests {
    private let web = MeshAuditBook.OwnerGroup(namespace: "app", ownerKind: "deployment", owner: "web")
    private let bare = MeshAuditBook.OwnerGroup(namespace: "app", ownerKind: "pod", owner: "solo")
    private let pod1 = ObjectKey(namespace: "app", name: "web-1")
    private let pod2 = ObjectKey(namespace: "app", name: "web-2")
    private let drift = MeshAudit.ProxyDrift(aspect: .proxyVersion, running: "a", expected: "b")

    @Test("events are due once per pod and finding; counts follow findings and go back to zero")
    func events() {
        var book = MeshAuditBook()
        var update = book.record(.proxyMissing, pod: pod1, uid: "u1", group: web)
        #expect(update == .init(eventsDue: true, changedCounts: [web: .init(proxyMissing: 1)]))
        book.markReported(.proxyMissing, pod: pod1, uid: "u1")

        update = book.record(.proxyMissing, pod: pod1, uid: "u1", group: web)
        #expect(update == .init(eventsDue: false, changedCounts: [:]), "a resync reports nothing again")

        update = book.record(.proxyMissing, pod: pod2, uid: "u2", group: web)
        #expect(update == .init(eventsDue: true, changedCounts: [web: .init(proxyMissing: 2)]))

        update = book.record(.proxyOutdated([drift]), pod: pod1, uid: "u1", group: web)
        #expect(update == .init(eventsDue: true, changedCounts: [web: .init(proxyMissing: 1, proxyOutdated: 1)]))

        // The same name, another pod: reported again.
        book.markReported(.proxyOutdated([drift]), pod: pod1, uid: "u1")
        update = book.record(.proxyOutdated([drift]), pod: pod1, uid: "u3", group: web)
        #expect(update.eventsDue)

        #expect(book.forget(pod1) == [web: .init(proxyMissing: 1)])
        #expect(book.forget(pod1) == [:])
        #expect(book.forget(pod2) == [web: .init()])
        #expect(book.counts.isEmpty)
    }

    @Test("a pod moving to another owner group moves its count")
    func regroup() {
        var book = MeshAuditBook()
        _ = book.record(.proxyMissing, pod: pod1, uid: "u1", group: bare)
        let update = book.record(.proxyMissing, pod: pod1, uid: "u1", group: web)
        #expect(update.changedCounts == [bare: .init(), web: .init(proxyMissing: 1)])
        // Reported for another finding than the current one: no effect.
        book.markReported(.proxyOutdated([drift]), pod: pod1, uid: "u1")
        #expect(book.record(.proxyMissing, pod: pod1, uid: "u1", group: web).eventsDue)
    }
}
