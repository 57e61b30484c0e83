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
//   T  LinkerdTestSupport  manual clock, `eventually`, throw-away certificate authorities
//   T  KubeTestServer    a loopback Kubernetes API server that speaks the real wire protocol
import PackageDescription

let strictSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "linkerd-swift",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "LinkerdCore", targets: ["LinkerdCore"]),
        .library(name: "KubeModel", targets: ["KubeModel"]),
        .library(name: "KubeClient", targets: ["KubeClient"]),
        .library(name: "KubeRuntime", targets: ["KubeRuntime"]),
        .library(name: "LinkerdTestSupport", targets: ["LinkerdTestSupport"]),
        .library(name: "KubeTestServer", targets: ["KubeTestServer"]),
        .executable(name: "linkerd-dev-cluster", targets: ["linkerd-dev-cluster"]),
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
    ],
    targets: [
        // Layer 0
        .target(name: "LinkerdCore", swiftSettings: strictSettings),
        .testTarget(name: "LinkerdCoreTests", dependencies: ["LinkerdCore"], swiftSettings: strictSettings),

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

        // Test support, shipped as libraries so every target's tests can use them.
        .target(
            name: "LinkerdTestSupport",
            dependencies: [
                "LinkerdCore",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
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
                "KubeTestServer", "KubeClient", "KubeRuntime", "LinkerdTestSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
    ]
)
