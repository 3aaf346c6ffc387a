#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Directory-tree operations with POSIX calls (no Foundation), shared by the image store and the
/// runtime. Symlinks are never followed.
public enum FileTree {
    /// Creates `path` and its missing parents with `mode`.
    public static func makeDirectories(_ path: String, mode: mode_t = 0o755) throws(FileError) {
        var current = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            current += "/" + component
            if mkdir(current, mode) != 0 && errno != EEXIST { throw FileError(operation: "mkdir", path: current, code: errno) }
        }
    }

    /// The names in a directory (without . and ..), sorted; empty when it cannot be read.
    public static func list(_ path: String) -> [String] {
        names(in: path) { _, _, _ in true }
    }

    /// The names of the directories in `path` (not symlinks to one), sorted; none when it
    /// cannot be read. Told by the entries' types, so a directory of many files (a cgroup's
    /// controls) costs one read, not a stat per file.
    public static func subdirectories(_ path: String) -> [String] {
        names(in: path) { name, type, directory in
            guard type == UInt8(DT_UNKNOWN) else { return type == UInt8(DT_DIR) }
            // File systems that do not fill in the type: asked per entry, without following.
            var info = stat()
            return fstatat(dirfd(directory), name, &info, AT_SYMLINK_NOFOLLOW) == 0 && info.st_mode & S_IFMT == S_IFDIR
        }
    }

    /// The sorted names in `path` (without . and ..) that `keep` accepts, given each entry's
    /// name, type (`d_type`) and the open directory.
    private static func names(in path: String, keeping keep: (String, UInt8, OpaquePointer) -> Bool) -> [String] {
        guard let directory = opendir(path) else { return [] }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = entryName(entry)
            if name != "." && name != "..", keep(name, entry.pointee.d_type, directory) { names.append(name) }
        }
        return names.sorted()
    }

    /// The name in a directory entry, read in place: the kernel packs entries as tight as their
    /// names, so copying the whole 256-byte `d_name` field of the last entry in readdir's buffer
    /// can read past its end into an unmapped page.
    static func entryName(_ entry: UnsafeMutablePointer<dirent>) -> String {
        let offset = MemoryLayout<dirent>.offset(of: \dirent.d_name)!
        return String(cString: (UnsafeRawPointer(entry) + offset).assumingMemoryBound(to: CChar.self))
    }

    /// Removes a file or a whole tree; a missing path is fine. The tree is read through
    /// descriptors and no symlink is followed, so a container racing the removal (swapping a
    /// directory for a link) cannot redirect it; a mount point inside is refused, not emptied.
    /// Directories without write or search permission (read-only image directories) are opened up.
    public static func remove(_ path: String) throws(FileError) {
        var trimmed = Substring(path)
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        var info = stat()
        guard lstat(String(trimmed), &info) == 0 else { return }
        let slash = trimmed.lastIndex(of: "/")
        let parentPath = slash.map { $0 == trimmed.startIndex ? "/" : String(trimmed[..<$0]) } ?? "."
        let name = slash.map { String(trimmed[trimmed.index(after: $0)...]) } ?? String(trimmed)
        guard DirectoryHandle.isPlainName(name) else { throw FileError(operation: "remove", path: path, code: EINVAL) }
        try DirectoryHandle(path: parentPath, followingSymlinks: true).remove(name)
    }

    /// Whether something (even a dangling symlink) is at `path`.
    public static func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    /// Whether `path` is (or leads through symlinks to) a directory.
    public static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
    }

    /// A small file's text (at most `limit` bytes), or nil when it cannot be read.
    public static func readText(_ path: String, limit: Int = 1 << 20) -> String? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        while bytes.count < limit {
            let count = SystemCall.retrying { chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) } }
            guard count > 0 else { break }
            bytes.append(contentsOf: chunk[..<count])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
