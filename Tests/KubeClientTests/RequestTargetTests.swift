import KubeModel
import Testing

@testable import KubeClient

@Suite("request paths and queries")
struct RequestTargetTests {
    @Test func objectPaths() throws {
        #expect(
            try RequestTarget.object(.pods, namespace: "default", name: "web-1").path
                == "/api/v1/namespaces/default/pods/web-1")
        #expect(
            try RequestTarget.object(.deployments, namespace: "linkerd", name: "destination", subresource: "status")
                .path
                == "/apis/apps/v1/namespaces/linkerd/deployments/destination/status")
        #expect(
            try RequestTarget.object(.namespaces, namespace: "ignored", name: "kube-system").path
                == "/api/v1/namespaces/kube-system")
    }

    @Test func segmentsArePercentEncoded() throws {
        let target = try RequestTarget.object(.configMaps, namespace: "a b", name: "x/y?z")
        #expect(target.path == "/api/v1/namespaces/a%20b/configmaps/x%2Fy%3Fz")
    }

    @Test func objectRequestsNeedANameAndANamespace() {
        expectConfigurationError(containing: ["a Pod name is required"]) {
            _ = try RequestTarget.object(.pods, namespace: "default", name: "")
        }
        expectConfigurationError(containing: ["a namespace is required", "pods/v1 is namespaced"]) {
            _ = try RequestTarget.object(.pods, namespace: nil, name: "web")
        }
        expectConfigurationError(containing: ["a namespace is required to create a Lease"]) {
            _ = try RequestTarget.creation(.leases, namespace: "", name: nil, subresource: nil)
        }
    }

    @Test func creationTargets() throws {
        #expect(
            try RequestTarget.creation(.pods, namespace: "default", name: nil, subresource: nil).path
                == "/api/v1/namespaces/default/pods")
        #expect(
            try RequestTarget.creation(.namespaces, namespace: nil, name: nil, subresource: nil).path
                == "/api/v1/namespaces")
        #expect(
            try RequestTarget.creation(.pods, namespace: "default", name: "web", subresource: "eviction").path
                == "/api/v1/namespaces/default/pods/web/eviction")
        expectConfigurationError(containing: ["requires the object's metadata.name"]) {
            _ = try RequestTarget.creation(.pods, namespace: "default", name: nil, subresource: "eviction")
        }
    }

    @Test func listQuery() {
        let options = ListOptions(
            labelSelector: "app in (web,api),tier!=db", fieldSelector: "spec.nodeName=node-1", limit: 500,
            continueToken: "eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ==", resourceVersion: "0")
        let target = RequestTarget.list(.pods, namespace: nil, options: options)
        #expect(target.path == "/api/v1/pods")
        #expect(
            target.pathAndQuery
                == "/api/v1/pods?labelSelector=app%20in%20%28web%2Capi%29%2Ctier%21%3Ddb"
                + "&fieldSelector=spec.nodeName%3Dnode-1&limit=500&continue=eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ%3D%3D"
                + "&resourceVersion=0")
        #expect(
            RequestTarget.list(.services, namespace: "default", options: ListOptions()).pathAndQuery
                == "/api/v1/namespaces/default/services")
    }

    @Test func watchQuery() {
        let options = WatchOptions(resourceVersion: "42", labelSelector: "app=web", timeoutSeconds: 300)
        #expect(
            RequestTarget.watch(.endpointSlices, namespace: "default", options: options).pathAndQuery
                == "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices"
                + "?watch=true&allowWatchBookmarks=true&resourceVersion=42&labelSelector=app%3Dweb&timeoutSeconds=300")
        #expect(
            RequestTarget.watch(.pods, namespace: nil, options: WatchOptions(allowWatchBookmarks: false)).pathAndQuery
                == "/api/v1/pods?watch=true")
    }

    @Test func percentEncodingKeepsOnlyUnreservedCharacters() {
        #expect(RequestTarget.percentEncoded("AZaz09-._~") == "AZaz09-._~")
        #expect(RequestTarget.percentEncoded("a=b&c d/é") == "a%3Db%26c%20d%2F%C3%A9")
    }
}
