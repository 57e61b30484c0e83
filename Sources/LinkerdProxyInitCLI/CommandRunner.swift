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

/// Runs programs as child processes with Foundation's `Process`, with no standard input, each for at most
/// ``timeout``: a program still running then (iptables waiting for the xtables lock with `-w`, a stuck nsenter) is
/// sent SIGTERM, then SIGKILL two seconds later, and its run fails, so that a pod never hangs in its init container.
public struct ProcessCommandRunner: CommandRunner {
    /// How long a program may run.
    public var timeout: Duration

    public init(timeout: Duration = .seconds(60)) {
        self.timeout = timeout
    }

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
        let watch = Watch(processID: process.processIdentifier)
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout.seconds) { watch.expire() }
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
        let timedOut = watch.finish()
        return CommandResult(
            status: process.terminationStatus,
            standardOutput: String(decoding: outputData, as: UTF8.self),
            standardError: String(decoding: errorText.withLock { $0 }, as: UTF8.self),
            launchFailure: timedOut ? "\(program) was still running after \(timeout) and was stopped" : nil)
    }

    /// The deadline of one run: `expire` signals the process unless `finish` came first. The two are serialized, so
    /// a process is not signalled once its exit was seen, when its id could be another process's; only the moment
    /// between Foundation reaping it and `finish` remains, far too short for process ids to wrap around.
    private final class Watch: Sendable {
        private let processID: Int32
        private let state = Mutex((finished: false, expired: false))

        init(processID: Int32) {
            self.processID = processID
        }

        func expire() {
            let signalled = state.withLock { state -> Bool in
                guard !state.finished else { return false }
                state.expired = true
                kill(processID, SIGTERM)
                return true
            }
            guard signalled else { return }
            DispatchQueue.global().asyncAfter(deadline: .now() + 2) { [self] in
                state.withLock { state in
                    if !state.finished { kill(processID, SIGKILL) }
                }
            }
        }

        /// Marks the exit as seen; returns whether the deadline had passed.
        func finish() -> Bool {
            state.withLock { state in
                state.finished = true
                return state.expired
            }
        }
    }
}

extension Duration {
    /// The duration in seconds, for Dispatch.
    fileprivate var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
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
