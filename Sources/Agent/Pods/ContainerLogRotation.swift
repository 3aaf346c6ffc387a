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

    /// Rotates `path` when it is larger than the limit; true when it did.
    @discardableResult
    public func rotateIfNeeded(_ path: String, now: Timestamp = .now()) throws -> Bool {
        var info = stat()
        guard stat(path, &info) == 0, Int64(info.st_size) > maxBytes else { return false }
        let rotated = path + "." + Self.stamp(now)
        guard let bytes = try AtomicFile.read(path) else { return false }
        try AtomicFile.write(bytes, to: rotated, mode: 0o640)
        guard truncate(path, 0) == 0 else { throw FileError(operation: "truncate", path: path, code: errno) }
        let slash = path.lastIndex(of: "/")!
        let folder = String(path[..<slash]), name = String(path[path.index(after: slash)...])
        let older = FileTree.list(folder).filter { $0.hasPrefix(name + ".") }.sorted()
        for file in older.dropLast(maxFiles - 1) { unlink(folder + "/" + file) }
        return true
    }

    /// `20261124-001530` (UTC; sorts in time order).
    static func stamp(_ time: Timestamp) -> String {
        let text = time.description   // 2026-11-24T00:15:30Z
        let digits = text.filter { $0.isNumber }
        return String(digits.prefix(8)) + "-" + String(digits.dropFirst(8).prefix(6))
    }
}
