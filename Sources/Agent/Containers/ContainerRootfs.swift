#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import ImageStore
import SystemSupport

/// A container's root file system over its image: an overlay whose lower layers are the image's
/// (shared by every container of that image) and whose upper directory is the container's own,
/// so writes never reach the image store. `<container directory>/rootfs` is the mount point.
public enum ContainerRootfs {
    /// Mounts (or finds mounted, after an agent restart) the root of a container; its path.
    public static func mount(_ filesystem: ImageFilesystem, containerDirectory: String) throws(PodSetupError) -> String {
        let rootfs = containerDirectory + "/rootfs", upper = containerDirectory + "/upper", work = containerDirectory + "/work"
        do {
            for directory in [rootfs, upper, work] { try FileTree.makeDirectories(directory, mode: 0o755) }
        } catch { throw PodSetupError("container root \(containerDirectory): \(error)") }
        if isMountPoint(rootfs) { return rootfs }
        let lowers: [String]
        switch filesystem {
        case .layers(let layers): lowers = layers.reversed()   // overlayfs lists the top layer first
        case .directory(let tree): lowers = [tree]
        }
        guard !lowers.isEmpty else { throw PodSetupError("container root \(containerDirectory): the image has no layers") }
        for lower in lowers where lower.contains(":") || lower.contains(",") {
            throw PodSetupError("container root \(containerDirectory): layer path \(lower) cannot be given to overlayfs")
        }
        let options = "lowerdir=\(lowers.joined(separator: ":")),upperdir=\(upper),workdir=\(work)"
        // The kernel takes one page of mount options.
        guard options.utf8.count < 4000 else {
            throw PodSetupError("container root \(containerDirectory): \(lowers.count) layers exceed what one overlay mount can list")
        }
        guard Glibc.mount("overlay", rootfs, "overlay", 0, options) == 0 else {
            let reason = String(cString: strerror(errno))
            throw PodSetupError("container root \(containerDirectory): mounting the overlay: \(reason) (the kernel needs overlayfs: modprobe overlay)")
        }
        return rootfs
    }

    /// Unmounts the root and removes the container's writable layer.
    public static func remove(containerDirectory: String) throws(PodSetupError) {
        let rootfs = containerDirectory + "/rootfs"
        if isMountPoint(rootfs), umount2(rootfs, Int32(MNT_DETACH)) != 0 {
            throw PodSetupError("container root \(containerDirectory): unmounting: \(String(cString: strerror(errno)))")
        }
        do { try FileTree.remove(containerDirectory) } catch { throw PodSetupError("container root \(containerDirectory): \(error)") }
    }

    static func isMountPoint(_ path: String) -> Bool {
        var own = stat(), parent = stat()
        guard stat(path, &own) == 0, stat(path + "/..", &parent) == 0 else { return false }
        return own.st_dev != parent.st_dev || own.st_ino == parent.st_ino
    }
}
