#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// /proc/<pid>/stat reading.
enum ProcessInfoReader {
    /// Field 22 (starttime): survives nothing but the process itself, unlike the pid.
    static func startTicks(_ pid: Int32) -> UInt64? {
        guard let text = CgroupFiles.read("/proc/\(pid)/stat") else { return nil }
        // After the comm (which may hold spaces and parentheses): state is field 3, so
        // starttime (22) is the 20th field from there. Read in place, a few times a second
        // per container.
        var bytes = text.utf8[...]
        guard let close = bytes.lastIndex(of: UInt8(ascii: ")")) else { return nil }
        bytes = bytes[bytes.index(after: close)...]
        var field = 0
        var value: UInt64 = 0
        var inField = false
        for byte in bytes {
            if byte == UInt8(ascii: " ") {
                if inField, field == 20 { return value }
                inField = false
                continue
            }
            if !inField { inField = true; field += 1; value = 0 }
            guard field == 20 else { continue }
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let (scaled, overflowA) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflowB) = scaled.addingReportingOverflow(UInt64(byte - UInt8(ascii: "0")))
            guard !overflowA, !overflowB else { return nil }
            value = sum
        }
        return inField && field == 20 ? value : nil
    }

    /// Running or sleeping (not gone, not a zombie).
    static func isAlive(_ pid: Int32) -> Bool {
        guard pid > 0, let text = CgroupFiles.read("/proc/\(pid)/stat"), let close = text.utf8.lastIndex(of: UInt8(ascii: ")")) else { return false }
        let state = text.utf8[text.utf8.index(after: close)...].first { $0 != UInt8(ascii: " ") }
        return state != nil && state != UInt8(ascii: "Z") && state != UInt8(ascii: "X")
    }
}
