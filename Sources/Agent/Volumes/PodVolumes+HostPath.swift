#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import CFileSystem
import KubeModel
import SystemSupport

extension PodVolumes {
    /// A hostPath volume, opened once: its type is checked on the opened object, so is
    /// `allowedHostPaths` (on where it really is), and that object is bind-mounted at
    /// `volume-hostpaths/<volume>`, which containers then mount. A path swapped for a symlink
    /// after the check (another pod sharing the directory) cannot change what is mounted.
    /// Mounted once for the pod's life; later refreshes keep it.
    func prepareHostPath(_ source: HostPathVolumeSource, volume: String, allowed: [String]?, label: String) throws(PodSetupError) -> String {
        let target = podDirectory + "/volume-hostpaths/" + volume
        if BindMount.isMountPoint(target) { return target }
        let descriptor = try Self.openHostPath(source, allowed: allowed, label: label)
        defer { close(descriptor) }
        guard Self.isAllowed(descriptor, allowed) else {
            throw PodSetupError("\(label): hostPath \(source.path) leads outside the node's allowedHostPaths")
        }
        try BindMount.bind(descriptor, onto: target, label: label)
        return target
    }

    /// Whether the object open at `descriptor` really is under one of `allowed` (nil: anywhere).
    static func isAllowed(_ descriptor: Int32, _ allowed: [String]?) -> Bool {
        guard let allowed else { return true }
        guard let real = realPath(of: descriptor) else { return false }
        return allowed.contains { PodAdmission.isWithin(real, PodAdmission.resolvedPath($0) ?? $0) }
    }

    /// Where an open descriptor's object is (`/proc/self/fd/N`).
    static func realPath(of descriptor: Int32) -> String? {
        var buffer = [CChar](repeating: 0, count: 4097)
        let length = readlink("/proc/self/fd/\(descriptor)", &buffer, 4096)
        guard length > 0 else { return nil }
        let text = String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return text.hasSuffix(" (deleted)") ? nil : text
    }

    /// Opens the hostPath (IOTKUBE_O_PATH; the host's own symlinks are followed, as the kubelet does)
    /// after the kubelet's type checks; DirectoryOrCreate and FileOrCreate create what is missing
    /// without following a symlink in what they create.
    static func openHostPath(_ source: HostPathVolumeSource, allowed: [String]? = nil, label: String) throws(PodSetupError) -> Int32 {
        let path = source.path
        func fail(_ what: String) -> PodSetupError { PodSetupError("\(label): hostPath type check failed: \(path) \(what)") }
        guard path.hasPrefix("/") else { throw PodSetupError("\(label): hostPath \"\(path)\" is not absolute") }
        let type = source.type ?? .unset
        var descriptor = open(path, IOTKUBE_O_PATH | O_CLOEXEC)
        if descriptor < 0 && errno == ENOENT && (type == .directoryOrCreate || type == .fileOrCreate) {
            try create(path, directory: type == .directoryOrCreate, allowed: allowed, fail: fail)
            descriptor = open(path, IOTKUBE_O_PATH | O_CLOEXEC)
        }
        guard descriptor >= 0 else {
            let code = errno
            throw type == .unset ? PodSetupError("\(label): hostPath \(path): \(String(cString: strerror(code)))")
                : fail(code == ENOENT ? "does not exist" : String(cString: strerror(code)))
        }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { close(descriptor); throw fail(String(cString: strerror(errno))) }
        let kind = info.st_mode & S_IFMT
        let problem: String? = switch type {
        case .unset: nil
        case .directoryOrCreate, .directory: kind == S_IFDIR ? nil : "is not a directory"
        case .fileOrCreate, .file: kind == S_IFREG ? nil : "is not a file"
        case .socket: kind == S_IFSOCK ? nil : "is not a socket file"
        case .charDevice: kind == S_IFCHR ? nil : "is not a character device"
        case .blockDevice: kind == S_IFBLK ? nil : "is not a block device"
        }
        if let problem { close(descriptor); throw fail(problem) }
        return descriptor
    }

    /// Creates the missing end of `path` below its deepest existing directory, which must itself
    /// be under `allowed` (nothing is made before that is known).
    private static func create(_ path: String, directory: Bool, allowed: [String]?, fail: (String) -> PodSetupError) throws(PodSetupError) {
        var existing = path
        var missing: [String] = []
        while !FileTree.exists(existing), let slash = existing.lastIndex(of: "/") {
            missing.insert(String(existing[existing.index(after: slash)...]), at: 0)
            existing = slash == existing.startIndex ? "/" : String(existing[..<slash])
        }
        do {
            let base = try DirectoryHandle(path: existing, followingSymlinks: true)
            // Alive to the end of the scope: its descriptor is used by number below.
            defer { withExtendedLifetime(base) {} }
            guard isAllowed(base.descriptor, allowed) else { throw fail("cannot be created: \(existing) is outside the node's allowedHostPaths") }
            if directory {
                _ = try base.makeDirectories(missing.joined(separator: "/"))
            } else {
                // FileOrCreate makes the file, not its parents (as the kubelet).
                guard missing.count == 1 else { throw fail("cannot be created: its directory does not exist") }
                let file = openat(base.descriptor, missing[0], O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
                guard file >= 0 || errno == EEXIST else { throw FileError(operation: "create", path: path, code: errno) }
                if file >= 0 { close(file) }
            }
        } catch let error as PodSetupError {
            throw error
        } catch {
            throw fail("cannot be created: \(error)")
        }
    }
}
