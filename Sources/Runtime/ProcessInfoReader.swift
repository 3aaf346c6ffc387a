#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// /proc/<pid>/stat reading.
enum ProcessInfoReader {
    /// Field 22 (starttime): survives nothing but the process itself, unlike the pid.
    static func startTicks(_ pid: Int32) -> UInt64? {
        guard let text = CgroupFiles.read("/proc/\(pid)/stat"), let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // After the comm: state is field 3, so starttime (22) is index 19 here.
        guard fields.count > 19 else { return nil }
        return UInt64(fields[19])
    }

    /// Running or sleeping (not gone, not a zombie).
    static func isAlive(_ pid: Int32) -> Bool {
        guard pid > 0, let text = CgroupFiles.read("/proc/\(pid)/stat"), let close = text.lastIndex(of: ")") else { return false }
        let state = text[text.index(after: close)...].split(separator: " ").first
        return state != "Z" && state != "X"
    }
}
