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
    /// volume name → host path. `memoryLimit` bounds a Memory emptyDir without a sizeLimit.
    public func prepare(_ pod: Pod, sources: VolumePayload.Sources, memoryLimit: Int64) throws(PodSetupError) -> [String: String] {
        var paths: [String: String] = [:]
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
                paths[volume.name] = directory
            } else if let hostPath = volume.hostPath {
                try Self.checkHostPath(hostPath, label: label)
                paths[volume.name] = hostPath.path
            } else if volume.configMap != nil || volume.secret != nil || volume.downwardAPI != nil || volume.projected != nil {
                try makeDirectory(directory, mode: 0o755, label: label)
                // Secrets and tokens stay in memory, as the kubelet keeps them.
                if volume.secret != nil || volume.projected != nil { try mountTmpfs(directory, size: 16 << 20, mode: 0o755, label: label) }
                let files = try VolumePayload.files(for: volume, pod: pod, sources: sources)
                try VolumeDirectoryWriter(directory: directory).write(files, group: fsGroup)
                paths[volume.name] = directory
            } else {
                throw PodSetupError("\(label): this agent supports emptyDir, hostPath, configMap, secret, downwardAPI and projected volumes")
            }
        }
        return paths
    }

    /// Unmounts the pod's tmpfs volumes and removes its volume directories.
    public func tearDown() throws(PodSetupError) {
        let root = podDirectory + "/volumes"
        for name in FileTree.list(root) { umount2(root + "/" + name, Int32(MNT_DETACH)) }
        do { try FileTree.remove(root) } catch { throw PodSetupError("removing \(root): \(error)") }
    }

    func makeDirectory(_ directory: String, mode: mode_t, label: String) throws(PodSetupError) {
        do { try FileTree.makeDirectories(directory, mode: mode) } catch { throw PodSetupError("\(label): \(error)") }
    }

    func mountTmpfs(_ directory: String, size: Int64, mode: mode_t, label: String) throws(PodSetupError) {
        if isMountPoint(directory) { return }
        let options = "size=\(max(4096, size)),mode=\(String(mode, radix: 8))"
        guard mount("tmpfs", directory, "tmpfs", UInt(MS_NOSUID | MS_NODEV), options) == 0 else {
            throw PodSetupError("\(label): mounting a tmpfs on \(directory): \(String(cString: strerror(errno)))")
        }
    }

    func isMountPoint(_ directory: String) -> Bool {
        var own = stat(), parent = stat()
        guard stat(directory, &own) == 0, stat(directory + "/..", &parent) == 0 else { return false }
        return own.st_dev != parent.st_dev
    }

    /// The kubelet's hostPath type checks (DirectoryOrCreate and FileOrCreate create).
    static func checkHostPath(_ source: HostPathVolumeSource, label: String) throws(PodSetupError) {
        let path = source.path
        guard path.hasPrefix("/") else { throw PodSetupError("\(label): hostPath \"\(path)\" is not absolute") }
        var info = stat()
        let exists = stat(path, &info) == 0
        let kind = info.st_mode & S_IFMT
        func fail(_ what: String) -> PodSetupError { PodSetupError("\(label): hostPath type check failed: \(path) \(what)") }
        switch source.type ?? .unset {
        case .unset: return
        case .directoryOrCreate:
            if !exists {
                do { try FileTree.makeDirectories(path, mode: 0o755) } catch { throw fail("cannot be created: \(error)") }
            } else if kind != S_IFDIR { throw fail("is not a directory") }
        case .directory: if !exists || kind != S_IFDIR { throw fail("is not a directory") }
        case .fileOrCreate:
            if !exists {
                let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o644)
                guard descriptor >= 0 else { throw fail("cannot be created: \(String(cString: strerror(errno)))") }
                close(descriptor)
            } else if kind != S_IFREG { throw fail("is not a file") }
        case .file: if !exists || kind != S_IFREG { throw fail("is not a file") }
        case .socket: if !exists || kind != S_IFSOCK { throw fail("is not a socket file") }
        case .charDevice: if !exists || kind != S_IFCHR { throw fail("is not a character device") }
        case .blockDevice: if !exists || kind != S_IFBLK { throw fail("is not a block device") }
        }
    }

    /// The container's volumeMounts as bind mounts (subPath inside the volume, read-only,
    /// propagation); `Bidirectional` only for privileged containers, as the API requires.
    public static func mounts(for container: Container, volumes: [String: String]) throws(PodSetupError) -> [RuntimeSpec.Mount] {
        var mounts: [RuntimeSpec.Mount] = []
        for volumeMount in container.volumeMounts ?? [] {
            let label = "container \(container.name): volumeMount \(volumeMount.name)"
            guard let base = volumes[volumeMount.name] else { throw PodSetupError("\(label): the pod has no volume \"\(volumeMount.name)\"") }
            guard volumeMount.mountPath.hasPrefix("/") else { throw PodSetupError("\(label): mountPath \"\(volumeMount.mountPath)\" is not absolute") }
            var source = base
            if let subPath = volumeMount.subPath, !subPath.isEmpty {
                let elements = subPath.split(separator: "/", omittingEmptySubsequences: false)
                guard !subPath.hasPrefix("/"), !elements.contains("..") else { throw PodSetupError("\(label): subPath \"\(subPath)\" must stay inside the volume") }
                source = base + "/" + subPath
                // A symlink in the volume must not lead the bind mount out of it.
                var resolved = [CChar](repeating: 0, count: 4096), resolvedBase = [CChar](repeating: 0, count: 4096)
                if !FileTree.exists(source) { try? FileTree.makeDirectories(source, mode: 0o755) }
                guard realpath(source, &resolved) != nil, realpath(base, &resolvedBase) != nil else {
                    throw PodSetupError("\(label): subPath \(subPath): \(String(cString: strerror(errno)))")
                }
                func text(_ buffer: [CChar]) -> String { String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) }
                let real = text(resolved), realBase = text(resolvedBase)
                guard real == realBase || real.hasPrefix(realBase + "/") else { throw PodSetupError("\(label): subPath \"\(subPath)\" leads outside the volume") }
                source = real
            }
            var options = ["rbind"]
            options.append(volumeMount.readOnly == true ? "ro" : "rw")
            switch volumeMount.mountPropagation ?? .none {
            case .none: options.append("rprivate")
            case .hostToContainer: options.append("rslave")
            case .bidirectional:
                guard container.securityContext?.privileged == true else { throw PodSetupError("\(label): Bidirectional mount propagation needs a privileged container") }
                options.append("rshared")
            }
            mounts.append(RuntimeSpec.Mount(destination: volumeMount.mountPath, type: "bind", source: source, options: options))
        }
        return mounts
    }
}

/// Names usable as a single path element.
enum VolumeName {
    static func isPlain(_ name: String) -> Bool {
        !name.isEmpty && name != "." && name != ".." && !name.contains("/") && name.utf8.count <= 253
    }
}
