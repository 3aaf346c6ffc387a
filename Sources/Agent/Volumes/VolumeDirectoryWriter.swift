#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import SystemSupport

/// Publishes configMap, secret, downwardAPI and projected volume contents the way the kubelet's
/// atomic writer does, so a container never sees a half-updated volume: the files live in a
/// timestamped directory `..<time>`, `..data` is a symlink to it, and each visible top-level name
/// is a symlink into `..data`. An update writes a new directory and swaps `..data` with one rename.
public struct VolumeDirectoryWriter: Sendable {
    public let directory: String

    public init(directory: String) { self.directory = directory }

    /// A file of the payload: its bytes and mode (0644 unless the volume says otherwise).
    public struct File: Sendable, Hashable {
        public var bytes: [UInt8]
        public var mode: mode_t
        public init(_ bytes: [UInt8], mode: mode_t = 0o644) {
            self.bytes = bytes
            self.mode = mode
        }
    }

    /// Checks a payload path: relative, no `..` element, not starting with "..".
    static func validate(_ path: String) throws(PodSetupError) {
        let elements = path.split(separator: "/", omittingEmptySubsequences: false)
        guard !path.isEmpty, !path.hasPrefix("/"), !path.hasPrefix(".."), !elements.contains(".."), !elements.contains(""), path.utf8.count <= 4096 else {
            throw PodSetupError("volume file path \"\(path)\" must be relative, without \"..\" or empty elements")
        }
    }

    /// Makes the directory show exactly `payload`; false when it already did (nothing written).
    /// `group`: the pod's fsGroup, which then owns the files (and may read them).
    ///
    /// Everything below `directory` is reached through descriptors, one element at a time, and
    /// no link text is trusted: the published directory is the `..data` link's target only when
    /// that is a plain `..<time>` directory beside it, and old directories are found by listing.
    @discardableResult
    public func write(_ payload: [String: File], group: gid_t? = nil) throws(PodSetupError) -> Bool {
        for path in payload.keys { try Self.validate(path) }
        do {
            try FileTree.makeDirectories(directory, mode: 0o755)
            let root = try DirectoryHandle(path: directory)
            let current = Self.publishedDirectory(in: root)
            let expected = group == nil ? payload : payload.mapValues { File($0.bytes, mode: $0.mode | 0o040) }
            if let current, (try? Self.read(root.openDirectory(current))) == expected { return false }

            let target = "..\(Self.timestamp())"
            let published = try root.makeDirectories(target)
            for (path, file) in payload.sorted(by: { $0.key < $1.key }) {
                let elements = path.split(separator: "/")
                let parent = try published.makeDirectories(elements.dropLast().joined(separator: "/"))
                try parent.createFile(String(elements.last!), bytes: file.bytes, mode: group == nil ? file.mode : file.mode | 0o040, group: group)
            }
            // Swap ..data in one rename, then make the visible names match the new payload.
            try root.replaceWithSymlink("..data", target: target)
            let wanted = Set(payload.keys.map { String($0.split(separator: "/").first!) })
            for name in try root.entries() where !name.hasPrefix("..") && !wanted.contains(name) { try root.remove(name) }
            for name in wanted.sorted() where root.readLink(name) != "..data/" + name {
                try root.replaceWithSymlink(name, target: "..data/" + name)
            }
            for name in try root.entries() where name.hasPrefix("..") && name != "..data" && name != target { try root.remove(name) }
        } catch {
            throw PodSetupError("volume \(directory): \(error)")
        }
        return true
    }

    /// The `..<time>` directory `..data` points at, when the link is exactly that.
    static func publishedDirectory(in root: DirectoryHandle) -> String? {
        guard let target = root.readLink("..data"), DirectoryHandle.isPlainName(target), target.hasPrefix(".."),
              target != "..data", root.kind(target) == S_IFDIR else { return nil }
        return target
    }

    /// The files under a published directory, as a payload (to skip unchanged updates); only
    /// regular files and directories count, read without following anything.
    static func read(_ root: DirectoryHandle, prefix: String = "") throws(FileError) -> [String: File] {
        var files: [String: File] = [:]
        for name in try root.entries() {
            switch root.kind(name) {
            case S_IFDIR: files.merge(try read(root.openDirectory(name), prefix: prefix + name + "/")) { $1 }
            case S_IFREG:
                if let file = try root.readFile(name) { files[prefix + name] = File(file.bytes, mode: file.mode) }
            default: continue
            }
        }
        return files
    }

    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return "\(now.tv_sec).\(String(now.tv_nsec).leftPadded(to: 9))"
    }
}

extension String {
    func leftPadded(to width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}
