#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// One device node on the host as a container gets it: where it is, its kind and numbers.
public struct HostDevice: Codable, Sendable, Hashable {
    /// The node's path on the host.
    public var path: String
    /// `c` (character) or `b` (block).
    public var type: String
    public var major: Int64
    public var minor: Int64
    /// The node's permission bits and owner.
    public var mode: UInt32
    public var uid: UInt32
    public var gid: UInt32

    /// The device's identity to the kernel (`c188:0`), whatever path or class found it.
    public var number: String { "\(type)\(major):\(minor)" }

    /// Where the container finds it: the same path under /dev, else /dev/<file name>.
    public var containerPath: String {
        path.hasPrefix("/dev/") ? path : "/dev/" + (path.split(separator: "/").last.map(String.init) ?? path)
    }

    /// The node at `path` (symbolic links followed: /dev/serial0 is ttyAMA0), or nil when it is
    /// missing or not a device node.
    public static func at(_ path: String) -> HostDevice? {
        var status = stat()
        guard stat(path, &status) == 0 else { return nil }
        let kind = status.st_mode & S_IFMT
        guard kind == S_IFCHR || kind == S_IFBLK else { return nil }
        // glibc's dev_t layout (major(3), minor(3) are macros Swift does not import).
        let device = UInt64(status.st_rdev)
        let major = ((device >> 8) & 0xFFF) | ((device >> 32) & ~UInt64(0xFFF))
        let minor = (device & 0xFF) | ((device >> 12) & ~UInt64(0xFF))
        return HostDevice(path: path, type: kind == S_IFCHR ? "c" : "b", major: Int64(truncatingIfNeeded: major),
                          minor: Int64(truncatingIfNeeded: minor), mode: UInt32(status.st_mode & 0o777),
                          uid: status.st_uid, gid: status.st_gid)
    }

    /// The node's sysfs directory (`/sys/dev/char/M:m`, resolved), where udev's properties come from.
    func sysfsDirectory(sysfs: String) -> String? {
        let link = "\(sysfs)/dev/\(type == "c" ? "char" : "block")/\(major):\(minor)"
        guard let resolved = realpath(link, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// The sysfs subsystem (udev SUBSYSTEM) of the node.
    func subsystem(sysfs: String) -> String? {
        guard let directory = sysfsDirectory(sysfs: sysfs) else { return nil }
        var buffer = [CChar](repeating: 0, count: 4096)
        let length = readlink(directory + "/subsystem", &buffer, buffer.count - 1)
        guard length > 0 else { return nil }
        let target = String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return target.split(separator: "/").last.map(String.init)
    }

    /// A sysfs attribute of the node or its nearest parent that has it (a USB serial adapter's
    /// tty sits below the USB device that carries idVendor and idProduct).
    func parentAttribute(_ name: String, sysfs: String) -> String? {
        guard var directory = sysfsDirectory(sysfs: sysfs) else { return nil }
        while directory.count > sysfs.count + 1 {
            if let value = Self.readSmallFile(directory + "/" + name) { return value }
            guard let slash = directory.lastIndex(of: "/") else { break }
            directory = String(directory[..<slash])
        }
        return nil
    }

    static func readSmallFile(_ path: String) -> String? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var buffer = [UInt8](repeating: 0, count: 256)
        let count = read(descriptor, &buffer, buffer.count)
        guard count > 0 else { return nil }
        return String(decoding: buffer[..<count], as: UTF8.self).trimming([" ", "\n", "\t"])
    }
}
