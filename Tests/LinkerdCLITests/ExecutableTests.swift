import Foundation
import KubeModel
import Testing

@Suite("The linkerd executable")
struct ExecutableTests {
    /// The built `linkerd`: next to the test bundle (both are products of one build), else in `.build/debug` of the
    /// package this file belongs to.
    static func executable() throws -> URL {
        let bundleDirectory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let packageRoot = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let candidates = [
            bundleDirectory.appendingPathComponent("linkerd"),
            Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("linkerd"),
            packageRoot.appendingPathComponent(".build/debug/linkerd"),
        ]
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
            throw ExecutableMissing(searched: candidates.map(\.path))
        }
        return found
    }

    struct ExecutableMissing: Error, CustomStringConvertible {
        var searched: [String]
        var description: String {
            "the linkerd executable is not built (run `swift build --build-tests`); searched "
                + searched.joined(separator: ", ")
        }
    }

    /// Runs the executable with `arguments` and `input` as standard input; the streams are files, so no pipe can
    /// fill up and block the process.
    static func run(_ arguments: [String], input: String) throws -> (stdout: String, stderr: String, status: Int32) {
        try withTemporaryDirectory { directory in
            let inputFile = directory.appendingPathComponent("stdin")
            let outputFile = directory.appendingPathComponent("stdout")
            let errorFile = directory.appendingPathComponent("stderr")
            try input.write(to: inputFile, atomically: true, encoding: .utf8)
            _ = FileManager.default.createFile(atPath: outputFile.path, contents: nil)
            _ = FileManager.default.createFile(atPath: errorFile.path, contents: nil)
            let process = Process()
            process.executableURL = try executable()
            process.arguments = arguments
            process.standardInput = try FileHandle(forReadingFrom: inputFile)
            process.standardOutput = try FileHandle(forWritingTo: outputFile)
            process.standardError = try FileHandle(forWritingTo: errorFile)
            try process.run()
            process.waitUntilExit()
            return (
                try String(contentsOf: outputFile, encoding: .utf8), try String(contentsOf: errorFile, encoding: .utf8),
                process.terminationStatus
            )
        }
    }

    @Test("inject - reads standard input and writes the objects and the report")
    func injectFromStandardInput() throws {
        let input = try Fixture.text("workloads.yaml")
        let result = try Self.run(["inject", "-"], input: input)
        #expect(result.status == 0, "\(result.stderr)")
        let output = try objects(result.stdout)
        #expect(output.count == 7)
        #expect(podAnnotations(output[1])?["linkerd.io/inject"] == "enabled")
        #expect(result.stderr.contains("deployment \"web\" injected\n"))
    }

    @Test("An invalid flag exits with status 64 and a usage message")
    func usageError() throws {
        let result = try Self.run(["inject", "--admin-port", "99999", "-"], input: "")
        #expect(result.status == 64)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.contains("invalid value \"99999\" for --admin-port"))
    }
}
