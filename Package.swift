// swift-tools-version:6.1
//
// linkerd-swift: the Linkerd service mesh, in Swift, for Kubernetes.
//
// Layering (a target depends only on its own layer or lower ones; of the libraries, only layer 3 and the test
// support targets do I/O):
//   0  LinkerdCore       vocabulary: identities, ports, durations, CIDRs, quantities, env reading
//   1  KubeModel         Codable Kubernetes types, JSON value, JSON patch, the `KubeAPI` protocol
//   2  KubeRuntime       watcher state machine, reflector/store, work queue, controller, leader election
//   3  KubeClient        `KubeAPI` over HTTP(S) with AsyncHTTPClient; in-cluster and kubeconfig
//   3  LinkerdHTTPServer a small HTTP/1.1 server on NIO (limits, deadlines, graceful shutdown) for the webhook and
//                        the admin endpoints of the controller and the proxy
//   T  LinkerdTestSupport  manual clock, `eventually`, throw-away certificate authorities, golden files
//   T  KubeTestServer    a loopback Kubernetes API server that speaks the real wire protocol
//   1  LinkerdInject     the proxy injector as a pure function: mesh configuration, annotations, report, patch,
//                        uninject
//   4  LinkerdController the webhook server, its certificates, the admin server and the mesh-auditing reconcile
//                        loop (I/O, on KubeAPI, NIO and the runtime)
//   4  LinkerdCLI        the `linkerd` command line (inject, uninject, identity) as a library the executable wraps
//   1  LinkerdProxyAPI   the proxy API's protobuf messages and gRPC stubs (generated: `make generate`)
//   1  LinkerdIdentity   the mesh CA as pure logic: CSR checks, issuance, issuer and trust anchors, token identities
//   4  LinkerdIdentityServer  the Certify gRPC service, its TLS, issuer hot reload, events and metrics
//   1  LinkerdProxyInit  proxy-init as pure logic: firewall configuration, iptables-save parsing, install, cleanup and
//                        rollback plans, iptables binary selection
//   4  LinkerdProxyInitCLI  the `linkerd-proxy-init` command as a library: runs the plans with iptables, rolls back
//   3  LinkerdTransport  socket-level helpers for the proxy: the original destination of a redirected connection
//   1  LinkerdProxyCore  the proxy's pure logic: configuration from LINKERD2_PROXY_*, protocol detection (TLS
//                        ClientHello, HTTP), the identity refresh schedule
//   4  LinkerdProxy      the proxy's I/O on NIO: identity (key, CSR, Certify, credentials), detection handlers
//   T  LinkerdProxyTestSupport  an in-process fake Destination server driven by the test (expected calls, updates)
//   T  LinkerdNetworkTestSupport  network-namespace "pods" on a bridge, processes and proxy-init in them, for
//                        data-plane tests
import PackageDescription

let strictSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

/// How the proxy executable is linked, for a smaller resident set (every meshed pod runs one): lld with packed
/// relative relocations (`DT_RELR`, glibc 2.36 or later), so that the loader reads a few kilobytes of relocations
/// instead of megabytes of `RELA` entries, and no symbol table exported for `dlopen`ed code, which the proxy never
/// loads (Swift adds `-export-dynamic`; the loader then walks that table). Still a position-independent executable.
/// About 4.5 MB less resident memory when the Swift runtime is linked statically (Benchmarks/RESULTS-proxy.md).
let proxyLinkerSettings: [LinkerSetting] = [
    .unsafeFlags(
        ["-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs", "-Xlinker", "--no-export-dynamic"],
        .when(platforms: [.linux]))
]

