#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import KubeModel
import OCI
import SystemSupport

/// A pod's volumes on the node, under `<pod directory>/volumes/<name>`: emptyDir (a directory,
/// or a size-limited tmpfs for `medium: Memory`), hostPath with its type check, and the
/// published files of configMap, secret (on tmpfs: never on the SD card), downwardAPI and
/// projected volumes. `mounts(for:)` turns a container's volumeMounts into OCI mounts.
public struct PodVolumes: Sendable {
    public let podDirectory: String

    public init(podDirectory: String) { self.podDirectory = podDirectory }

    func path(_ name: String) -> String { podDirectory + "/volumes/" + name }

    /// Sets up every volume of the pod (again: updates configMap and secret contents) and returns
    /// them by name. `memoryLimit` bounds a Memory emptyDir without a sizeLimit;
    /// `allowedHostPaths` (nil: anywhere) is checked on the opened hostPath, not on its name.
    public func prepare(_ pod: Pod, sources: VolumePayload.Sources, memoryLimit: Int64,
                        allowedHostPaths: [String]? = nil) throws(PodSetupError) -> [String: PreparedVolume] {
        var paths: [String: PreparedVolume] = [:]
        let fsGroup = pod.spec?.securityContext?.fsGroup.flatMap { gid_t(exactly: $0) }
        for volume in pod.spec?.volumes ?? [] {
            guard VolumeName.isPlain(volume.name) else { throw PodSetupError("volume \"\(volume.name)\": not a valid volume name") }
            let label = "volume \(volume.name)"
            let directory = path(volume.name)
            if let emptyDir = volume.emptyDir {
                try makeDirectory(directory, mode: 0o777, label: label)
                if emptyDir.medium == .memory {
                    let size = emptyDir.sizeLimit.map(\.byteCount) ?? memoryLimit
                    try mountTmpfs(directory, size: size, mode: 0o777, label: label)
                }
                chmod(directory, 0o777)
                paths[volume.name] = PreparedVolume(path: directory)
            } else if let hostPath = volume.hostPath {
                let path = try prepareHostPath(hostPath, volume: volume.name, allowed: allowedHostPaths, label: label)
                paths[volume.name] = PreparedVolume(path: path)
            } else if volume.configMap != nil || volume.secret != nil || volume.downwardAPI != nil || volume.projected != nil {
                try makeDirectory(directory, mode: 0o755, label: label)
                // Secrets and tokens stay in memory, as the kubelet keeps them.
                if volume.secret != nil || volume.projected != nil { try mountTmpfs(directory, size: 16 << 20, mode: 0o755, label: label) }
                let files = try VolumePayload.files(for: volume, pod: pod, sources: sources)
                try VolumeDirectoryWriter(directory: directory).write(files, group: fsGroup)
                // Always read-only in containers, as the kubelet mounts them (CVE-2017-1002102).
                paths[volume.name] = PreparedVolume(path: directory, apiData: true)
            } else {
                throw PodSetupError("\(label): this agent supports emptyDir, hostPath, configMap, secret, downwardAPI and projected volumes")
            }
        }
        return paths
    }

    /// Unmounts the pod's tmpfs volumes, hostPath and subPath bind mounts and removes their
    /// directories (a mount that stays is refused by the removal, never emptied).
    public func tearDown() throws(PodSetupError) {
        for folder in ["volume-subpaths", "volume-hostpaths", "volumes"] {
            let root = podDirectory + "/" + folder
            BindMount.unmountAll(under: root)
            do { try FileTree.remove(root) } catch { throw PodSetupError("removing \(root): \(error)") }
        }
    }

    func makeDirectory(_ directory: String, mode: mode_t, label: String) throws(PodSetupError) {
        do { try FileTree.makeDirectories(directory, mode: mode) } catch { throw PodSetupError("\(label): \(error)") }
    }

    func mountTmpfs(_ directory: String, size: Int64, mode: mode_t, label: String) throws(PodSetupError) {
        if BindMount.isMountPoint(directory) { return }
        let options = "size=\(max(4096, size)),mode=\(String(mode, radix: 8))"
        guard mount("tmpfs", directory, "tmpfs", UInt(MS_NOSUID | MS_NODEV), options) == 0 else {
            throw PodSetupError("\(label): mounting a tmpfs on \(directory): \(String(cString: strerror(errno)))")
        }
    }
}

/// Names usable as a single path element.
enum VolumeName {
    static func isPlain(_ name: String) -> Bool {
        !name.isEmpty && name != "." && name != ".." && !name.contains("/") && name.utf8.count <= 253
    }
}
