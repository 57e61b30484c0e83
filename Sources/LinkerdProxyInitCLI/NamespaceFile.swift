#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Tells a namespace file (`/proc/<pid>/ns/net`, or one that `ip netns add` bind-mounted under `/run/netns`) from
/// any other path, so that `--netns` pointing at a plain file or a directory fails with a clear message instead of
/// nsenter's.
enum NamespaceFile {
    /// Whether `path` (links followed) lives on the kernel's namespace file system (nsfs): the device of this
    /// process's own `/proc/self/ns/net`. Swift's Glibc module has no `statfs` to read a file system's type.
    static func isNamespace(_ path: String) -> Bool {
        func device(_ path: String) -> UInt64? {
            var information = stat()
            guard stat(path, &information) == 0 else { return nil }
            return UInt64(information.st_dev)
        }
        guard let namespaceDevice = device("/proc/self/ns/net") else { return false }
        return device(path) == namespaceDevice
    }
}
