#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import KubeCoding
import Synchronization
import SystemSupport

/// Container records decoded once per version of their file. The pod workers look at every
/// container's record at each sync; a record only changes by being replaced (written beside and
/// renamed over), so the same inode, size and modification time mean the same record, and
/// the JSON is not decoded again.
final class ContainerRecordCache: Sendable {
    /// What identifies one version of a state file.
    struct Version: Equatable {
        var device: UInt64
        var inode: UInt64
        var size: Int64
        var modifiedSeconds: Int
        var modifiedNanoseconds: Int
    }

    /// More containers than a board runs; past this the cache starts over.
    static let capacity = 4096

    private let entries = Mutex<[String: (version: Version, record: ContainerRecord)]>([:])

    init() {}

    /// The record in the file at `path` (nil when there is none). The version is taken from
    /// the open file, so a record replaced meanwhile is never paired with the old one's version.
    func record(at path: String, decode: ([UInt8]) throws -> ContainerRecord) throws -> ContainerRecord? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            if errno == ENOENT { forget(path); return nil }
            throw FileError(operation: "open", path: path, code: errno)
        }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw FileError(operation: "fstat", path: path, code: errno) }
        let version = Version(device: UInt64(status.st_dev), inode: UInt64(status.st_ino), size: Int64(status.st_size),
                              modifiedSeconds: status.st_mtim.tv_sec, modifiedNanoseconds: status.st_mtim.tv_nsec)
        if let cached = entries.withLock({ $0[path] }), cached.version == version { return cached.record }
        let record = try decode(try SystemCall.readAll(descriptor, path: path))
        entries.withLock { entries in
            if entries.count >= Self.capacity { entries = [:] }
            entries[path] = (version, record)
        }
        return record
    }

    /// Drops what is known of `path` (its container was deleted).
    func forget(_ path: String) {
        _ = entries.withLock { $0.removeValue(forKey: path) }
    }
}
