import Foundation
import Synchronization

/// How a lab process ended.
public enum LabTermination: Hashable, Sendable, CustomStringConvertible {
    /// It exited with this status.
    case exit(Int32)
    /// A signal ended it, such as 9 for `SIGKILL`.
    case signal(Int32)

    /// `exit status 1` or `signal 9`.
    public var description: String {
        switch self {
        case .exit(let status): "exit status \(status)"
        case .signal(let signal): "signal \(signal)"
        }
    }
}

/// What a finished lab process did: its command, how it ended, and everything it wrote.
public struct LabProcessResult: Hashable, Sendable, CustomStringConvertible {
    /// The whole command line as run, starting with the executable (for a pod: `ip netns exec <namespace> ...`).
    public var command: [String]
    public var termination: LabTermination
    /// Standard output, decoded as UTF-8 (invalid bytes replaced).
    public var standardOutput: String
    /// Standard error, decoded as UTF-8 (invalid bytes replaced).
    public var standardError: String

    /// Whether the process exited with status 0.
    public var succeeded: Bool { termination == .exit(0) }

    /// `` `ip netns exec ... id -u` ended with exit status 1: <standard error> ``, for failure messages.
    public var description: String {
        let error = standardError.trimmingCharacters(in: .whitespacesAndNewlines)
        return "`\(LabProcess.commandLine(command))` ended with \(termination)"
            + (error.isEmpty ? " and wrote nothing to standard error" : ": \(error)")
    }
}

/// A process started by the lab, whose output is collected until it exits.
///
/// Both output pipes are read to their end on threads of their own while the process runs, so a process never
/// blocks on a full pipe, and ``waitForExit()`` returns once the process has exited and both pipes are closed. A
/// pod's processes are killed when its lab is torn down.
///
/// Foundation sees a process end only when every process holding a descriptor it passes to the child has ended, so
/// a background job left by a shell (`sh -c "server &"`) keeps its shell "running" until the job ends too: start
/// long-running processes with ``LabPod/spawn(_:uid:gid:)`` rather than as background jobs.
public final class LabProcess: Sendable {
    /// The whole command line, starting with the executable.
    public let command: [String]
    /// The process id, while the process runs.
    public let processIdentifier: Int32
    private let collector: Collector
    /// Kept for the life of this handle: Foundation watches the process only while its `Process` object lives.
    nonisolated(unsafe) private let process: Foundation.Process

    private init(command: [String], process: Foundation.Process, collector: Collector) {
        self.command = command
        self.processIdentifier = process.processIdentifier
        self.collector = collector
        self.process = process
    }

    /// Starts `command` (the first element is an executable path), with `input` written to its standard input, or
    /// standard input at `/dev/null` when `input` is nil.
    ///
    /// - Throws: ``NetworkLabError/launchFailed(command:reason:)`` when the process cannot be started.
    static func launch(_ command: [String], input: String? = nil) throws(NetworkLabError) -> LabProcess {
        guard let executable = command.first else {
            throw .invalidArgument(reason: "the command is empty")
        }
        let process = Foundation.Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = Array(command.dropFirst())
        let outputPipe = Pipe()
        let errorPipe = Pipe()
        let inputPipe = input.map { _ in Pipe() }
        process.standardOutput = outputPipe
        process.standardError = errorPipe
        process.standardInput = inputPipe ?? FileHandle.nullDevice

        let collector = Collector(command: command)
        process.terminationHandler = { process in
            let status = process.terminationStatus
            let termination: LabTermination =
                process.terminationReason == .uncaughtSignal ? .signal(status) : .exit(status)
            collector.update { $0.termination = termination }
        }
        do {
            try process.run()
        } catch {
            throw .launchFailed(command: command, reason: "\(error)")
        }
        let launched = LabProcess(command: command, process: process, collector: collector)
        launched.readToEnd(outputPipe.fileHandleForReading) { data in collector.update { $0.output = data } }
        launched.readToEnd(errorPipe.fileHandleForReading) { data in collector.update { $0.error = data } }
        if let inputPipe, let input {
            // A process that exits without reading makes the write fail; its result tells the rest.
            try? inputPipe.fileHandleForWriting.write(contentsOf: Data(input.utf8))
            try? inputPipe.fileHandleForWriting.close()
        }
        return launched
    }

