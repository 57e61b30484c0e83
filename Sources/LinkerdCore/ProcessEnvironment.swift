#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The environment of the running process, read afresh on every call.
public struct ProcessEnvironment: EnvironmentReader {
    /// The process environment.
    public init() {}

    /// The value of the environment variable `name`, or nil when it is unset.
    public func value(_ name: String) -> String? {
        ProcessInfo.processInfo.environment[name]
    }
}
