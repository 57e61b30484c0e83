/// The iptables back ends proxy-init can drive, in the order it falls back through when the configured binaries are
/// missing: nftables first (the default of current distributions and of the injector), then whatever `iptables`
/// is on the host, then the legacy x_tables back end.
public enum IPTablesMode: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// `iptables-nft` and `iptables-nft-save`.
    case nft
    /// `iptables` and `iptables-save`, whichever back end they are linked to.
    case plain
    /// `iptables-legacy` and `iptables-legacy-save`.
    case legacy

    public var description: String { rawValue }
}

/// The pair of programs one family's rules are written and read with: the command (`iptables-nft`) and its save
/// program (`iptables-nft-save`). Each is a bare name looked up in `PATH` or a path.
public struct FirewallBinaries: Sendable, Hashable, CustomStringConvertible {
    /// The program that changes rules.
    public var command: String
    /// The program that prints the table, run as `<save> -t nat`.
    public var save: String

    public init(command: String, save: String) {
        self.command = command
        self.save = save
    }

    /// The conventional names of `mode`'s programs for `family`: `iptables-nft`/`iptables-nft-save` for IPv4,
    /// `ip6tables-nft`/`ip6tables-nft-save` for IPv6.
    public static func named(_ mode: IPTablesMode, family: IPFamily) -> FirewallBinaries {
        let prefix = family == .ipv4 ? "iptables" : "ip6tables"
        let infix = mode == .plain ? "" : "-\(mode.rawValue)"
        return FirewallBinaries(command: prefix + infix, save: prefix + infix + "-save")
    }

    /// The mode the command's file name stands for (`iptables-nft` is nft, `iptables` is plain), or nil for a
    /// name that is none of the conventional ones.
    public var mode: IPTablesMode? {
        let name = Self.fileName(command)
        return IPTablesMode.allCases.first { mode in
            IPFamily.allCases.contains { Self.named(mode, family: $0).command == name }
        }
    }

    /// The mode the save program's file name stands for (`iptables-nft-save` is nft), or nil.
    public var saveMode: IPTablesMode? {
        let name = Self.fileName(save)
        return IPTablesMode.allCases.first { mode in
            IPFamily.allCases.contains { Self.named(mode, family: $0).save == name }
        }
    }

    /// Whether one program writes nftables rules and the other reads the legacy tables (or the reverse), so that
    /// the table read back would never show what was written. `plain` programs may be either, so they conflict
    /// with nothing.
    public var mixesBackEnds: Bool {
        guard let mode, let saveMode, mode != .plain, saveMode != .plain else { return false }
        return mode != saveMode
    }

    /// The IPv6 counterpart of an IPv4 pair: the leading `iptables` of each file name becomes `ip6tables`, so that
    /// `/usr/sbin/iptables-nft` gives `/usr/sbin/ip6tables-nft`; nil when a file name does not start with
    /// `iptables`, as there is then no telling which program handles IPv6.
    public var forIPv6: FirewallBinaries? {
        func counterpart(_ path: String) -> String? {
            let name = Self.fileName(path)
            guard name.hasPrefix("iptables") else { return nil }
            return String(path.dropLast(name.count)) + "ip6" + name.dropFirst(2)
        }
        guard let command = counterpart(command), let save = counterpart(save) else { return nil }
        return FirewallBinaries(command: command, save: save)
    }

    /// `command` and `save`, separated by a slash: `iptables-nft/iptables-nft-save`.
    public var description: String { "\(command)/\(save)" }

    private static func fileName(_ path: String) -> Substring {
        path.split(separator: "/", omittingEmptySubsequences: false).last ?? Substring(path)
    }
}

/// Why no pair of iptables programs could be used.
public struct FirewallBinaryLookupError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The family the programs were wanted for.
    public var family: IPFamily
    /// Every pair tried, in order, with the programs of each that were not found.
    public var attempts: [Attempt]

    /// One pair that was tried and the programs of it that were missing.
    public struct Attempt: Hashable, Sendable {
        public var binaries: FirewallBinaries
        public var missing: [String]
    }

    public var description: String {
        let tried = attempts.map { "\($0.binaries) (\($0.missing.joined(separator: " and ")) not found)" }
        return "no usable iptables programs for \(family == .ipv4 ? "IPv4" : "IPv6"): tried "
            + tried.joined(separator: ", ")
            + "; install the iptables package or pass --firewall-bin-path/--firewall-save-bin-path"
    }
}

/// Chooses the programs to run, falling back when the configured ones are missing, in the order of
/// ``IPTablesMode/allCases`` (nft → plain → legacy). Pure: the caller passes how to find a program.
public enum FirewallBinarySelection {
    /// The programs to use for `family`, with their located paths.
    ///
    /// - Parameters:
    ///   - configured: the pair from the flags, for `family` (see ``FirewallBinaries/forIPv6``).
    ///   - locate: the path a name or path resolves to (searching `PATH` for bare names), or nil when there is no
    ///     such executable.
    /// - Returns: the located pair, and whether it is a fallback rather than `configured`.
    /// - Throws: ``FirewallBinaryLookupError`` listing every pair tried when none is complete.
    public static func select(
        configured: FirewallBinaries, family: IPFamily, locate: (String) -> String?
    ) throws(FirewallBinaryLookupError) -> (binaries: FirewallBinaries, isFallback: Bool) {
        var attempts: [FirewallBinaryLookupError.Attempt] = []
        func attempt(_ binaries: FirewallBinaries) -> FirewallBinaries? {
            let command = locate(binaries.command)
            let save = locate(binaries.save)
            if let command, let save {
                return FirewallBinaries(command: command, save: save)
            }
            let missing = [command == nil ? binaries.command : nil, save == nil ? binaries.save : nil]
            attempts.append(.init(binaries: binaries, missing: missing.compactMap { $0 }))
            return nil
        }
        if let found = attempt(configured) {
            return (found, false)
        }
        for mode in IPTablesMode.allCases {
            let candidate = FirewallBinaries.named(mode, family: family)
            guard candidate != configured, let found = attempt(candidate) else { continue }
            return (found, true)
        }
        throw FirewallBinaryLookupError(family: family, attempts: attempts)
    }
}
