import Foundation

/// Why a lab, a pod's process or a pod's socket failed.
public enum NetworkLabError: Error, Sendable, CustomStringConvertible {
    /// The lab cannot run here; the reason is ``NetworkLab/unavailableReason``.
    case unavailable(reason: String)
    /// A pod list, pod name, address, port or command was not usable.
    case invalidArgument(reason: String)
    /// `lab.pod(name)` named no pod of the lab.
    case unknownPod(name: String, known: [String])
    /// A process could not be started at all.
    case launchFailed(command: [String], reason: String)
    /// A process that had to succeed did not.
    case commandFailed(LabProcessResult)
    /// A system call for a pod's socket or namespace failed; `target` is the address or path it was about.
    case systemCallFailed(pod: String, function: String, target: String, errno: Int32)
    /// A connection from a pod was not established within its timeout.
    case connectTimedOut(pod: String, address: String, timeout: Duration)
    /// The pod's lab was torn down already, so it has no namespace to work in.
    case labEnded(pod: String)
    /// Teardown left something behind; each problem names what.
    case teardownFailed(problems: [String])

    public var description: String {
        switch self {
        case .unavailable(let reason):
            return "the network lab cannot run: \(reason)"
        case .invalidArgument(let reason):
            return "invalid network lab argument: \(reason)"
        case .unknownPod(let name, let known):
            return "the lab has no pod \"\(name)\"; its pods are \(known.map { "\"\($0)\"" }.joined(separator: ", "))"
        case .launchFailed(let command, let reason):
            return "could not start `\(LabProcess.commandLine(command))`: \(reason)"
        case .commandFailed(let result):
            return result.description
        case .systemCallFailed(let pod, let function, let target, let errno):
            let text = String(cString: strerror(errno))
            return "in pod \"\(pod)\", \(function) for \(target) failed: errno \(errno) (\(text))"
        case .connectTimedOut(let pod, let address, let timeout):
            return "in pod \"\(pod)\", the connection to \(address) was not established within \(timeout)"
        case .labEnded(let pod):
            return "the lab of pod \"\(pod)\" has been torn down"
        case .teardownFailed(let problems):
            return "the lab was not torn down completely: \(problems.joined(separator: "; "))"
        }
    }
}
