#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import CFileSystem

/// How whiteouts are written.
public enum UnpackMode: String, Sendable, Codable {
    /// Each layer in its own directory, whiteouts as overlayfs expects them (a 0/0 character
    /// device; `trusted.overlay.opaque=y` on opaque directories): the layers become lowerdirs.
    case overlay
    /// All layers applied into one directory, whiteouts deleting what lower layers put there
    /// (hosts without overlayfs or without the privileges for whiteout devices).
    case flattened
}

/// What the unpacker may keep from a layer.
public struct UnpackPolicy: Sendable {
    /// Create device nodes from the layer (otherwise they are dropped and listed).
    public var allowDevices = false
    /// Keep setuid/setgid bits (otherwise they are cleared and listed).
    public var allowSetuid = false
    public init() {}
}

/// What happened while unpacking a layer.
public struct UnpackReport: Sendable {
    public var entries = 0
    public var regularBytes: Int64 = 0
    public var droppedDevices: [String] = []
    public var clearedSetuid: [String] = []
    public var skippedAttributes: [String] = []
    /// Directories whose mode, owner and times were not applied: a later entry of the layer
    /// replaced them (or a parent) with something else, such as a symlink.
    public var skippedDirectories: [String] = []
}

/// Applies one layer tarball to a directory, refusing anything that would write outside it:
/// absolute names and `..` components, writes through symlinks that lead above the root, and
/// hard links to paths outside. Parents are resolved inside the root with chroot semantics
/// (an absolute symlink means the image's own root).
struct LayerUnpacker {
    let target: String
    let mode: UnpackMode
    let policy: UnpackPolicy
    let isRoot = geteuid() == 0
    /// Overlay mode: the layers below this one, top first. A directory this layer implies
    /// without an entry of its own takes their mode and owner, as it would on a mounted overlay.
    var lowerDirectories: [String] = []
    private var rootDescriptor: Int32 = -1
    private var createdPaths: Set<String> = []
    private var directoryMetadata = DirectoryMetadata()
    var report = UnpackReport()

    init(target: String, mode: UnpackMode, policy: UnpackPolicy) {
        self.target = target
        self.mode = mode
        self.policy = policy
    }

    private func invalid(_ path: String, _ why: String) -> ImageStoreError {
        .init(.invalidContent, "layer entry \"\(path)\": \(why)")
    }

    private func failed(_ call: String, _ path: String) -> ImageStoreError {
        FileSystem.error(call, "\(target)/\(path)")
    }

    /// Unpacks the whole archive; the caller drains the stream afterwards for the diffID.
    mutating func unpack(_ tar: inout TarReader) throws(ImageStoreError) {
        rootDescriptor = open(target, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard rootDescriptor >= 0 else { throw FileSystem.error("open", target) }
        defer { close(rootDescriptor) }
        while let entry = try tar.next() {
            report.entries += 1
            try apply(entry, &tar)
        }
        report.skippedDirectories += try directoryMetadata.apply(root: rootDescriptor, changeOwners: isRoot, target: target)
    }

    /// `./a//b/` → ["a", "b"]; absolute names and `..` are refused.
    func components(_ name: String, what: String, entry: String? = nil) throws(ImageStoreError) -> [String] {
        let subject = entry == nil ? what : "\(what) \(name)"
        guard !name.hasPrefix("/") else { throw invalid(entry ?? name, "\(subject) is an absolute path") }
        guard !name.utf8.contains(0) else { throw invalid(entry ?? name, "\(subject) contains a NUL byte") }
        var result: [String] = []
        for part in name.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            guard part != ".." else { throw invalid(entry ?? name, "\(subject) contains '..' (would escape the layer)") }
            result.append(String(part))
        }
        return result
    }

    /// Resolves the parent directories of `components` inside the root, following symlinks
    /// with the root as `/` and creating missing directories; returns the symlink-free relative
    /// path of the parent.
    private mutating func resolveParent(_ components: [String], entry: String) throws(ImageStoreError) -> String {
        var resolved: [String] = []
        var pending = Array(components.dropLast().reversed())
        var symlinks = 0
        while let component = pending.popLast() {
            if component == "." || component.isEmpty { continue }
            if component == ".." {
                guard !resolved.isEmpty else { throw invalid(entry, "a symlink in its path leads above the image root") }
                resolved.removeLast()
                continue
            }
            let candidate = (resolved + [component]).joined(separator: "/")
            var info = stat()
            if fstatat(rootDescriptor, candidate, &info, AT_SYMLINK_NOFOLLOW) != 0 {
                guard errno == ENOENT else { throw failed("stat", candidate) }
                guard mkdirat(rootDescriptor, candidate, 0o755) == 0 else { throw failed("mkdir", candidate) }
                createdPaths.insert(candidate)
                if let below = lowerDirectory(candidate) {
                    directoryMetadata.record(candidate, permissions: UInt32(below.st_mode & 0o7777), uid: below.st_uid, gid: below.st_gid)
                }
                resolved.append(component)
                continue
            }
            switch info.st_mode & S_IFMT {
            case S_IFDIR:
                resolved.append(component)
            case S_IFLNK:
                symlinks += 1
                guard symlinks <= 40 else { throw invalid(entry, "too many levels of symlinks in its path") }
                var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
                let length = readlinkat(rootDescriptor, candidate, &buffer, buffer.count - 1)
                guard length >= 0 else { throw failed("readlink", candidate) }
                let linkTarget = String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
                if linkTarget.hasPrefix("/") { resolved = [] }
                pending.append(contentsOf: linkTarget.split(separator: "/").map(String.init).reversed())
            default:
                throw invalid(entry, "its parent \(candidate) is not a directory")
            }
        }
        return resolved.joined(separator: "/")
    }

