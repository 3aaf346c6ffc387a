#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import CFileSystem

/// Why a file of a container's root file system could not be read.
public enum ImageRootFileError: Error, Equatable, CustomStringConvertible, Sendable {
    /// A FIFO, device, socket or directory: the image's, so never opened for reading.
    case notRegularFile(String)
    /// Larger than the reader accepts.
    case tooLarge(String, limit: Int)
    case unreadable(String, errno: Int32)

    public var description: String {
        switch self {
        case .notRegularFile(let path): "the image's \(path) is not a regular file"
        case .tooLarge(let path, let limit): "the image's \(path) is larger than \(limit) bytes"
        case .unreadable(let path, let code): "the image's \(path) cannot be read: \(String(cString: strerror(code)))"
        }
    }
}

/// Reads small files of an image's root file system the way runc reads its /etc/passwd:
/// the path resolved inside the root (an absolute symlink means the image's own root, `..`
/// stops at it), opened without blocking and accepted only as a regular file of bounded size.
/// The image is untrusted: a FIFO must not hang the reader, a symlink must not reach the host.
public enum ImageRootFile {
    /// The text of `path` (absolute inside the image) under `rootfs`, or nil when it does not exist.
    public static func readText(_ path: String, rootfs: String, limit: Int = 1 << 20) throws(ImageRootFileError) -> String? {
        let root = open(rootfs, IOTKUBE_O_PATH | O_DIRECTORY | O_CLOEXEC)
        guard root >= 0 else { throw .unreadable("/", errno: errno) }
        defer { close(root) }
        let file = iotkube_openat2(root, path, O_RDONLY | O_NONBLOCK | O_NOCTTY, 0, IOTKUBE_RESOLVE_IN_ROOT | IOTKUBE_RESOLVE_NO_MAGICLINKS)
        guard file >= 0 else {
            if errno == ENOENT || errno == ENOTDIR { return nil }
            throw .unreadable(path, errno: errno)
        }
        defer { close(file) }
        var info = stat()
        guard fstat(file, &info) == 0 else { throw .unreadable(path, errno: errno) }
        guard info.st_mode & S_IFMT == S_IFREG else { throw .notRegularFile(path) }
        guard info.st_size <= limit else { throw .tooLarge(path, limit: limit) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(file, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { throw .unreadable(path, errno: errno) }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[..<count])
            // The file may grow after fstat (a running container shares an overlay upper dir).
            guard bytes.count <= limit else { throw .tooLarge(path, limit: limit) }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
