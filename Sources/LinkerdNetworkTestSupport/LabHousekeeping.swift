import Foundation

/// The names of one lab's bridge, links and namespaces, and how to tell which process made a name.
struct LabNames {
    /// The process making the lab; its id is in every name, so that labs of concurrent processes differ.
    let processID: Int32
    /// The lab's number within the process (wrapping after 65535 labs).
    let lab: UInt16

    static let bridgePrefix = "l5b"
    static let hostLinkPrefix = "l5v"
    static let namespacePrefix = "l5d-"

    /// `l5b` + pid (6 hex digits) + lab (4): 13 characters.
    var bridge: String {
        Self.bridgePrefix + Self.hex(Int(processID), digits: 6) + Self.hex(Int(lab), digits: 4)
    }

    /// `l5v` + pid (6 hex digits) + lab (4) + pod index (2): 15 characters, Linux's longest interface name.
    func hostLink(podIndex: Int) -> String {
        Self.hostLinkPrefix + Self.hex(Int(processID), digits: 6) + Self.hex(Int(lab), digits: 4)
            + Self.hex(podIndex, digits: 2)
    }

    /// `l5d-<pid>-<lab>-<pod>`, in decimal.
    func namespace(_ pod: String) -> String {
        "\(Self.namespacePrefix)\(processID)-\(lab)-\(pod)"
    }

    /// The id of the process that made the link `name`, or nil when it is not a lab's bridge or host-side link.
    static func owner(ofLink name: String) -> Int32? {
        let expectedLength: Int
        if name.hasPrefix(bridgePrefix) {
            expectedLength = 13
        } else if name.hasPrefix(hostLinkPrefix) {
            expectedLength = 15
        } else {
            return nil
        }
        let digits = name.dropFirst(3)
        guard name.count == expectedLength, digits.allSatisfy(\.isHexDigit) else {
            return nil
        }
        return Int32(digits.prefix(6), radix: 16)
    }

    /// The id of the process that made the namespace `name`, or nil when it is not a lab's namespace.
    static func owner(ofNamespace name: String) -> Int32? {
        guard name.hasPrefix(namespacePrefix) else {
            return nil
        }
        let parts = name.dropFirst(namespacePrefix.count).split(separator: "-", maxSplits: 2)
        guard parts.count == 3, UInt16(parts[1]) != nil else {
            return nil
        }
        return Int32(parts[0])
    }

    private static func hex(_ value: Int, digits: Int) -> String {
        let text = String(value, radix: 16)
        return String(repeating: "0", count: max(0, digits - text.count)) + text
    }
}

/// Removes what labs of dead processes left behind: their namespaces (and any process still in them), bridges and
/// host-side links. A process whose id is alive again (reused) keeps its leftovers until that process is gone.
///
/// Every lab sweeps as it starts: it costs a directory listing and one `ip -o link show`, and concurrent sweeps are
/// harmless, as they only touch what dead processes made.
enum LabSweeper {
    static func sweep(ip: String) async {
        let namespaces = ((try? FileManager.default.contentsOfDirectory(atPath: "/run/netns")) ?? []).filter {
            LabNames.owner(ofNamespace: $0).map(isDead) ?? false
        }
        let linkListing =
            await (try? LabProcess.launch([ip, "-o", "link", "show"]))?.waitForExit().standardOutput ?? ""
        let links = linkListing.split(separator: "\n").compactMap { line -> String? in
            // "12: l5v0001f2000100@if2: <BROADCAST,...": the name is the second field, up to "@" or ":".
            let fields = line.split(separator: " ", maxSplits: 2)
            guard fields.count > 1, let name = fields[1].split(separator: "@").first?.split(separator: ":").first
            else {
                return nil
            }
            let text = String(name)
            return LabNames.owner(ofLink: text).map(isDead) == true ? text : nil
        }
        guard !namespaces.isEmpty || !links.isEmpty else {
            return
        }
        for namespace in namespaces {
            NamespaceProcesses.killAll(inNamespaceAt: "/run/netns/\(namespace)")
        }
        // Another process may sweep the same leftovers at the same time: failures are expected and ignored.
        let commands = links.map { "link delete \($0)" } + namespaces.map { "netns delete \($0)" }
        let batch = try? LabProcess.launch(
            [ip, "-force", "-batch", "-"], input: commands.joined(separator: "\n") + "\n")
        _ = await batch?.waitForExit()
    }

    private static func isDead(_ processID: Int32) -> Bool {
        kill(processID, 0) != 0 && errno == ESRCH
    }
}

/// The processes in a network namespace, found through `/proc/<pid>/ns/net`.
enum NamespaceProcesses {
    /// Sends `SIGKILL` to every process (other than this one) in the namespace bound at `path`; does nothing when
    /// `path` is not there.
    static func killAll(inNamespaceAt path: String) {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
            let inode = (attributes[.systemFileNumber] as? NSNumber)?.uint64Value
        else {
            return
        }
        let link = "net:[\(inode)]"
        let ownID = getpid()
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for entry in entries {
            guard let processID = Int32(entry), processID != ownID,
                (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(entry)/ns/net")) == link
            else {
                continue
            }
            kill(processID, SIGKILL)
        }
    }
}
