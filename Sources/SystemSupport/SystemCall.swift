#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// System calls made again when a signal interrupts them, and the whole-descriptor reads and
/// writes built on that, with errors that carry errno.
public enum SystemCall {
    /// Calls `body` again while it fails with EINTR (a signal arrived during a blocking call);
    /// its result as it is, with errno set as the call left it.
    @inlinable
    public static func retrying<Result: SignedInteger>(_ body: () -> Result) -> Result {
        while true {
            let result = body()
            if result >= 0 || errno != EINTR { return result }
        }
    }

    /// Every byte from `descriptor` to its end; more than `limit` bytes is EFBIG. `path` names
    /// the file in errors.
    public static func readAll(_ descriptor: Int32, path: String, limit: Int = .max, chunkSize: Int = 65536) throws(FileError) -> [UInt8] {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: chunkSize)
        while true {
            let count = retrying { chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) } }
            guard count >= 0 else { throw FileError(operation: "read", path: path, code: errno) }
            if count == 0 { return bytes }
            guard count <= limit - bytes.count else { throw FileError(operation: "read", path: path, code: EFBIG) }
            bytes.append(contentsOf: chunk[..<count])
        }
    }

    /// Writes all of `bytes` (short writes continue where they stopped).
    public static func writeAll(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws(FileError) {
        var offset = 0
        while offset < bytes.count {
            let written = retrying { write(descriptor, bytes.baseAddress! + offset, bytes.count - offset) }
            guard written > 0 else { throw FileError(operation: "write", path: path, code: written < 0 ? errno : EIO) }
            offset += written
        }
    }

    /// ``writeAll(_:_:path:)-(_,UnsafeRawBufferPointer,_)`` for an array.
    public static func writeAll(_ descriptor: Int32, _ bytes: [UInt8], path: String) throws(FileError) {
        try bytes.withUnsafeBytes { raw in Result { () throws(FileError) in try writeAll(descriptor, raw, path: path) } }.get()
    }
}
