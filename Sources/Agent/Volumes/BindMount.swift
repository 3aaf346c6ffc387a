#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import CFileSystem
import SystemSupport

/// Bind mounts of objects the agent has already opened, as the kubelet mounts subPaths
/// (CVE-2017-1002101): what was checked is the descriptor, and the descriptor is what gets
/// mounted (`/proc/self/fd/N`), so nothing a container renames in between can change the source.
enum BindMount {
    /// Bind-mounts the object open at `descriptor` (recursively) onto `target`, made as a
    /// directory or an empty file to match; a mount already there is replaced.
    static func bind(_ descriptor: Int32, onto target: String, label: String) throws(PodSetupError) {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw PodSetupError("\(label): \(String(cString: strerror(errno)))") }
        let directory = info.st_mode & S_IFMT == S_IFDIR
        let slash = target.lastIndex(of: "/")!
        let parentPath = String(target[..<slash]), name = String(target[target.index(after: slash)...])
        do {
            try FileTree.makeDirectories(parentPath, mode: 0o750)
            let parent = try DirectoryHandle(path: parentPath)
            // Alive to the end of the scope: its descriptor is used by number below.
            defer { withExtendedLifetime(parent) {} }
            if isMountPoint(target) { umount2(target, Int32(MNT_DETACH)) }
            if let kind = parent.kind(name), (kind == S_IFDIR) != directory { try parent.remove(name) }
            if directory {
                if mkdirat(parent.descriptor, name, 0o750) != 0 && errno != EEXIST { throw FileError(operation: "mkdir", path: target, code: errno) }
            } else {
                let file = openat(parent.descriptor, name, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
                guard file >= 0 else { throw FileError(operation: "create", path: target, code: errno) }
                close(file)
            }
        } catch {
            throw PodSetupError("\(label): \(error)")
        }
        guard mount("/proc/self/fd/\(descriptor)", target, nil, UInt(MS_BIND | MS_REC), nil) == 0 else {
            throw PodSetupError("\(label): bind-mounting onto \(target): \(String(cString: strerror(errno)))")
        }
    }

    /// Whether `path` (not followed if a symlink) is the root of a mount; true when that cannot
    /// be told (nothing is then mounted again or removed there).
    static func isMountPoint(_ path: String) -> Bool {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return true }
        let object = open(path, IOTKUBE_O_PATH | O_NOFOLLOW | O_CLOEXEC)
        guard object >= 0 else { return false }
        defer { close(object) }
        let parent = open(String(path[..<slash]), IOTKUBE_O_PATH | O_DIRECTORY | O_CLOEXEC)
        guard parent >= 0 else { return false }
        defer { close(parent) }
        var own: UInt64 = 0, theirs: UInt64 = 0
        guard iotkube_mount_id(object, &own) == 0, iotkube_mount_id(parent, &theirs) == 0 else { return true }
        return own != theirs
    }

    /// Detaches every mount at or below `directory` (by its real path), deepest first, each
    /// until nothing is mounted there any more (mounts stacked on one point go one at a time).
    static func unmountAll(under directory: String) {
        guard let real = realpath(directory, nil) else { return }
        let directory = String(cString: real)
        free(real)
        guard let table = FileTree.readText("/proc/self/mountinfo", limit: 64 << 20) else { return }
        let points = table.split(separator: "\n").compactMap { line -> String? in
            let fields = line.split(separator: " ", omittingEmptySubsequences: false)
            guard fields.count > 4 else { return nil }
            let point = unescape(fields[4])
            return point == directory || point.hasPrefix(directory + "/") ? point : nil
        }
        for point in Set(points).sorted(by: { $0.utf8.count > $1.utf8.count }) {
            var detached = 0
            while detached < 64, umount2(point, Int32(MNT_DETACH | UMOUNT_NOFOLLOW)) == 0 { detached += 1 }
        }
    }

    /// mountinfo escapes space, tab, newline and backslash as `\ooo`.
    static func unescape(_ field: Substring) -> String {
        var bytes: [UInt8] = []
        var utf8 = Array(field.utf8)[...]
        while let byte = utf8.popFirst() {
            if byte == UInt8(ascii: "\\"), utf8.count >= 3, let value = UInt8(String(decoding: utf8.prefix(3), as: UTF8.self), radix: 8) {
                bytes.append(value)
                utf8 = utf8.dropFirst(3)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
