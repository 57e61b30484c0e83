import Foundation
import LinkerdController
import LinkerdInject
import LinkerdTestSupport
import Logging
import Metrics
import Prometheus
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

@Suite("MeshConfigurationSource reads and reloads the mounted configuration")
struct MeshConfigurationSourceTests {
    @Test func absentValuesMeanDefaults() throws {
        let directory = try ConfigurationDirectory()
        defer { directory.remove() }
        try directory.write("trust/ca-bundle.crt", Fixtures.trustAnchorsPEM)
        let source = directory.source(values: "config/values", trustRoots: "trust/ca-bundle.crt")
        var expected = MeshConfiguration.defaults
        expected.trustAnchorsPEM = Fixtures.trustAnchorsPEM
        #expect(try source.current() == expected)
    }

    @Test func absentTrustRootsAreAnError() throws {
        let directory = try ConfigurationDirectory()
        defer { directory.remove() }
        let source = directory.source(values: "values", trustRoots: "ca-bundle.crt")
        #expect {
            _ = try source.current()
        } throws: { error in
            "\(error)" == "cannot use \(directory.path)/ca-bundle.crt: the file does not exist"
        }
        try directory.write("ca-bundle.crt", "not a certificate")
        #expect {
            _ = try source.current()
        } throws: { error in
            "\(error)".hasSuffix("ca-bundle.crt: the file holds no PEM certificate")
        }
        try directory.write("ca-bundle.crt", Fixtures.trustAnchorsPEM)
        #expect(try source.current().trustAnchorsPEM == Fixtures.trustAnchorsPEM)
    }

    @Test func changedValuesAreReadAgain() throws {
        let directory = try ConfigurationDirectory()
        defer { directory.remove() }
        try directory.write("ca-bundle.crt", Fixtures.trustAnchorsPEM)
        try directory.write("values", "linkerdVersion: stable-2.1\n")
        let source = directory.source(values: "values", trustRoots: "ca-bundle.crt")
        #expect(try source.current().linkerdVersion == "stable-2.1")
        #expect(try source.current().linkerdVersion == "stable-2.1")
        try directory.write("values", "linkerdVersion: stable-2.2\nclusterDomain: example.org\n")
        let updated = try source.current()
        #expect(updated.linkerdVersion == "stable-2.2")
        #expect(updated.clusterDomain == "example.org")
        // New trust roots are picked up as well.
        let otherRoots = try TestCertificateAuthority(commonName: "other anchors").certificatePEM
        try directory.write("ca-bundle.crt", otherRoots)
        #expect(try source.current().trustAnchorsPEM == otherRoots)
    }

    @Test func invalidNewValuesKeepTheLastGoodConfigurationAndAreCountedOnce() throws {
        let directory = try ConfigurationDirectory()
        defer { directory.remove() }
        try directory.write("ca-bundle.crt", Fixtures.trustAnchorsPEM)
        try directory.write("values", "linkerdVersion: stable-2.1\n")
        let registry = PrometheusCollectorRegistry()
        let source = directory.source(
            values: "values", trustRoots: "ca-bundle.crt", metricsFactory: PrometheusMetricsFactory(registry: registry))
        #expect(try source.current().linkerdVersion == "stable-2.1")
        try directory.write("values", "proxy:\n  uid: not-a-number\n")
        for _ in 0..<3 {
            #expect(try source.current().linkerdVersion == "stable-2.1")
        }
        #expect(registry.emitToString().contains("mesh_configuration_load_errors_total 1"))
        try directory.write("values", "linkerdVersion: stable-2.3\n")
        #expect(try source.current().linkerdVersion == "stable-2.3")
    }

    @Test func invalidValuesWithoutAGoodConfigurationThrow() throws {
        let directory = try ConfigurationDirectory()
        defer { directory.remove() }
        try directory.write("ca-bundle.crt", Fixtures.trustAnchorsPEM)
        try directory.write("values", "proxy:\n  uid: not-a-number\n")
        let source = directory.source(values: "values", trustRoots: "ca-bundle.crt")
        #expect {
            _ = try source.current()
        } throws: { error in
            let text = "\(error)"
            return text.hasPrefix("cannot use \(directory.path)/values: ") && text.contains("uid")
        }
    }

    @Test func kubeletDataSymlinkSwapIsNoticed() throws {
        let directory = try ConfigurationDirectory()
        defer { directory.remove() }
        try directory.write("ca-bundle.crt", Fixtures.trustAnchorsPEM)
        // The kubelet's atomic writer: files in a timestamped directory, `..data` pointing at it, and the visible
        // names pointing through `..data`.
        try directory.write("config/..2024_01_01_00_00_00.1/values", "linkerdVersion: edge-1\n")
        try directory.symlink("config/..data", to: "..2024_01_01_00_00_00.1")
        try directory.symlink("config/values", to: "..data/values")
        let source = directory.source(values: "config/values", trustRoots: "ca-bundle.crt")
        #expect(try source.current().linkerdVersion == "edge-1")

        // An update: a new directory, a temporary link renamed over `..data`, the old directory removed. The new
        // file has the same size as the old one.
        try directory.write("config/..2024_01_01_00_01_00.2/values", "linkerdVersion: edge-2\n")
        try directory.symlink("config/..data_tmp", to: "..2024_01_01_00_01_00.2")
        try directory.rename("config/..data_tmp", to: "config/..data")
        try directory.removeItem("config/..2024_01_01_00_00_00.1")
        #expect(try source.current().linkerdVersion == "edge-2")
    }
}

/// A throw-away directory for configuration files.
private struct ConfigurationDirectory {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("mesh-config-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func source(
        values: String, trustRoots: String,
        metricsFactory: any MetricsFactory = PrometheusMetricsFactory(registry: PrometheusCollectorRegistry())
    ) -> MeshConfigurationSource {
        MeshConfigurationSource(
            valuesPath: "\(path)/\(values)", trustRootsPath: "\(path)/\(trustRoots)",
            logger: Logger(label: "test.configuration"), metricsFactory: metricsFactory)
    }

    /// Writes atomically (a new file renamed over the old one), as editors and the kubelet do.
    func write(_ name: String, _ contents: String) throws {
        let url = URL(fileURLWithPath: "\(path)/\(name)")
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(contents.utf8).write(to: url, options: .atomic)
    }

    func symlink(_ name: String, to destination: String) throws {
        try FileManager.default.createSymbolicLink(atPath: "\(path)/\(name)", withDestinationPath: destination)
    }

    func rename(_ name: String, to newName: String) throws {
        // rename(2) replaces the old link atomically, as the kubelet's atomic writer does.
        #if canImport(Glibc)
            let result = Glibc.rename("\(path)/\(name)", "\(path)/\(newName)")
        #else
            let result = Darwin.rename("\(path)/\(name)", "\(path)/\(newName)")
        #endif
        guard result == 0 else {
            throw CocoaError(.fileWriteUnknown)
        }
    }

    func removeItem(_ name: String) throws {
        try FileManager.default.removeItem(atPath: "\(path)/\(name)")
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}
