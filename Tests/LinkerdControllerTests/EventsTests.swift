import Foundation
import KubeClient
import KubeModel
import KubeTestServer
import LinkerdController
import LinkerdInject
import LinkerdTestSupport
import Logging
import Testing

@Suite("EventRecorder against KubeTestServer", .timeLimit(.minutes(1)))
struct EventRecorderTests {
    @Test func recordsAnEventAboutTheObject() async throws {
        try await withServerAndClient { server, client in
            try server.put(.namespaces, ["metadata": ["name": "apps"]])
            let clock = ManualClock(start: Date(timeIntervalSince1970: 1_700_000_000))
            let recorder = EventRecorder(
                api: client, component: "linkerd-proxy-injector", clock: clock, logger: Logger(label: "test.events"))
            let deployment = ObjectReference(
                apiVersion: "apps/v1", kind: "Deployment", namespace: "apps", name: "web", uid: "deploy-uid")
            await recorder.record(
                .normal, reason: "Injected", message: "Linkerd sidecar proxy injected", about: deployment)
            await recorder.record(
                .warning, reason: "InjectionSkipped", message: "second, at the same instant", about: deployment)

            let stored = try server.objects(.events, namespace: "apps").map { try $0.decode(as: Event.self) }
            #expect(stored.count == 2, "two events at the same instant get distinct names")
            let event = try #require(stored.first { $0.reason == "Injected" })
            #expect(event.metadata.name?.hasPrefix("web.") == true)
            #expect(event.involvedObject == deployment)
            #expect(event.message == "Linkerd sidecar proxy injected")
            #expect(event.type == "Normal")
            #expect(event.source?.component == "linkerd-proxy-injector")
            #expect(event.reportingComponent == "linkerd-proxy-injector")
            #expect(event.firstTimestamp == "2023-11-14T22:13:20Z")
            #expect(event.lastTimestamp == "2023-11-14T22:13:20Z")
            #expect(event.count == 1)
            #expect(stored.first { $0.reason == "InjectionSkipped" }?.type == "Warning")
        }
    }

    @Test func clusterScopedObjectsGetEventsInDefault() async throws {
        try await withServerAndClient { server, client in
            let recorder = EventRecorder(
                api: client, component: "linkerd-controller", clock: ManualClock(), logger: Logger(label: "test"))
            await recorder.record(
                .normal, reason: "Seen", message: "a namespace", about: ObjectReference(kind: "Namespace", name: "apps")
            )
            let stored = server.objects(.events, namespace: "default")
            #expect(stored.count == 1)
            #expect(stored.first?["involvedObject"]?["name"] == "apps")
        }
    }

    @Test func failuresAreSwallowed() async throws {
        try await withServerAndClient { server, client in
            let recorder = EventRecorder(
                api: client, component: "linkerd-controller", clock: ManualClock(), logger: Logger(label: "test"))
            // The namespace does not exist: the API server refuses the Event, and record still returns.
            await recorder.record(
                .normal, reason: "Seen", message: "nowhere",
                about: ObjectReference(kind: "Pod", namespace: "missing", name: "p"))
            #expect(server.objects(.events).isEmpty)
        }
    }

    @Test func longNamesAreShortenedToAValidName() async throws {
        try await withServerAndClient { server, client in
            try server.put(.namespaces, ["metadata": ["name": "apps"]])
            let recorder = EventRecorder(
                api: client, component: "linkerd-controller", clock: ManualClock(), logger: Logger(label: "test"))
            let longName = String(repeating: "a", count: 253)
            await recorder.record(
                .normal, reason: "Seen", message: "long",
                about: ObjectReference(kind: "Pod", namespace: "apps", name: longName))
            let name = try #require(server.objects(.events, namespace: "apps").first?["metadata"]?["name"]?.stringValue)
            #expect(name.count <= 253)
            #expect(name.hasPrefix("aaaa"))
        }
    }
}

