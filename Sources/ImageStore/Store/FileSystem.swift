#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import SystemSupport

/// Small POSIX helpers for the store, each failure an ImageStoreError naming the call and path.
enum FileSystem {
    static func error(_ call: String, _ path: String, _ code: Int32 = errno) -> ImageStoreError {
        let hint = code == ENOSPC ? " (disk full)" : code == EDQUOT ? " (quota exceeded)" : ""
        return .init(.storage, "\(call) \(path): \(String(cString: strerror(code)))\(hint)")
    }

    static func makeDirectories(_ path: String, mode: mode_t = 0o700) throws(ImageStoreError) {
        do { try FileTree.makeDirectories(path, mode: mode) } catch { throw FileSystem.error(error.operation, error.path, error.code) }
    }

    static func exists(_ path: String) -> Bool { FileTree.exists(path) }

    static func fileSize(_ path: String) -> Int64? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return Int64(info.st_size)
    }

    /// Writes all of `raw` to `descriptor`.
    static func writeAll(_ descriptor: Int32, _ raw: UnsafeRawBufferPointer, path: String) throws(ImageStoreError) {
        do { try SystemCall.writeAll(descriptor, raw, path: path) } catch { throw Self.error(error.operation, error.path, error.code) }
    }

    static func fsyncDirectory(_ path: String) {
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if descriptor >= 0 {
            fsync(descriptor)
            close(descriptor)
        }
    }

    /// Removes a file or a whole tree without following symlinks; missing is fine.
    static func removeTree(_ path: String) throws(ImageStoreError) {
        do { try FileTree.remove(path) } catch { throw FileSystem.error(error.operation, error.path, error.code) }
    }

    static func listDirectory(_ path: String) -> [String] { FileTree.list(path) }

    /// Bytes used by a tree (allocated blocks), not following symlinks.
    static func diskUsage(_ path: String) -> Int64 {
        var info = stat()
        guard lstat(path, &info) == 0 else { return 0 }
        var total = Int64(info.st_blocks) * 512
        if info.st_mode & S_IFMT == S_IFDIR {
            for name in listDirectory(path) { total += diskUsage(path + "/" + name) }
        }
        return total
    }

    /// (total, available) bytes of the file system holding `path`.
    static func capacity(_ path: String) -> (total: Int64, available: Int64)? {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return nil }
        return (Int64(info.f_blocks) * Int64(info.f_frsize), Int64(info.f_bavail) * Int64(info.f_frsize))
    }

    /// Holds an exclusive flock on `path` while `body` runs (between processes sharing the store).
    static func withLock<T>(_ path: String, _ body: () throws(ImageStoreError) -> T) throws(ImageStoreError) -> T {
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw error("open", path) }
        defer { close(descriptor) }
        guard SystemCall.retrying({ flock(descriptor, LOCK_EX) }) == 0 else { throw error("flock", path) }
        return try body()
    }
}

/// `withUnsafeBytes` for typed-throwing bodies (the standard library's rethrows as `any Error`).
func withBytes<T>(_ bytes: [UInt8], _ body: (UnsafeRawBufferPointer) throws(ImageStoreError) -> T) throws(ImageStoreError) -> T {
    let result: Result<T, ImageStoreError> = bytes.withUnsafeBytes { raw in
        do throws(ImageStoreError) { return .success(try body(raw)) } catch { return .failure(error) }
    }
    return try result.get()
}

/// `withUnsafeMutableBytes` for typed-throwing bodies.
func withMutableBytes<T>(_ bytes: inout [UInt8], _ body: (UnsafeMutableRawBufferPointer) throws(ImageStoreError) -> T) throws(ImageStoreError) -> T {
    let result: Result<T, ImageStoreError> = bytes.withUnsafeMutableBytes { raw in
        do throws(ImageStoreError) { return .success(try body(raw)) } catch { return .failure(error) }
    }
    return try result.get()
}
