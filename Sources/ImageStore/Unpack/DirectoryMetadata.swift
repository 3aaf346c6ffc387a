#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import CFileSystem

/// Directory modes, owners and times a layer sets, applied once the layer is written (its
/// children change a directory's times, and a read-only directory must not block its own
/// contents). Each directory is opened again from the root without following any symlink, so a
/// later entry that replaced it (or a parent) with a symlink cannot redirect the change outside.
struct DirectoryMetadata {
    struct Entry {
        var owner: (uid: UInt32, gid: UInt32)?
        var permissions: UInt32?
        var time: timespec?
    }

    /// By symlink-free path relative to the root ("" is the root); the last entry for a path wins.
    private var entries: [String: Entry] = [:]

    mutating func record(_ path: String, permissions: UInt32, uid: UInt32, gid: UInt32, time: timespec? = nil) {
        var entry = entries[path] ?? Entry()
        entry.permissions = permissions
        entry.owner = (uid, gid)
        if let time { entry.time = time }
        entries[path] = entry
    }

    /// Drops what was recorded for `path` and below it (the directory was removed).
    mutating func forget(under path: String) {
        guard !entries.isEmpty else { return }
        let prefix = path + "/"
        entries = entries.filter { $0.key != path && !$0.key.hasPrefix(prefix) }
    }

    /// Applies everything, deepest directories first; returns the paths that are no longer
    /// directories reached without symlinks (skipped).
    func apply(root: Int32, changeOwners: Bool, target: String) throws(ImageStoreError) -> [String] {
        var skipped: [String] = []
        func depth(_ path: String) -> Int { path.isEmpty ? 0 : 1 + path.utf8.count(where: { $0 == UInt8(ascii: "/") }) }
        for (path, entry) in entries.sorted(by: { (depth($0.key), $0.key) > (depth($1.key), $1.key) }) {
            let name = path.isEmpty ? "." : path
            let resolve = IOTKUBE_RESOLVE_NO_SYMLINKS | IOTKUBE_RESOLVE_BENEATH
            var directory = iotkube_openat2(root, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0, resolve)
            // A directory its owner may not read (unprivileged unpack): changed through an
            // O_PATH descriptor's /proc link, which names that directory and nothing else.
            let unreadable = directory < 0 && errno == EACCES
            if unreadable { directory = iotkube_openat2(root, name, IOTKUBE_O_PATH | O_DIRECTORY | O_NOFOLLOW, 0, resolve) }
            guard directory >= 0 else {
                guard errno == ELOOP || errno == ENOTDIR || errno == ENOENT else { throw FileSystem.error("open", "\(target)/\(path)") }
                skipped.append(path)
                continue
            }
            defer { close(directory) }
            let link = "/proc/self/fd/\(directory)"
            if changeOwners, let owner = entry.owner { _ = unreadable ? chown(link, owner.uid, owner.gid) : fchown(directory, owner.uid, owner.gid) }
            if let permissions = entry.permissions, (unreadable ? chmod(link, mode_t(permissions)) : fchmod(directory, mode_t(permissions))) != 0 {
                throw FileSystem.error("chmod", "\(target)/\(path)")
            }
            if let time = entry.time {
                var times = [time, time]
                _ = unreadable ? utimensat(AT_FDCWD, link, &times, 0) : futimens(directory, &times)
            }
        }
        return skipped
    }
}
