import FoundationEssentials
import Runtime
import SystemSupport

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Reads facts about this board from /proc, /sys and /etc. The root is injectable so tests
/// and containers can point it at a prepared tree.
public struct HostReader: Sendable {
    public var root: String

    public init(root: String = "") { self.root = root }

    func text(_ path: String) -> String? {
        guard let bytes = try? AtomicFile.read(root + path) else { return nil }
        return String(decoding: bytes, as: UTF8.self).trimming([" ", "\n", "\t", "\r", "\0"])
    }

    /// `MemTotal` and `MemAvailable` from /proc/meminfo, in bytes.
    public func memory() -> (total: Int64, available: Int64) {
        var total: Int64 = 0
        var available: Int64 = 0
        for line in (text("/proc/meminfo") ?? "").split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 2, let kibibytes = Int64(fields[1]) else { continue }
            if fields[0] == "MemTotal:" { total = kibibytes * 1024 }
            if fields[0] == "MemAvailable:" { available = kibibytes * 1024 }
        }
        return (total, available)
    }

    /// The board's memory pressure (/proc/pressure/memory; nil without PSI, e.g. a kernel
    /// without CONFIG_PSI or booted with psi=0).
    public func memoryPressure() -> PressureStall? {
        text("/proc/pressure/memory").flatMap { PressureStall(parsing: $0) }
    }

    /// The busy and total CPU jiffies from the first line of /proc/stat.
    public func cpuTimes() -> (busy: UInt64, total: UInt64)? {
        guard let first = text("/proc/stat")?.split(separator: "\n").first, first.hasPrefix("cpu ") else { return nil }
        let values = first.split(separator: " ").dropFirst().compactMap { UInt64($0) }
        guard values.count >= 4 else { return nil }
        let idle = values[3] + (values.count > 4 ? values[4] : 0)  // idle + iowait
        let total = values.prefix(8).reduce(0, +)
        return (total - idle, total)
    }

    /// The number of online CPUs.
    public func cpuCount() -> Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

    /// Total and available bytes of the filesystem holding `path`.
    public func filesystem(_ path: String) -> (total: Int64, available: Int64)? {
        var stats = statvfs()
        guard statvfs(root + path, &stats) == 0 else { return nil }
        return (Int64(stats.f_blocks) * Int64(stats.f_frsize), Int64(stats.f_bavail) * Int64(stats.f_frsize))
    }

    /// Total and free (for unprivileged users) inodes of the filesystem holding `path`.
    public func inodes(_ path: String) -> (total: Int64, free: Int64)? {
        var stats = statvfs()
        guard statvfs(root + path, &stats) == 0 else { return nil }
        return (Int64(stats.f_files), Int64(stats.f_favail))
    }

    /// The process (task) limit — the smaller of `pid_max` and `threads-max` — and the tasks
    /// that exist now (the second figure of /proc/loadavg's "running/total").
    public func processes() -> (limit: Int64, current: Int64)? {
        let limits = ["/proc/sys/kernel/pid_max", "/proc/sys/kernel/threads-max"].compactMap { text($0).flatMap { Int64($0) } }
        guard let limit = limits.min(), let fields = text("/proc/loadavg")?.split(separator: " "), fields.count >= 4,
              let slash = fields[3].firstIndex(of: "/"), let current = Int64(fields[3][fields[3].index(after: slash)...]) else { return nil }
        return (limit, current)
    }

    /// 1-minute load average.
    public func loadAverage() -> Double? {
        text("/proc/loadavg")?.split(separator: " ").first.flatMap { Double($0) }
    }

    /// The SoC temperature in °C from the first thermal zone, if the board reports one.
    public func temperature() -> Double? {
        text("/sys/class/thermal/thermal_zone0/temp").flatMap { Double($0) }.map { $0 / 1000 }
    }

    public func machineID() -> String? { text("/etc/machine-id") }
    public func bootID() -> String? { text("/proc/sys/kernel/random/boot_id") }
    public func systemUUID() -> String? { text("/sys/class/dmi/id/product_uuid") }
    /// The board model (`Raspberry Pi 4 Model B Rev 1.4`) from the device tree, when there is one.
    public func boardModel() -> String? { text("/proc/device-tree/model") }

    /// The CPU model from /proc/cpuinfo (`model name`, or `Model`/`Hardware` on ARM boards).
    public func cpuModel() -> String? {
        for key in ["model name", "Model", "Hardware"] {
            for line in (text("/proc/cpuinfo") ?? "").split(separator: "\n") where line.hasPrefix(key) {
                let parts = line.split(separator: ":", maxSplits: 1)
                if parts.count == 2, String(parts[0]).trimming([" ", "\t"]) == key { return String(parts[1]).trimming([" ", "\t"]) }
            }
        }
        return nil
    }

    /// The board's serial number (device tree, or the `Serial` line of /proc/cpuinfo on a Raspberry Pi).
    public func boardSerial() -> String? {
        if let serial = text("/proc/device-tree/serial-number"), !serial.isEmpty { return serial }
        for line in (text("/proc/cpuinfo") ?? "").split(separator: "\n") where line.hasPrefix("Serial") {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2 { return String(parts[1]).trimming([" ", "\t"]) }
        }
        return nil
    }

    /// PRETTY_NAME from /etc/os-release.
    public func osImage() -> String {
        for line in (text("/etc/os-release") ?? "").split(separator: "\n") where line.hasPrefix("PRETTY_NAME=") {
            return String(line.dropFirst("PRETTY_NAME=".count)).trimming(["\""])
        }
        return "Linux"
    }

    public func kernelVersion() -> String {
        var names = utsname()
        guard uname(&names) == 0 else { return "" }
        return withUnsafeBytes(of: &names.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }

    /// This machine's host name (what hostNetwork pods see as theirs).
    public static func hostname() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The primary IPv4 address (the default route's source, as the kubelet picks it), or
    /// without a default route the first non-loopback IPv4 address of an interface that is up.
    public func internalIPv4() -> String? {
        if let primary = PrimaryAddress.ipv4() { return primary }
        var addresses: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&addresses) == 0, let first = addresses else { return nil }
        defer { freeifaddrs(addresses) }
        var cursor: UnsafeMutablePointer<ifaddrs>? = first
        while let entry = cursor {
            defer { cursor = entry.pointee.ifa_next }
            guard let address = entry.pointee.ifa_addr, address.pointee.sa_family == sa_family_t(AF_INET),
                  entry.pointee.ifa_flags & UInt32(IFF_UP) != 0, entry.pointee.ifa_flags & UInt32(IFF_LOOPBACK) == 0 else { continue }
            var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            if getnameinfo(address, socklen_t(MemoryLayout<sockaddr_in>.size), &host, socklen_t(host.count), nil, 0, NI_NUMERICHOST) == 0 {
                return String(cString: host)
            }
        }
        return nil
    }

    /// The Kubernetes architecture name of this build.
    public static var architecture: String {
        #if arch(x86_64)
            return "amd64"
        #elseif arch(arm64)
            return "arm64"
        #elseif arch(arm)
            return "arm"
        #else
            return "unknown"
        #endif
    }
}

extension String {
    /// The string without leading and trailing characters from `characters`.
    func trimming(_ characters: Set<Character>) -> String {
        guard let first = firstIndex(where: { !characters.contains($0) }), let last = lastIndex(where: { !characters.contains($0) }) else { return "" }
        return String(self[first...last])
    }
}
