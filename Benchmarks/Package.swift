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
        )
    ]
)
