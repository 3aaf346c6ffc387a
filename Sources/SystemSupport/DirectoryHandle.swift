#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import CFileSystem

/// An open directory that every operation works relative to, one path element at a time, never
/// following a symlink: for trees a container or an image can write to, where a path resolved
/// twice may lead somewhere else the second time (CVE-2017-1002101 and its kin).
public final class DirectoryHandle {
    /// The directory's file descriptor (closed with the handle). A caller that passes it to a
    /// system call keeps the handle alive until the call returns (`withExtendedLifetime`).
    public let descriptor: Int32
    /// The path it was opened by, for messages only.
    public let path: String

    /// Opens `path` as a directory; its last element must not be a symlink unless
    /// `followingSymlinks` (for the agent's own paths, which an administrator may link elsewhere).
    public convenience init(path: String, followingSymlinks: Bool = false) throws(FileError) {
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | (followingSymlinks ? 0 : O_NOFOLLOW))
        guard descriptor >= 0 else { throw FileError(operation: "open", path: path, code: errno) }
        self.init(descriptor: descriptor, path: path)
    }

    /// Takes ownership of an open directory descriptor.
    public init(descriptor: Int32, path: String) {
        self.descriptor = descriptor
        self.path = path
    }

    deinit { close(descriptor) }

    func child(_ name: String) -> String { path + "/" + name }

    /// Whether `name` is one path element (not empty, `.` or `..`, no slash).
    public static func isPlainName(_ name: String) -> Bool {
        !name.isEmpty && name != "." && name != ".." && !name.contains("/")
    }

    func checkName(_ name: String) throws(FileError) {
        guard Self.isPlainName(name) else { throw FileError(operation: "resolve", path: child(name), code: EINVAL) }
    }

    /// The subdirectory `name` (a single element; a symlink there is refused with ELOOP/ENOTDIR).
    public func openDirectory(_ name: String) throws(FileError) -> DirectoryHandle {
        try checkName(name)
        let child = openat(descriptor, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard child >= 0 else { throw FileError(operation: "open", path: self.child(name), code: errno) }
        return DirectoryHandle(descriptor: child, path: self.child(name))
    }

    /// Opens or creates each element of a relative path below this directory, none a symlink.
    public func makeDirectories(_ relative: String, mode: mode_t = 0o755) throws(FileError) -> DirectoryHandle {
        let copy = openat(descriptor, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard copy >= 0 else { throw FileError(operation: "open", path: path, code: errno) }
        var current = DirectoryHandle(descriptor: copy, path: path)
        for element in relative.split(separator: "/") where element != "." {
            let name = String(element)
            try current.checkName(name)
            if mkdirat(current.descriptor, name, mode) != 0 && errno != EEXIST {
                throw FileError(operation: "mkdir", path: current.child(name), code: errno)
            }
            current = try current.openDirectory(name)
        }
        return current
    }

    /// The file type bits (`S_IFMT`) of `name` without following a symlink; nil when absent.
    public func kind(_ name: String) -> mode_t? {
        var info = stat()
        guard fstatat(descriptor, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { return nil }
        return info.st_mode & S_IFMT
    }

    /// The names in the directory (without . and ..), sorted.
    public func entries() throws(FileError) -> [String] {
        let copy = openat(descriptor, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard copy >= 0, let stream = fdopendir(copy) else {
            let code = errno
            throw FileError(operation: "opendir", path: path, code: code)
        }
        defer { closedir(stream) }
        var names: [String] = []
        while let entry = readdir(stream) {
            let name = FileTree.entryName(entry)
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// The text of the symlink `name`; nil when it is not a symlink.
    public func readLink(_ name: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let length = readlinkat(descriptor, name, &buffer, buffer.count - 1)
        guard length > 0 else { return nil }
        return String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// A regular file's bytes and permission bits; nil when `name` is anything else (a symlink,
    /// a FIFO or a device is never opened for reading). Reads at most `limit` bytes.
    public func readFile(_ name: String, limit: Int = 64 << 20) throws(FileError) -> (bytes: [UInt8], mode: mode_t)? {
        try checkName(name)
        // Looked at before it is opened for reading: opening a device or FIFO has effects.
        let object = openat(descriptor, name, IOTKUBE_O_PATH | O_NOFOLLOW | O_CLOEXEC)
        guard object >= 0 else {
            if errno == ENOENT { return nil }
            throw FileError(operation: "open", path: child(name), code: errno)
        }
        defer { close(object) }
        return try RegularFile.contents(object, path: child(name), limit: limit)
    }

    /// Creates `name` (which must not exist), writes `bytes` and sets its mode and group.
    public func createFile(_ name: String, bytes: [UInt8], mode: mode_t, group: gid_t? = nil) throws(FileError) {
        try checkName(name)
        let file = openat(descriptor, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        guard file >= 0 else { throw FileError(operation: "create", path: child(name), code: errno) }
        defer { close(file) }
        let path = child(name)
        try SystemCall.writeAll(file, bytes, path: path)
        if let group, fchown(file, uid_t.max, group) != 0 { throw FileError(operation: "chown", path: child(name), code: errno) }
        guard fchmod(file, mode) == 0 else { throw FileError(operation: "chmod", path: child(name), code: errno) }
    }

    /// Makes `name` a symlink to `target`, replacing what is there in one rename.
    public func replaceWithSymlink(_ name: String, target: String) throws(FileError) {
        try checkName(name)
        let temporary = "..tmp-" + name
        unlinkat(descriptor, temporary, 0)
        guard symlinkat(target, descriptor, temporary) == 0 else { throw FileError(operation: "symlink", path: child(temporary), code: errno) }
        guard renameat(descriptor, temporary, descriptor, name) == 0 else { throw FileError(operation: "rename", path: child(name), code: errno) }
    }

    /// Removes `name`: a file, a symlink (never what it points to), or a directory tree read
    /// through descriptors, without recursion (a container can nest directories deeper than any
    /// stack) and at most `maximumDepth` levels deep. A directory on another mount, or whose
    /// mount cannot be told, is refused (EXDEV), never emptied: an unmount that failed must not
    /// turn into deleting what the mount shows. Missing is fine.
    public func remove(_ name: String) throws(FileError) {
        try checkName(name)
        guard let kind = kind(name) else { return }
        guard kind == S_IFDIR else {
            guard unlinkat(descriptor, name, 0) == 0 || errno == ENOENT else { throw FileError(operation: "unlink", path: child(name), code: errno) }
            return
        }
        struct Level {
            let parent: DirectoryHandle
            let name: String
            let directory: DirectoryHandle
            var remaining: [String]
        }
        func level(_ parent: DirectoryHandle, _ name: String) throws(FileError) -> Level? {
            guard let directory = try parent.openForRemoval(name) else { return nil }
            return Level(parent: parent, name: name, directory: directory, remaining: try directory.entries().reversed())
        }
        guard let first = try level(self, name) else { return }
        var stack = [first]
        while !stack.isEmpty {
            let top = stack.count - 1
            guard let entry = stack[top].remaining.popLast() else {
                let done = stack.removeLast()
                guard unlinkat(done.parent.descriptor, done.name, AT_REMOVEDIR) == 0 || errno == ENOENT else {
                    throw FileError(operation: "rmdir", path: done.parent.child(done.name), code: errno)
                }
                continue
            }
            let directory = stack[top].directory
            if directory.kind(entry) == S_IFDIR {
                guard stack.count < Self.maximumDepth else { throw FileError(operation: "remove (deeper than \(Self.maximumDepth) levels)", path: directory.path, code: ELOOP) }
                if let next = try level(directory, entry) { stack.append(next) }
            } else if unlinkat(directory.descriptor, entry, 0) != 0 && errno != ENOENT {
                // A directory that appeared in the meantime is taken on the next pass.
                if errno == EISDIR, let next = try level(directory, entry) { stack.append(next); continue }
                throw FileError(operation: "unlink", path: directory.child(entry), code: errno)
            }
        }
    }

    /// How deep a tree `remove` takes apart.
    public static let maximumDepth = 4096

    /// The subdirectory `name`, opened for removal on this directory's mount and made
    /// writable and searchable; nil when it is gone.
    private func openForRemoval(_ name: String) throws(FileError) -> DirectoryHandle? {
        let directory: DirectoryHandle
        do { directory = try openDirectory(name) } catch {
            if error.code == ENOENT { return nil }
            // No search permission (read-only image directories): open it up through an O_PATH
            // descriptor of the directory itself (never a link put there since), then again.
            guard error.code == EACCES else { throw error }
            let object = openat(descriptor, name, IOTKUBE_O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard object >= 0 else { throw FileError(operation: "open", path: child(name), code: errno) }
            defer { close(object) }
            guard chmod("/proc/self/fd/\(object)", 0o700) == 0 else { throw FileError(operation: "chmod", path: child(name), code: errno) }
            directory = try openDirectory(name)
        }
        try directory.checkSameMount(as: self)
        fchmod(directory.descriptor, 0o700)
        return directory
    }

    /// Throws EXDEV when this directory lies on another mount than `parent`, or when the mount
    /// cannot be told (a bind mount of the same file system has the same `st_dev`).
    func checkSameMount(as parent: DirectoryHandle) throws(FileError) {
        var own: UInt64 = 0, theirs: UInt64 = 0
        guard iotkube_mount_id(descriptor, &own) == 0, iotkube_mount_id(parent.descriptor, &theirs) == 0, own == theirs else {
            throw FileError(operation: "remove (a mount point)", path: path, code: EXDEV)
        }
    }
}
