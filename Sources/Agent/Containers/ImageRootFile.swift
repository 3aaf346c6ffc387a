#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import CFileSystem
import SystemSupport

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
/// stops at it), looked at before it is opened, and read only as a regular file of bounded size.
/// The image is untrusted: a FIFO must not hang the reader, a symlink must not reach the host.
public enum ImageRootFile {
    /// The text of `path` (absolute inside the image) under `rootfs`, or nil when it does not exist.
    public static func readText(_ path: String, rootfs: String, limit: Int = 1 << 20) throws(ImageRootFileError) -> String? {
        let root = open(rootfs, IOTKUBE_O_PATH | O_DIRECTORY | O_CLOEXEC)
        guard root >= 0 else { throw .unreadable("/", errno: errno) }
        defer { close(root) }
        // Looked at through O_PATH before it is opened: an image's device node (a watchdog)
        // or FIFO at that path must never be opened for reading.
        let object = iotkube_openat2(root, path, IOTKUBE_O_PATH, 0, IOTKUBE_RESOLVE_IN_ROOT | IOTKUBE_RESOLVE_NO_MAGICLINKS)
        guard object >= 0 else {
            if errno == ENOENT || errno == ENOTDIR { return nil }
            throw .unreadable(path, errno: errno)
        }
        defer { close(object) }
        let read: (bytes: [UInt8], mode: mode_t)?
        do { read = try RegularFile.contents(object, path: path, limit: limit) } catch {
            throw error.code == EFBIG ? .tooLarge(path, limit: limit) : .unreadable(path, errno: error.code)
        }
        guard let bytes = read?.bytes else { throw .notRegularFile(path) }
        return String(decoding: bytes, as: UTF8.self)
    }
}