    /// Overlay mode: the directory the topmost lower layer holding `path` has there, found as a
    /// mounted overlay would (a symlink or file in any component of that layer ends the search).
    private func lowerDirectory(_ path: String) -> stat? {
        for lower in lowerDirectories {
            let layer = open(lower, IOTKUBE_O_PATH | O_DIRECTORY | O_CLOEXEC)
            guard layer >= 0 else { continue }
            defer { close(layer) }
            let found = iotkube_openat2(layer, path, IOTKUBE_O_PATH | O_NOFOLLOW, 0, IOTKUBE_RESOLVE_NO_SYMLINKS | IOTKUBE_RESOLVE_BENEATH)
            if found < 0 {
                if errno == ENOENT { continue }
                return nil
            }
            defer { close(found) }
            var info = stat()
            guard fstat(found, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else { return nil }
            return info
        }
        return nil
    }

    private func join(_ parent: String, _ name: String) -> String { parent.isEmpty ? name : parent + "/" + name }

    /// Removes whatever is at `path` (not following symlinks) and forgets the metadata recorded
    /// for the directories it held.
    private mutating func removeExisting(_ path: String) throws(ImageStoreError) {
        if existingKind(path) == S_IFDIR { directoryMetadata.forget(under: path) }
        try FileSystem.removeTree("\(target)/\(path)")
    }

    private func existingKind(_ path: String) -> mode_t? {
        var info = stat()
        guard fstatat(rootDescriptor, path, &info, AT_SYMLINK_NOFOLLOW) == 0 else { return nil }
        return info.st_mode & S_IFMT
    }

    private mutating func apply(_ entry: TarEntry, _ tar: inout TarReader) throws(ImageStoreError) {
        let parts = try components(entry.path, what: "the name")
        guard let name = parts.last else {
            // The archive's root ("./"): its mode and owner apply to the target directory.
            if entry.kind == .directory {
                directoryMetadata.record("", permissions: entry.mode, uid: entry.uid, gid: entry.gid,
                                         time: timespec(tv_sec: Int(entry.modificationTime), tv_nsec: entry.modificationNanoseconds))
            }
            else { throw invalid(entry.path, "the root must be a directory") }
            return
        }
        let parent = try resolveParent(parts, entry: entry.path)
        let path = join(parent, name)

        // Whiteouts.
        if name.hasPrefix(".wh.") {
            try applyWhiteout(name: name, parent: parent, entry: entry)
            if entry.kind == .regular { try tar.readData(entry) { _ throws(ImageStoreError) in } }
            return
        }

        let existing = existingKind(path)
        if entry.kind == .directory, existing == S_IFDIR {
            // Keep the directory and its contents; only its metadata changes.
        } else if existing != nil {
            try removeExisting(path)
        }
        createdPaths.insert(path)

        var permissions = entry.mode
        if !policy.allowSetuid, permissions & (UInt32(S_ISUID) | UInt32(S_ISGID)) != 0, entry.kind == .regular {
            permissions &= ~(UInt32(S_ISUID) | UInt32(S_ISGID))
            report.clearedSetuid.append(path)
        }
        switch entry.kind {
        case .directory:
            if existing != S_IFDIR {
                guard mkdirat(rootDescriptor, path, 0o700) == 0 else { throw failed("mkdir", path) }
            }
            directoryMetadata.record(path, permissions: permissions, uid: entry.uid, gid: entry.gid,
                                     time: timespec(tv_sec: Int(entry.modificationTime), tv_nsec: entry.modificationNanoseconds))
        case .regular:
            let file = openat(rootDescriptor, path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            guard file >= 0 else { throw failed("create", path) }
            defer { close(file) }
            let fullPath = "\(target)/\(path)"
            try tar.readData(entry) { raw throws(ImageStoreError) in try FileSystem.writeAll(file, raw, path: fullPath) }
            report.regularBytes += entry.size
            if isRoot, fchown(file, entry.uid, entry.gid) != 0 { throw failed("chown", path) }
            guard fchmod(file, mode_t(permissions)) == 0 else { throw failed("chmod", path) }
            var times = [timespec(tv_sec: Int(entry.modificationTime), tv_nsec: entry.modificationNanoseconds)]
            times.append(times[0])
            futimens(file, &times)
        case .symbolicLink:
            guard !entry.linkTarget.isEmpty, !entry.linkTarget.utf8.contains(0) else { throw invalid(entry.path, "empty symlink target") }
            guard symlinkat(entry.linkTarget, rootDescriptor, path) == 0 else { throw failed("symlink", path) }
            if isRoot { _ = fchownat(rootDescriptor, path, entry.uid, entry.gid, AT_SYMLINK_NOFOLLOW) }
        case .hardLink:
            let targetParts = try components(entry.linkTarget, what: "the hard link target", entry: entry.path)
            guard let targetName = targetParts.last else { throw invalid(entry.path, "hard link to the root directory") }
            let targetParent = try resolveParent(targetParts, entry: entry.path)
            let targetPath = join(targetParent, targetName)
            guard let kind = existingKind(targetPath) else {
                throw invalid(entry.path, "hard link target \(entry.linkTarget) does not exist in this layer")
            }
            guard kind != S_IFDIR else { throw invalid(entry.path, "hard link to a directory") }
            guard linkat(rootDescriptor, targetPath, rootDescriptor, path, 0) == 0 else { throw failed("link", path) }
            return
        case .characterDevice, .blockDevice:
            guard policy.allowDevices, isRoot else {
                report.droppedDevices.append(path)
                createdPaths.remove(path)
                return
            }
            let type = entry.kind == .characterDevice ? S_IFCHR : S_IFBLK
            guard mknodat(rootDescriptor, path, type | mode_t(permissions), iotkube_makedev(entry.deviceMajor, entry.deviceMinor)) == 0 else {
                throw failed("mknod", path)
            }
            if isRoot { _ = fchownat(rootDescriptor, path, entry.uid, entry.gid, AT_SYMLINK_NOFOLLOW) }
        case .fifo:
            guard mkfifoat(rootDescriptor, path, mode_t(permissions)) == 0 else { throw failed("mkfifo", path) }
            if isRoot { _ = fchownat(rootDescriptor, path, entry.uid, entry.gid, AT_SYMLINK_NOFOLLOW) }
        }
        if entry.kind != .regular && entry.kind != .directory {
            var times = [timespec(tv_sec: Int(entry.modificationTime), tv_nsec: entry.modificationNanoseconds)]
            times.append(times[0])
            _ = utimensat(rootDescriptor, path, &times, AT_SYMLINK_NOFOLLOW)
        }
        try applyAttributes(entry, path: path)
    }

    private mutating func applyAttributes(_ entry: TarEntry, path: String) throws(ImageStoreError) {
        for (name, value) in entry.extendedAttributes {
            // overlayfs reads trusted.overlay.* itself: a layer must not forge redirects or whiteouts.
            if name.hasPrefix("trusted.overlay.") || !(name.hasPrefix("user.") || name.hasPrefix("security.") || name.hasPrefix("trusted.")) {
                report.skippedAttributes.append("\(path): \(name)")
                continue
            }
            let result = value.withUnsafeBytes { iotkube_lsetxattr("\(target)/\(path)", name, $0.baseAddress, $0.count) }
            if result != 0 {
                // Some file systems (tmpfs for user.*) or unprivileged runs cannot store it.
                report.skippedAttributes.append("\(path): \(name) (\(String(cString: strerror(errno))))")
            }
        }
    }

    private mutating func applyWhiteout(name: String, parent: String, entry: TarEntry) throws(ImageStoreError) {
        if name == ".wh..wh..opq" {
            switch mode {
            case .overlay:
                let directory = "\(target)/\(parent)"
                guard iotkube_lsetxattr(directory, "trusted.overlay.opaque", "y", 1) == 0 else {
                    throw FileSystem.error("setxattr trusted.overlay.opaque", directory)
                }
            case .flattened:
                // Hide what lower layers put in the directory; keep this layer's own entries.
                let directory = parent.isEmpty ? target : "\(target)/\(parent)"
                for child in FileSystem.listDirectory(directory) where !createdPaths.contains(join(parent, child)) {
                    try removeExisting(join(parent, child))
                }
            }
            return
        }
        let hidden = String(name.dropFirst(4))
        guard !hidden.isEmpty, hidden != ".", hidden != ".." else { throw invalid(entry.path, "whiteout of nothing") }
        let path = join(parent, hidden)
        switch mode {
        case .overlay:
            if existingKind(path) != nil { try removeExisting(path) }
            guard mknodat(rootDescriptor, path, S_IFCHR, iotkube_makedev(0, 0)) == 0 else {
                throw FileSystem.error("mknod (whiteout; needs CAP_MKNOD)", "\(target)/\(path)")
            }
        case .flattened:
            // A whiteout hides lower layers only; an entry of this same layer stays.
            if !createdPaths.contains(path) { try removeExisting(path) }
        }
    }
}
