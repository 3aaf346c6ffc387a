#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Reads a file that something untrusted (a container, an image) may have put in place: it is
/// looked at through an `O_PATH` descriptor first and opened for reading only when it is a
/// regular file (opening a FIFO blocks; opening a device such as a watchdog has effects).
public enum RegularFile {
    /// The bytes and permission bits of the object open at `object` (an `O_PATH` descriptor),
    /// at most `limit` bytes (EFBIG beyond, also when it grows while read); nil when it is not
    /// a regular file. `path` is for messages.
    public static func contents(_ object: Int32, path: String, limit: Int) throws(FileError) -> (bytes: [UInt8], mode: mode_t)? {
        var info = stat()
        guard fstat(object, &info) == 0 else { throw FileError(operation: "stat", path: path, code: errno) }
        guard info.st_mode & S_IFMT == S_IFREG else { return nil }
        guard info.st_size <= limit else { throw FileError(operation: "read", path: path, code: EFBIG) }
        let file = open("/proc/self/fd/\(object)", O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)
        guard file >= 0 else { throw FileError(operation: "open", path: path, code: errno) }
        defer { close(file) }
        return (try SystemCall.readAll(file, path: path, limit: limit, chunkSize: 16384), info.st_mode & 0o7777)
    }
}
