import KubeModel

/// The mesh auditor's memory, as a value: which pods have a finding, which finding each pod's Events already
/// reported, and how many pods with each finding every owner has (what the gauges show).
///
/// It decides, the auditor acts: `record` says whether Events are due and which owners' counts changed; the
/// auditor sends the Events, calls `markReported`, and sets the gauges to the counts it was given. A pod's Events
/// are due once per finding: again only when its finding changes (say, a newer expected version) or when the pod
/// under that name is another one (a new uid). `forget` (pod deleted, or no longer a finding) drops the memory.
struct MeshAuditBook {
    /// The labels of the per-owner gauges. A bare pod is its own owner (kind `pod`).
    struct OwnerGroup: Hashable, Sendable {
        var namespace: String
        /// The lower-cased kind, as `WorkloadOwner.kind`.
        var ownerKind: String
        var owner: String
    }

    /// Pods with each finding, for one owner.
    struct Counts: Hashable, Sendable {
        var proxyMissing = 0
        var proxyOutdated = 0

        fileprivate mutating func add(_ finding: MeshFinding, _ delta: Int) {
            switch finding {
            case .proxyMissing: proxyMissing += delta
            case .proxyOutdated: proxyOutdated += delta
            }
        }
    }

    struct Update: Equatable {
        /// Whether the pod's Events for this finding have not been sent yet.
        var eventsDue: Bool
        /// The owners whose counts changed, with their new counts (zeros included, so gauges go back to 0).
        var changedCounts: [OwnerGroup: Counts]
    }

    private struct Entry {
        var uid: String?
        var group: OwnerGroup
        var finding: MeshFinding
        var reported: MeshFinding?
    }

    private var entries: [ObjectKey: Entry] = [:]
    /// Non-zero counts only.
    private(set) var counts: [OwnerGroup: Counts] = [:]

    /// Notes that `pod` (with `uid`, belonging to `group`) has `finding` now.
    mutating func record(_ finding: MeshFinding, pod: ObjectKey, uid: String?, group: OwnerGroup) -> Update {
        var changed: [OwnerGroup: Counts] = [:]
        var reported: MeshFinding?
        if let old = entries[pod] {
            if old.uid == uid { reported = old.reported }
            if old.group != group || old.finding.metricReason != finding.metricReason {
                changed[old.group] = adjust(old.group, old.finding, -1)
                changed[group] = adjust(group, finding, +1)
            }
        } else {
            changed[group] = adjust(group, finding, +1)
        }
        entries[pod] = Entry(uid: uid, group: group, finding: finding, reported: reported)
        return Update(eventsDue: reported != finding, changedCounts: changed)
    }

    /// Notes that the Events for `finding` were sent for `pod`; nothing when the pod's finding has changed since.
    mutating func markReported(_ finding: MeshFinding, pod: ObjectKey, uid: String?) {
        guard var entry = entries[pod], entry.uid == uid, entry.finding == finding else { return }
        entry.reported = finding
        entries[pod] = entry
    }

    /// Forgets `pod`; returns the owner counts that changed.
    mutating func forget(_ pod: ObjectKey) -> [OwnerGroup: Counts] {
        guard let old = entries.removeValue(forKey: pod) else { return [:] }
        return [old.group: adjust(old.group, old.finding, -1)]
    }

    private mutating func adjust(_ group: OwnerGroup, _ finding: MeshFinding, _ delta: Int) -> Counts {
        var updated = counts[group] ?? Counts()
        updated.add(finding, delta)
        counts[group] = updated == Counts() ? nil : updated
        return updated
    }
}