@Suite("OwnerResolver against KubeTestServer", .timeLimit(.minutes(1)))
struct OwnerResolverTests {
    @Test func replicaSetResolvesToItsDeployment() async throws {
        try await withServerAndClient { server, client in
            let uids = try seed(server)
            let resolver = OwnerResolver(api: client)
            let owner = await resolver.resolve(
                namespace: "apps", ownerReferences: [reference("ReplicaSet", "web-7d9f", uid: uids["web-7d9f"])])
            #expect(
                owner
                    == ResolvedOwner(
                        reference: ObjectReference(
                            apiVersion: "apps/v1", kind: "Deployment", namespace: "apps", name: "web",
                            uid: "deploy-uid"),
                        owner: WorkloadOwner(kind: "deployment", name: "web")))
            // The ReplicaSet's owners are remembered.
            _ = await resolver.resolve(
                namespace: "apps", ownerReferences: [reference("ReplicaSet", "web-7d9f", uid: uids["web-7d9f"])])
            #expect(server.requestLog.filter { $0.path.hasSuffix("/replicasets/web-7d9f") }.count == 1)
        }
    }

    @Test func jobResolvesToItsCronJob() async throws {
        try await withServerAndClient { server, client in
            let uids = try seed(server)
            let owner = await OwnerResolver(api: client).resolve(
                namespace: "apps",
                ownerReferences: [
                    reference("Job", "backup-28000000", uid: uids["backup-28000000"], apiVersion: "batch/v1")
                ])
            #expect(owner?.owner == WorkloadOwner(kind: "cronjob", name: "backup"))
            #expect(owner?.reference.uid == "cron-uid")
            #expect(owner?.reference.apiVersion == "batch/v1")
        }
    }

    @Test func barePodsHaveNoOwner() async throws {
        try await withServerAndClient { _, client in
            let resolver = OwnerResolver(api: client)
            #expect(await resolver.resolve(namespace: "apps", ownerReferences: nil) == nil)
            #expect(await resolver.resolve(namespace: "apps", ownerReferences: []) == nil)
            #expect(
                await resolver.resolve(
                    namespace: "apps",
                    ownerReferences: [reference("ReplicaSet", "a", uid: "1"), reference("ReplicaSet", "b", uid: "2")])
                    == nil)
        }
    }

    @Test func otherParentsAreTheOwnerWithoutALookup() async throws {
        try await withServerAndClient { server, client in
            let owner = await OwnerResolver(api: client).resolve(
                namespace: "apps", ownerReferences: [reference("StatefulSet", "db", uid: "sts-uid")])
            #expect(owner?.owner == WorkloadOwner(kind: "statefulset", name: "db"))
            #expect(owner?.reference.kind == "StatefulSet")
            #expect(server.requestLog.isEmpty)
        }
    }

    @Test func parentWithoutASingleOwnerOrMissingIsTheOwner() async throws {
        try await withServerAndClient { server, client in
            let uids = try seed(server)
            let resolver = OwnerResolver(api: client)
            let orphan = await resolver.resolve(
                namespace: "apps", ownerReferences: [reference("ReplicaSet", "orphan", uid: uids["orphan"])])
            #expect(orphan?.owner == WorkloadOwner(kind: "replicaset", name: "orphan"))
            let missing = await resolver.resolve(
                namespace: "apps", ownerReferences: [reference("ReplicaSet", "gone", uid: "gone-uid")])
            #expect(missing?.owner == WorkloadOwner(kind: "replicaset", name: "gone"))
            // A ReplicaSet recreated under the same name is another object.
            let replaced = await resolver.resolve(
                namespace: "apps", ownerReferences: [reference("ReplicaSet", "web-7d9f", uid: "older-uid")])
            #expect(replaced?.owner == WorkloadOwner(kind: "replicaset", name: "web-7d9f"))
        }
    }

    private func reference(_ kind: String, _ name: String, uid: String?, apiVersion: String = "apps/v1")
        -> OwnerReference
    {
        OwnerReference(apiVersion: apiVersion, kind: kind, name: name, uid: uid ?? "", controller: true)
    }

    /// Stores a ReplicaSet owned by a Deployment, one owned by nothing and a Job owned by a CronJob; returns the
    /// uids the server gave them, by name.
    private func seed(_ server: KubeTestServer) throws -> [String: String] {
        try server.put(.namespaces, ["metadata": ["name": "apps"]])
        let deployment = Fixtures.ownerReference(kind: "Deployment", name: "web", uid: "deploy-uid")
        let cronJob = Fixtures.ownerReference(kind: "CronJob", name: "backup", uid: "cron-uid", apiVersion: "batch/v1")
        let stored = [
            try server.put(
                .replicaSets,
                ["metadata": ["name": "web-7d9f", "namespace": "apps", "ownerReferences": [deployment]]]),
            try server.put(.replicaSets, ["metadata": ["name": "orphan", "namespace": "apps"]]),
            try server.put(
                .jobs, ["metadata": ["name": "backup-28000000", "namespace": "apps", "ownerReferences": [cronJob]]]),
        ]
        var uids: [String: String] = [:]
        for object in stored {
            uids[object["metadata"]?["name"]?.stringValue ?? ""] = object["metadata"]?["uid"]?.stringValue
        }
        return uids
    }
}
