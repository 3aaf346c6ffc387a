#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import KubeModel
import SystemSupport

/// Size-based rotation of a running container's log (the kubelet's containerLogMaxSize and
/// containerLogMaxFiles). The runtime's monitor holds the file open for appending, so the file
/// is copied to `<run>.log.<UTC time>` and truncated in place (lines written during the copy
/// can be lost, as with copytruncate); the oldest rotated files go beyond the count.
public struct ContainerLogRotation: Sendable {
    public var maxBytes: Int64
    /// Files kept per run, the live one included (at least 2).
    public var maxFiles: Int

    public init(maxBytes: Int64 = 10 << 20, maxFiles: Int = 5) {
        self.maxBytes = max(4096, maxBytes)
        self.maxFiles = max(2, maxFiles)
    }

    /// Rotates `path` when it is larger than the limit; true when it did. The log is opened
    /// once without following a link (a pod that can write the log folder through a hostPath
    /// must not turn the copy or the truncation onto another file) and truncated through that
    /// descriptor.
    @discardableResult
    public func rotateIfNeeded(_ path: String, now: Timestamp = .now()) throws -> Bool {
        let slash = path.lastIndex(of: "/")!
        let folderPath = String(path[..<slash]), name = String(path[path.index(after: slash)...])
        let folder = try DirectoryHandle(path: folderPath, followingSymlinks: true)
        // Alive to the end of the scope: its descriptor is used by number below.
        defer { withExtendedLifetime(folder) {} }
        let log = openat(folder.descriptor, name, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)
        guard log >= 0 else { return false }
        defer { close(log) }
        var info = stat()
        guard fstat(log, &info) == 0, info.st_mode & S_IFMT == S_IFREG, Int64(info.st_size) > maxBytes else { return false }
        let bytes = try SystemCall.readAll(log, path: path)
        let earlier = try folder.entries().filter { $0.hasPrefix(name + ".") }.sorted()
        var stamp = Self.stamp(now)
        // The wall clock went back (NTP on a board without a real-time clock): the new file
        // still sorts after the ones before it, or the count would remove it first.
        if let newest = earlier.last.map({ String($0.dropFirst(name.count + 1)) }), stamp <= newest { stamp = Self.after(newest) }
        try AtomicFile.write(bytes, to: path + "." + stamp, mode: 0o640)
        guard ftruncate(log, 0) == 0 else { throw FileError(operation: "truncate", path: path, code: errno) }
        let older = try folder.entries().filter { $0.hasPrefix(name + ".") }.sorted()
        for file in older.dropLast(maxFiles - 1) { unlinkat(folder.descriptor, file, 0) }
        return true
    }

    /// A stamp that sorts right after `stamp`: `20261124-001530-000001`, then `-000002`.
    static func after(_ stamp: String) -> String {
        let parts = stamp.split(separator: "-")
        if parts.count == 3, parts[2].count == 6, let sequence = Int(parts[2]), sequence < 999_999 {
            let next = String(sequence + 1)
            return parts[0] + "-" + parts[1] + "-" + String(repeating: "0", count: 6 - next.count) + next
        }
        return String(stamp.prefix(40)) + "-000001"
    }

    /// `20261124-001530` (UTC; sorts in time order).
    static func stamp(_ time: Timestamp) -> String {
        let text = time.description   // 2026-11-24T00:15:30Z
        let digits = text.filter { $0.isNumber }
        return String(digits.prefix(8)) + "-" + String(digits.dropFirst(8).prefix(6))
    }
}
