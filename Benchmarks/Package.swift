// swift-tools-version:6.1
//
// Benchmarks for linkerd-swift, kept in their own package so the main build and CI never compile the benchmark
// harness. Run with `make bench` (release build).
import Foundation
import PackageDescription

/// SwiftPM names a path dependency after its directory, which is whatever the clone is called.
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
let rootPackage = root.lastPathComponent.lowercased()

let package = Package(
    name: "linkerd-swift-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/grpc/grpc-swift-2.git", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", from: "2.9.2"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
    ],
    targets: [
        .executableTarget(
            name: "ReflectorBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "KubeModel", package: rootPackage),
                .product(name: "KubeRuntime", package: rootPackage),
                .product(name: "KubeClient", package: rootPackage),
                .product(name: "KubeTestServer", package: rootPackage),
            ],
            path: "Benchmarks/ReflectorBenchmarks",
            swiftSettings: [.swiftLanguageMode(.v6)],
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "InjectorBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "KubeModel", package: rootPackage),
                .product(name: "LinkerdInject", package: rootPackage),
            ],
            path: "Benchmarks/InjectorBenchmarks",
            swiftSettings: [.swiftLanguageMode(.v6)],
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // A load client for `make bench-certify`: Certify calls per second and latency.
        .executableTarget(
            name: "CertifyLoad",
            dependencies: [
                .product(name: "KubeClient", package: rootPackage),
                .product(name: "KubeModel", package: rootPackage),
                .product(name: "KubeTestServer", package: rootPackage),
                .product(name: "LinkerdIdentityServer", package: rootPackage),
                .product(name: "LinkerdProxyAPI", package: rootPackage),
                .product(name: "LinkerdTestSupport", package: rootPackage),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            path: "Sources/CertifyLoad",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // Not a benchmark of the harness: a server for `webhook-load.sh`, which measures the webhook with `hey`.
        .executableTarget(
            name: "WebhookLoad",
            dependencies: [
                .product(name: "KubeClient", package: rootPackage),
                .product(name: "KubeModel", package: rootPackage),
                .product(name: "KubeTestServer", package: rootPackage),
                .product(name: "LinkerdController", package: rootPackage),
                .product(name: "LinkerdCore", package: rootPackage),
                .product(name: "LinkerdTestSupport", package: rootPackage),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Sources/WebhookLoad",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // `proxy-bench.sh`: one proxy per process (inbound, outbound or a plaintext single proxy), on one
        // event-loop thread, so that each one's resident memory and CPU time can be read from /proc.
        .executableTarget(
            name: "ProxyPair",
            dependencies: [
                .product(name: "LinkerdProxy", package: rootPackage),
                .product(name: "LinkerdProxyCore", package: rootPackage),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Sources/ProxyPair",
            swiftSettings: [.swiftLanguageMode(.v6)],
            // Linked as `linkerd-proxy` is (see `proxyLinkerSettings` in the root package).
            linkerSettings: [
                .unsafeFlags(
                    [
                        "-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs", "-Xlinker",
                        "--no-export-dynamic",
                    ],
                    .when(platforms: [.linux]))
            ]
        ),
        // `proxy-bench.sh`: the mesh's identity service (a throw-away trust anchor, `linkerd-identity` as its
        // executable assembles it, TokenReviews answered by a loopback API server) for the proxies to certify with.
        .executableTarget(
            name: "ProxyBenchIdentity",
            dependencies: [
                .product(name: "KubeClient", package: rootPackage),
                .product(name: "KubeModel", package: rootPackage),
                .product(name: "KubeTestServer", package: rootPackage),
                .product(name: "LinkerdIdentityServer", package: rootPackage),
                .product(name: "LinkerdTestSupport", package: rootPackage),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Sources/ProxyBenchIdentity",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // `proxy-bench.sh`: an open-loop HTTP/1.1 keep-alive and HTTP/2 (prior knowledge) load client at a fixed
        // request rate, latency measured from each request's intended send time.
        .executableTarget(
            name: "HTTPLoad",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
            ],
            path: "Sources/HTTPLoad",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ]
)
