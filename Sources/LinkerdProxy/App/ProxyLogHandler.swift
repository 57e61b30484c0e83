import Foundation
import LinkerdCore
import LinkerdProxyCore
import Logging

/// The proxy's log lines, filtered by the live ``LogFilterStore`` (so `PUT /proxy-log-level` takes effect at once):
/// plain `<time> <LEVEL> <target>: <message> key=value…` or one JSON object per line (`LINKERD2_PROXY_LOG_FORMAT`),
/// to standard error. A logger's label is its target, with `.` read as `::` (`linkerd.proxy` is
/// `linkerd::proxy`), so `linkerd=info` covers every proxy logger.
public struct ProxyLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    /// The least severe level the live filter lets through for this target, so that swift-log skips building the
    /// messages of filtered calls; `off` maps to `critical`, and ``log(event:)`` drops those too. Setting it does
    /// nothing: `PUT /proxy-log-level` is the way to change levels.
    public var logLevel: Logger.Level {
        get {
            switch filter.current.level(for: target) {
            case .off: .critical
            case .error: .error
            case .warn: .warning
            case .info: .info
            case .debug: .debug
            case .trace: .trace
            }
        }
        set {}
    }
    private let target: String
    private let filter: LogFilterStore
    private let json: Bool
    private let write: @Sendable (String) -> Void

    public init(
        label: String, filter: LogFilterStore, json: Bool,
        write: @escaping @Sendable (String) -> Void = { FileHandle.standardError.write(Data($0.utf8)) }
    ) {
        target = label.replacingOccurrences(of: ".", with: "::")
        self.filter = filter
        self.json = json
        self.write = write
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let level = Self.level(event.level)
        guard level <= filter.current.level(for: target) else { return }
        let fields = metadata.merging(event.metadata ?? [:]) { $1 }.sorted { $0.key < $1.key }
        let time = Date().formatted(.iso8601)
        if json {
            var object: [String: String] = [
                "timestamp": time, "level": level.description.uppercased(), "target": target,
                "message": event.message.description,
            ]
            for (key, value) in fields where object[key] == nil {
                object[key] = value.description
            }
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
            write(String(decoding: data, as: UTF8.self) + "\n")
        } else {
            var line = "\(time) \(level.description.uppercased()) \(target): \(event.message)"
            for (key, value) in fields {
                line += " \(key)=\(value)"
            }
            write(line + "\n")
        }
    }

    private static func level(_ level: Logger.Level) -> LogFilter.Level {
        switch level {
        case .trace: .trace
        case .debug: .debug
        case .info, .notice: .info
        case .warning: .warn
        case .error, .critical: .error
        }
    }
}