let package = Package(
    name: "linkerd-swift",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "LinkerdCore", targets: ["LinkerdCore"]),
        .library(name: "KubeModel", targets: ["KubeModel"]),
        .library(name: "KubeClient", targets: ["KubeClient"]),
        .library(name: "KubeRuntime", targets: ["KubeRuntime"]),
        .library(name: "LinkerdHTTPServer", targets: ["LinkerdHTTPServer"]),
        .library(name: "LinkerdTestSupport", targets: ["LinkerdTestSupport"]),
        .library(name: "KubeTestServer", targets: ["KubeTestServer"]),
        .library(name: "LinkerdInject", targets: ["LinkerdInject"]),
        .library(name: "LinkerdController", targets: ["LinkerdController"]),
        .library(name: "LinkerdCLI", targets: ["LinkerdCLI"]),
        .library(name: "LinkerdProxyAPI", targets: ["LinkerdProxyAPI"]),
        .library(name: "LinkerdIdentity", targets: ["LinkerdIdentity"]),
        .library(name: "LinkerdIdentityServer", targets: ["LinkerdIdentityServer"]),
        .library(name: "LinkerdProxyInit", targets: ["LinkerdProxyInit"]),
        .library(name: "LinkerdProxyInitCLI", targets: ["LinkerdProxyInitCLI"]),
        .library(name: "LinkerdTransport", targets: ["LinkerdTransport"]),
        .library(name: "LinkerdNetworkTestSupport", targets: ["LinkerdNetworkTestSupport"]),
        .library(name: "LinkerdProxyCore", targets: ["LinkerdProxyCore"]),
        .library(name: "LinkerdProxy", targets: ["LinkerdProxy"]),
        .library(name: "LinkerdProxyTestSupport", targets: ["LinkerdProxyTestSupport"]),
        .executable(name: "linkerd-identity", targets: ["linkerd-identity"]),
        .executable(name: "linkerd-proxy-init", targets: ["linkerd-proxy-init"]),
        .executable(name: "linkerd-proxy", targets: ["linkerd-proxy"]),
        .executable(name: "linkerd-dev-cluster", targets: ["linkerd-dev-cluster"]),
        .executable(name: "linkerd-controller", targets: ["linkerd-controller"]),
        .executable(name: "linkerd", targets: ["linkerd"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0", traits: []),
        .package(url: "https://github.com/grpc/grpc-swift-2.git", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", from: "2.9.2"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
    ],
    targets: [
        // Layer 0
        .target(name: "LinkerdCore", swiftSettings: strictSettings),
        .testTarget(
            name: "LinkerdCoreTests", dependencies: ["LinkerdCore", "LinkerdTestSupport"], swiftSettings: strictSettings
        ),

        // Layer 1
        .target(name: "KubeModel", dependencies: ["LinkerdCore"], swiftSettings: strictSettings),
        .testTarget(name: "KubeModelTests", dependencies: ["KubeModel"], swiftSettings: strictSettings),

        // Layer 2
        .target(
            name: "KubeRuntime",
            dependencies: [
                "KubeModel", "LinkerdCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "DequeModule", package: "swift-collections"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "KubeRuntimeTests",
            dependencies: [
                "KubeRuntime", "KubeClient", "KubeTestServer", "LinkerdTestSupport",
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strictSettings
        ),

        // Layer 3
        .target(
            name: "KubeClient",
            dependencies: [
                "KubeModel", "LinkerdCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "KubeClientTests",
            dependencies: [
                "KubeClient", "KubeTestServer", "LinkerdTestSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strictSettings
        ),

        .target(
            name: "LinkerdHTTPServer",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPCompression", package: "swift-nio-extras"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "LinkerdHTTPServerTests",
            dependencies: [
                "LinkerdHTTPServer", "LinkerdTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // Layer 1: the injector, pure.
        .target(
            name: "LinkerdInject",
            dependencies: [
                "KubeModel", "LinkerdCore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "LinkerdInjectTests",
            dependencies: ["LinkerdInject", "KubeModel", "LinkerdCore", "LinkerdTestSupport"],
            exclude: ["Fixtures"],
            swiftSettings: strictSettings
        ),

        // Layer 1: the proxy API (generated code, committed; regenerate with `make generate`).
        .target(
            name: "LinkerdProxyAPI",
            dependencies: [
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
            ],
            exclude: ["Proto"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .testTarget(
            name: "LinkerdProxyAPITests",
            dependencies: [
                "LinkerdProxyAPI", .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
            ],
            swiftSettings: strictSettings
        ),

        // Layer 1: the identity CA's logic.
        .target(
            name: "LinkerdIdentity",
            dependencies: [
                "KubeModel", "LinkerdCore",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "LinkerdIdentityTests",
            dependencies: [
                "LinkerdIdentity", "KubeModel", "LinkerdCore", "LinkerdTestSupport", "KubeTestServer", "KubeClient",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: strictSettings
        ),

        // Layer 4: the identity service.
        .target(
            name: "LinkerdIdentityServer",
            dependencies: [
                "LinkerdIdentity", "LinkerdProxyAPI", "LinkerdController", "KubeModel", "KubeClient", "LinkerdCore",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "NIOCertificateReloading", package: "swift-nio-extras"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "LinkerdIdentityServerTests",
            dependencies: [
                "LinkerdIdentityServer", "LinkerdIdentity", "LinkerdProxyAPI", "LinkerdController", "KubeModel",
                "KubeClient", "KubeTestServer", "LinkerdTestSupport", "LinkerdCore",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),

        // Layer 4: the controller and the CLI.
        .target(
            name: "LinkerdController",
            dependencies: [
                "LinkerdInject", "KubeModel", "KubeRuntime", "KubeClient", "LinkerdCore", "LinkerdHTTPServer",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "LinkerdControllerTests",
            dependencies: [
                "LinkerdController", "LinkerdInject", "KubeModel", "KubeRuntime", "KubeClient", "KubeTestServer",
                "LinkerdTestSupport", "LinkerdCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "LinkerdCLI",
            dependencies: [
                "LinkerdInject", "KubeModel", "LinkerdCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "LinkerdCLITests",
            dependencies: [
                "LinkerdCLI", "LinkerdInject", "KubeModel", .product(name: "Yams", package: "Yams"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            exclude: ["Fixtures"],
            swiftSettings: strictSettings
        ),
        // Layer 1: proxy-init's rules, pure.
        .target(name: "LinkerdProxyInit", dependencies: ["LinkerdCore"], swiftSettings: strictSettings),
        .testTarget(
            name: "LinkerdProxyInitTests",
            dependencies: ["LinkerdProxyInit", "LinkerdCore", "LinkerdTestSupport"],
            exclude: ["Fixtures"],
            swiftSettings: strictSettings
        ),
        // Layer 3: socket helpers for the proxy.
        .target(
            name: "LinkerdTransport",
            dependencies: [
                "LinkerdCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        // Layer 4: the proxy-init command.
        .target(
            name: "LinkerdProxyInitCLI",
            dependencies: [
                "LinkerdProxyInit", "LinkerdCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // Real network namespaces (as root): the test-support lab itself, the original-destination lookup, and
        // linkerd-proxy-init end to end.
        .testTarget(
            name: "LinkerdNetworkTests",
            dependencies: [
                "LinkerdNetworkTestSupport", "LinkerdTransport", "LinkerdProxyInitCLI", "LinkerdProxyInit",
                "LinkerdCore", "LinkerdTestSupport", "LinkerdInject", "KubeModel",
                // The mesh in namespaces (MeshNamespaceTests): the proxy's TCPSplice, the identity service, the fake
                // Destination service, and the servers around them.
                "LinkerdProxy", "LinkerdProxyTestSupport", "LinkerdIdentityServer", "KubeTestServer", "KubeClient",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "LinkerdProxyInitCLITests",
            dependencies: ["LinkerdProxyInitCLI", "LinkerdProxyInit", "LinkerdCore", "LinkerdTestSupport"],
            swiftSettings: strictSettings
        ),
        // Layer 1: the proxy's pure logic.
        .target(name: "LinkerdProxyCore", dependencies: ["LinkerdCore"], swiftSettings: strictSettings),
        .testTarget(
            name: "LinkerdProxyCoreTests",
            dependencies: ["LinkerdProxyCore", "LinkerdCore", "LinkerdTestSupport"],
            swiftSettings: strictSettings
        ),
        // Layer 4: the proxy.
        .target(
            name: "LinkerdProxy",
            dependencies: [
                "LinkerdProxyCore", "LinkerdProxyAPI", "LinkerdTransport", "LinkerdCore", "LinkerdHTTPServer",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "LinkerdProxyTestSupport",
            dependencies: [
                "LinkerdProxyAPI", "LinkerdCore",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "LinkerdProxyTests",
            dependencies: [
                "LinkerdProxy", "LinkerdProxyCore", "LinkerdProxyAPI", "LinkerdIdentityServer", "LinkerdIdentity",
                "LinkerdProxyTestSupport",
                "KubeTestServer", "KubeClient", "KubeModel", "LinkerdTestSupport", "LinkerdCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        // The manifests in manifests/ checked against the Kubernetes OpenAPI schemas (kubernetes-validate).
        .testTarget(
            name: "ManifestTests",
            dependencies: [
                "KubeModel", "LinkerdInject", "LinkerdController", .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strictSettings
        ),

        // Test support, shipped as libraries so every target's tests can use them.
        .target(
            name: "LinkerdTestSupport",
            dependencies: [
                "LinkerdCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "LinkerdNetworkTestSupport",
            dependencies: [
                "LinkerdCore", "LinkerdTransport", "LinkerdProxyInitCLI",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "KubeTestServer",
            dependencies: [
                "KubeModel", "KubeClient", "LinkerdCore", "LinkerdTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "KubeTestServerTests",
            dependencies: [
                "KubeTestServer", "KubeClient", "LinkerdTestSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),

        // Executables
        .executableTarget(
            name: "linkerd-dev-cluster",
            dependencies: [
                "KubeTestServer", "KubeClient", "KubeModel", "LinkerdCLI", "LinkerdController", "LinkerdTestSupport",
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "linkerd-controller",
            dependencies: [
                "LinkerdController", "LinkerdInject", "KubeClient", "KubeRuntime", "KubeModel", "LinkerdCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "linkerd-identity",
            dependencies: [
                "LinkerdIdentityServer", "LinkerdIdentity", "KubeClient", "LinkerdCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "linkerd-proxy",
            dependencies: [
                "LinkerdProxy", "LinkerdProxyCore", "LinkerdCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings,
            linkerSettings: proxyLinkerSettings
        ),
        .executableTarget(
            name: "linkerd-proxy-init",
            dependencies: ["LinkerdProxyInitCLI"],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "linkerd",
            dependencies: ["LinkerdCLI", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strictSettings
        ),
    ]
)
