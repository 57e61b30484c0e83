import Foundation
import LinkerdCore
import Logging

/// Writes proxy-init's log lines in the shape upstream's logrus formatters give, so that `kubectl logs
/// <pod> -c linkerd-init` reads the same: `time="…" level=info msg="…"` (plain) or
/// `{"level":"info","msg":"…","time":"…"}` (json), one line per message (values quoted and escaped, so that
/// iptables output stays on its line), to a sink rather than straight to standard error so tests can read them.
struct ProxyInitLogHandler: LogHandler {
    var format: LogFormat
    var sink: @Sendable (String) -> Void
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let time = Date().formatted(.iso8601)
        let level = Self.name(event.level)
        let fields = metadata.merging(event.metadata ?? [:]) { $1 }.sorted { $0.key < $1.key }
        switch format {
        case .plain:
            var line = "time=\(time.quoted) level=\(level) msg=\(event.message.description.quoted)"
            for (key, value) in fields {
                line += " \(key)=\(value.description.quoted)"
            }
            sink(line + "\n")
        case .json:
            var object = ["level": level, "msg": event.message.description, "time": time]
            for (key, value) in fields where object[key] == nil {
                object[key] = value.description
            }
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
            sink(String(decoding: data, as: UTF8.self) + "\n")
        }
    }

    /// logrus's level names.
    private static func name(_ level: Logger.Level) -> String {
        switch level {
        case .trace: "trace"
        case .debug: "debug"
        case .info, .notice: "info"
        case .warning: "warning"
        case .error: "error"
        case .critical: "fatal"
        }
    }
}
