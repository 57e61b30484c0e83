import Foundation

/// The families `/metrics` shows before the data path's: the identity certificate's expiry and the standard
/// Prometheus process families, read from `/proc/self` at each scrape (proxy.md §6.3), ending with `# EOF` as the
/// prometheus-client text does.
enum ProxyProcessMetrics {
    static func render(credentials: ProxyCredentials, startedAt: Date) -> String {
        var text = ""
        func family(_ name: String, _ type: String, _ help: String, _ value: Double) {
            text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n\(name) \(format(value))\n"
        }
        if let expiry = credentials.expiry {
            family(
                "identity_cert_expiration_timestamp_seconds", "gauge",
                "Time when the this proxy's current mTLS identity certificate will expire (in seconds since the UNIX epoch).",
                expiry.timeIntervalSince1970)
            family(
                "control_identity_cert_expiration_timestamp_seconds", "gauge",
                "Time when the current identity certificate expires, in seconds since the UNIX epoch.",
                expiry.timeIntervalSince1970)
        }
        family(
            "process_start_time_seconds", "gauge", "Time that the process started (in seconds since the UNIX epoch).",
            startedAt.timeIntervalSince1970.rounded(.down))
        if let process = ProcessStatistics.read() {
            family(
                "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.",
                process.cpuSeconds)
            family(
                "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
                Double(process.residentBytes))
            family(
                "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", Double(process.virtualBytes))
            family("process_threads", "gauge", "Number of OS threads in the process.", Double(process.threads))
        }
        if let descriptors = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") {
            family("process_open_fds", "gauge", "Number of open file descriptors.", Double(descriptors.count))
        }
        return text + "# EOF\n"
    }

    private static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }
}

/// What `/proc/self/stat` says of this process (Linux; nil elsewhere or when it cannot be read).
struct ProcessStatistics {
    var cpuSeconds: Double
    var virtualBytes: Int
    var residentBytes: Int
    var threads: Int

    /// The kernel's clock ticks per second and page size, as on every Linux this runs on (USER_HZ is fixed at 100
    /// for user space; pages are 4 KiB on x86-64 and arm64's usual kernels).
    static let ticksPerSecond = 100.0
    static let pageSize = 4096

    static func read() -> ProcessStatistics? {
        guard let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
            let end = stat.lastIndex(of: ")")
        else { return nil }
        // Fields after the command name, which may hold spaces and parentheses: state is field 3.
        let fields = stat[stat.index(after: end)...].split(separator: " ")
        func field(_ number: Int) -> Double? { fields.count > number - 3 ? Double(fields[number - 3]) : nil }
        guard let user = field(14), let system = field(15), let threads = field(20), let virtual = field(23),
            let resident = field(24)
        else { return nil }
        return ProcessStatistics(
            cpuSeconds: (user + system) / ticksPerSecond, virtualBytes: Int(virtual),
            residentBytes: Int(resident) * pageSize, threads: Int(threads))
    }
}