    /// Whether the process has exited (its output may still be being read).
    public var hasExited: Bool { collector.hasExited }

    /// Sends `SIGTERM`, unless the process has already exited.
    public func terminate() {
        collector.signalUnlessExited(processIdentifier, SIGTERM)
    }

    /// Sends `SIGKILL`, unless the process has already exited.
    public func kill() {
        collector.signalUnlessExited(processIdentifier, SIGKILL)
    }

    /// Waits until the process has exited and both output pipes are closed, and returns what it did. A process
    /// that left a child behind (a shell's background job) is done only when that child ends.
    public func waitForExit() async -> LabProcessResult {
        await collector.result.value
    }

    /// `command` as one shell-like line, quoting arguments that need it, for messages.
    static func commandLine(_ command: [String]) -> String {
        command.map { argument in
            let plain =
                !argument.isEmpty
                && argument.unicodeScalars.allSatisfy {
                    CharacterSet.alphanumerics.contains($0) || "-_./:=@%+,[]".unicodeScalars.contains($0)
                }
            return plain ? argument : "'" + argument.replacingOccurrences(of: "'", with: "'\\''") + "'"
        }.joined(separator: " ")
    }

    private func readToEnd(_ handle: FileHandle, then deliver: @escaping @Sendable (Data) -> Void) {
        let thread = Thread {
            deliver((try? handle.readToEnd()) ?? Data())
            try? handle.close()
        }
        thread.name = "lab pipe reader \(processIdentifier)"
        thread.start()
    }

    /// Gathers the exit and both outputs, and completes ``result`` once it has all three.
    private final class Collector: Sendable {
        let result = Completion<LabProcessResult>()
        private let command: [String]
        private let parts = Mutex(Parts())

        init(command: [String]) {
            self.command = command
        }

        var hasExited: Bool {
            parts.withLock { $0.termination != nil }
        }

        func update(_ change: (inout Parts) -> Void) {
            let finished = parts.withLock { parts -> LabProcessResult? in
                change(&parts)
                guard let termination = parts.termination, let output = parts.output, let error = parts.error else {
                    return nil
                }
                return LabProcessResult(
                    command: command, termination: termination,
                    standardOutput: String(decoding: output, as: UTF8.self),
                    standardError: String(decoding: error, as: UTF8.self))
            }
            if let finished {
                result.complete(finished)
            }
        }

        /// Signals `pid` while its exit has not been recorded, under the lock that records it, so that a pid the
        /// system may have given to another process after the exit is not signalled.
        func signalUnlessExited(_ pid: Int32, _ signal: Int32) {
            parts.withLock { parts in
                if parts.termination == nil {
                    _ = Foundation.kill(pid, signal)
                }
            }
        }
    }

    private struct Parts {
        var termination: LabTermination?
        var output: Data?
        var error: Data?
    }
}

/// A value set once, awaited by any number of tasks.
final class Completion<Value: Sendable>: Sendable {
    private let state = Mutex<(value: Value?, waiters: [CheckedContinuation<Value, Never>])>((nil, []))

    var isComplete: Bool {
        state.withLock { $0.value != nil }
    }

    /// Sets the value and resumes every waiter; later calls are ignored.
    func complete(_ value: Value) {
        let waiters = state.withLock { state -> [CheckedContinuation<Value, Never>] in
            guard state.value == nil else {
                return []
            }
            state.value = value
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters {
            waiter.resume(returning: value)
        }
    }

    var value: Value {
        get async {
            await withCheckedContinuation { continuation in
                let ready = state.withLock { state -> Value? in
                    if state.value == nil {
                        state.waiters.append(continuation)
                    }
                    return state.value
                }
                if let ready {
                    continuation.resume(returning: ready)
                }
            }
        }
    }
}
