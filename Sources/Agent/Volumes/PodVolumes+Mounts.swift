#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import CFileSystem
import KubeModel
import OCI
import SystemSupport

extension PodVolumes {
    /// The container's volumeMounts as bind mounts (subPath inside the volume, read-only,
    /// propagation); `Bidirectional` only for privileged containers, as the API requires.
    /// configMap, secret, downwardAPI and projected volumes are always read-only.
    public func mounts(for container: Container, volumes: [String: PreparedVolume]) throws(PodSetupError) -> [RuntimeSpec.Mount] {
        var mounts: [RuntimeSpec.Mount] = []
        for (index, volumeMount) in (container.volumeMounts ?? []).enumerated() {
            let label = "container \(container.name): volumeMount \(volumeMount.name)"
            guard let volume = volumes[volumeMount.name] else { throw PodSetupError("\(label): the pod has no volume \"\(volumeMount.name)\"") }
            guard volumeMount.mountPath.hasPrefix("/") else { throw PodSetupError("\(label): mountPath \"\(volumeMount.mountPath)\" is not absolute") }
            var source = volume.path
            if let subPath = volumeMount.subPath, !subPath.isEmpty {
                let target = podDirectory + "/volume-subpaths/\(volumeMount.name)/\(container.name)/\(index)"
                source = try Self.bindSubPath(subPath, of: volume.path, onto: target, label: label)
            }
            var options = ["rbind"]
            options.append(volumeMount.readOnly == true || volume.apiData ? "ro" : "rw")
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

    /// Opens `subPath` once below the volume (symlinks may not lead out of it: RESOLVE_BENEATH;
    /// missing directories are made without following any symlink, as the kubelet's
    /// doSafeMakeDir) and bind-mounts the opened object at `target`, which the container mounts.
    static func bindSubPath(_ subPath: String, of base: String, onto target: String, label: String) throws(PodSetupError) -> String {
        let elements = subPath.split(separator: "/", omittingEmptySubsequences: false)
        guard !subPath.hasPrefix("/"), !elements.contains("..") else { throw PodSetupError("\(label): subPath \"\(subPath)\" must stay inside the volume") }
        let volume: DirectoryHandle
        do { volume = try DirectoryHandle(path: base, followingSymlinks: true) } catch { throw PodSetupError("\(label): \(error)") }
        // Alive to the end of the scope: its descriptor is used by number below.
        defer { withExtendedLifetime(volume) {} }
        let resolve = IOTKUBE_RESOLVE_BENEATH | IOTKUBE_RESOLVE_NO_MAGICLINKS
        var descriptor = iotkube_openat2(volume.descriptor, subPath, IOTKUBE_O_PATH, 0, resolve)
        if descriptor < 0 && errno == ENOENT {
            do { _ = try volume.makeDirectories(subPath) } catch {
                throw PodSetupError("\(label): subPath \"\(subPath)\" cannot be created inside the volume: \(error)")
            }
            descriptor = iotkube_openat2(volume.descriptor, subPath, IOTKUBE_O_PATH, 0, resolve)
        }
        guard descriptor >= 0 else {
            let code = errno
            if code == EXDEV { throw PodSetupError("\(label): subPath \"\(subPath)\" leads outside the volume") }
            throw PodSetupError("\(label): subPath \"\(subPath)\": \(String(cString: strerror(code)))")
        }
        defer { close(descriptor) }
        try BindMount.bind(descriptor, onto: target, label: label)
        return target
    }
}
