import Foundation
import Synchronization

/// What a program printed and how it ended.
public struct CommandResult: Sendable, Hashable {
    /// The exit status; -1 when the program could not be started (see ``launchFailure``).
    public var status: Int32
    /// Everything it wrote to standard output.
    public var standardOutput: String
    /// Everything it wrote to standard error.
    public var standardError: String
    /// Why the program could not be started, when it could not.
    public var launchFailure: String?

    public init(status: Int32, standardOutput: String = "", standardError: String = "", launchFailure: String? = nil) {
        self.status = status
        self.standardOutput = standardOutput
        self.standardError = standardError
        self.launchFailure = launchFailure
    }

    /// Whether the program started and exited with status 0.
    public var succeeded: Bool { launchFailure == nil && status == 0 }

    /// One line for a log or an error message: the launch failure, or the status and what the program printed.
    public var summary: String {
        if let launchFailure { return launchFailure }
        let printed = (standardError + standardOutput).trimmingCharacters(in: .whitespacesAndNewlines)
            .replacingOccurrences(of: "\n", with: "; ")
        return printed.isEmpty ? "exit status \(status)" : "exit status \(status): \(printed)"
    }
}

/// Runs programs to completion. proxy-init runs a few dozen short iptables commands once, in an init container, so
/// the runner is synchronous; tests substitute their own to make a chosen command fail.
public protocol CommandRunner: Sendable {
    /// Runs `arguments[0]` (a path) with the remaining arguments and waits for it to exit.
    func run(_ arguments: [String]) -> CommandResult
}

/// Runs programs as child processes with Foundation's `Process`, with no standard input.
public struct ProcessCommandRunner: CommandRunner {
    public init() {}

    public func run(_ arguments: [String]) -> CommandResult {
        guard let program = arguments.first else {
            return CommandResult(status: -1, launchFailure: "no program to run")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = Array(arguments.dropFirst())
        process.standardInput = FileHandle.nullDevice
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        do {
            try process.run()
        } catch {
            return CommandResult(status: -1, launchFailure: "could not start \(program): \(error.localizedDescription)")
        }
        // Standard error is drained on another thread while this one drains standard output, so a program that
        // fills one pipe while we wait on the other cannot deadlock us.
        let errorText = Mutex(Data())
        let drained = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            let data = errors.fileHandleForReading.readDataToEndOfFile()
            errorText.withLock { $0 = data }
            drained.signal()
        }
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        drained.wait()
        process.waitUntilExit()
        return CommandResult(
            status: process.terminationStatus,
            standardOutput: String(decoding: outputData, as: UTF8.self),
            standardError: String(decoding: errorText.withLock { $0 }, as: UTF8.self))
    }
}

/// Finds programs the way a shell does: a name with a slash is a path, checked as it is; a bare name is looked
/// up in each directory of `PATH`, in order.
public struct ProgramLocator: Sendable {
    /// The directories searched for bare names.
    public var searchPath: [String]

    public init(searchPath: [String]) {
        self.searchPath = searchPath
    }

    /// A locator for the `PATH` of `environment`, or the usual system directories when it has none.
    public init(environment: [String: String]) {
        let path = environment["PATH"] ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        self.init(searchPath: path.split(separator: ":").map(String.init))
    }

    /// The path of the executable `name` stands for, or nil when there is none.
    public func locate(_ name: String) -> String? {
        guard !name.isEmpty else { return nil }
        if name.contains("/") {
            return FileManager.default.isExecutableFile(atPath: name) ? name : nil
        }
        return searchPath.lazy.map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }
}
