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
    @discardableResult
    public func write(_ payload: [String: File], group: gid_t? = nil) throws(PodSetupError) -> Bool {
        for path in payload.keys { try Self.validate(path) }
        do { try FileTree.makeDirectories(directory, mode: 0o755) } catch { throw PodSetupError("volume directory \(directory): \(error)") }
        let data = directory + "/..data"
        let current = Self.readLink(data)
        let expected = group == nil ? payload : payload.mapValues { File($0.bytes, mode: $0.mode | 0o040) }
        if let current, (try? Self.read(directory + "/" + current)) == expected { return false }

        let stamp = Self.timestamp()
        let target = "..\(stamp)"
        for (path, file) in payload.sorted(by: { $0.key < $1.key }) {
            let full = directory + "/" + target + "/" + path
            let parent = String(full[..<full.lastIndex(of: "/")!])
            do { try FileTree.makeDirectories(parent, mode: 0o755) } catch { throw PodSetupError("volume \(directory): \(error)") }
            let descriptor = open(full, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, file.mode)
            guard descriptor >= 0 else { throw PodSetupError("volume \(directory): creating \(path): \(String(cString: strerror(errno)))") }
            var offset = 0
            while offset < file.bytes.count {
                let written = file.bytes[offset...].withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
                if written < 0 && errno == EINTR { continue }
                guard written > 0 else { close(descriptor); throw PodSetupError("volume \(directory): writing \(path): \(String(cString: strerror(errno)))") }
                offset += written
            }
            var mode = file.mode
            if let group {
                _ = fchown(descriptor, uid_t.max, group)
                mode |= 0o040
            }
            fchmod(descriptor, mode)
            close(descriptor)
        }
        // Swap ..data in one rename, then make the visible names match the new payload.
        let temporary = directory + "/..data_tmp"
        unlink(temporary)
        guard symlink(target, temporary) == 0, rename(temporary, data) == 0 else {
            throw PodSetupError("volume \(directory): switching ..data: \(String(cString: strerror(errno)))")
        }
        let wanted = Set(payload.keys.map { String($0.split(separator: "/").first!) })
        for name in FileTree.list(directory) where !name.hasPrefix("..") && !wanted.contains(name) {
            unlink(directory + "/" + name)
        }
        for name in wanted.sorted() where Self.readLink(directory + "/" + name) != "..data/" + name {
            unlink(directory + "/" + name)
            guard symlink("..data/" + name, directory + "/" + name) == 0 else {
                throw PodSetupError("volume \(directory): linking \(name): \(String(cString: strerror(errno)))")
            }
        }
        if let current, current != target { try? FileTree.remove(directory + "/" + current) }
        return true
    }

    static func readLink(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let length = readlink(path, &buffer, buffer.count - 1)
        guard length > 0 else { return nil }
        return String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The files under a published directory, as a payload (to skip unchanged updates).
    static func read(_ root: String, prefix: String = "") throws -> [String: File] {
        var files: [String: File] = [:]
        for name in FileTree.list(root) {
            let path = root + "/" + name
            var info = stat()
            guard lstat(path, &info) == 0 else { continue }
            if info.st_mode & S_IFMT == S_IFDIR {
                files.merge(try read(path, prefix: prefix + name + "/")) { $1 }
            } else if let bytes = try AtomicFile.read(path) {
                files[prefix + name] = File(bytes, mode: info.st_mode & 0o7777)
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
