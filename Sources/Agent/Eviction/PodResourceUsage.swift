#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import KubeModel
import Runtime
import SystemSupport

/// What one pod uses of the resources eviction reclaims: memory working set and tasks (from
/// the pod's cgroup, or its running containers' cgroups), and local storage — its directory on the state
/// filesystem (writable layers, disk emptyDirs; tmpfs volumes excluded) and its log files.
public struct PodResourceUsage: Sendable {
    public struct ContainerUsage: Sendable, Equatable {
        public var name: String
        public var memoryBytes: Int64 = 0
        public var diskBytes: Int64 = 0
    }

    public var pod: Pod
    public var memoryBytes: Int64 = 0
    public var diskBytes: Int64 = 0
    public var inodes: Int64 = 0
    public var processes: Int64 = 0
    public var containers: [ContainerUsage] = []

    public init(pod: Pod) { self.pod = pod }

    /// Measures `pod`. `withStorage` walks its directories (only when disk pressure needs it).
    public static func measure(_ pod: Pod, host: PodHost, withStorage: Bool) -> PodResourceUsage {
        var usage = PodResourceUsage(pod: pod)
        let uid = pod.metadata.uid ?? ""
        let runtime = host.runtime
        var byName: [String: ContainerUsage] = [:]
        for state in runtime.list() where state.annotations?["io.kubernetes.pod.uid"] == uid && state.status == .running {
            guard let name = state.annotations?["io.kubernetes.container.name"], let record = try? runtime.record(id: state.id) else { continue }
            let statistics = runtime.statistics(of: record)
            let memory = statistics.memoryWorkingSetBytes ?? statistics.memoryBytes ?? 0
            byName[name, default: ContainerUsage(name: name)].memoryBytes += memory
            usage.memoryBytes += memory
            usage.processes += statistics.pids ?? 0
        }
        // The pod's cgroup counts the whole pod (processes exec'd into it, memory charged to it).
        if let statistics = host.cgroups?.statistics(pod) {
            if let memory = statistics.memoryWorkingSetBytes ?? statistics.memoryBytes { usage.memoryBytes = memory }
            if let pids = statistics.pids { usage.processes = pids }
        }
        if withStorage {
            let directory = host.podDirectory(uid: uid)
            var total = DiskUsage.measure(directory)
            for run in FileTree.list(directory + "/runs") {
                // "<uid>-<container>-<restart>": the writable layer of that container's run.
                let layer = DiskUsage.measure(directory + "/runs/" + run + "/upper")
                for container in (pod.spec?.initContainers ?? []) + (pod.spec?.containers ?? []) where run.hasPrefix(uid + "-" + container.name + "-") {
                    byName[container.name, default: ContainerUsage(name: container.name)].diskBytes += layer.bytes
                }
            }
            let logs = host.logDirectory + "/" + PodHost.logFolder(pod)
            for container in FileTree.list(logs) {
                let logged = DiskUsage.measure(logs + "/" + container)
                byName[container, default: ContainerUsage(name: container)].diskBytes += logged.bytes
                total.bytes += logged.bytes
                total.inodes += logged.inodes
            }
            usage.diskBytes = total.bytes
            usage.inodes = total.inodes
        }
        usage.containers = byName.values.sorted { $0.name < $1.name }
        return usage
    }
}

/// Bytes and inodes under a directory on its own filesystem (other mounts — tmpfs volumes,
/// the overlay rootfs — are not crossed). The tree is the pod's to change while it is read:
/// it is walked through descriptors, never following a link, depth first (one descriptor per
/// level) and bounded in entries and depth.
enum DiskUsage {
    static func measure(_ path: String) -> (bytes: Int64, inodes: Int64) {
        guard let top = try? DirectoryHandle(path: path, followingSymlinks: true) else { return (0, 0) }
        var device = stat()
        guard fstat(top.descriptor, &device) == 0 else { return (0, 0) }
        var total: (bytes: Int64, inodes: Int64) = (0, 0)
        var stack: [(directory: DirectoryHandle, remaining: [String])] = [(top, (try? top.entries()) ?? [])]
        var budget = 1_000_000  // entries: a bound for hostile trees
        while !stack.isEmpty, budget > 0 {
            guard let name = stack[stack.count - 1].remaining.popLast() else { stack.removeLast(); continue }
            budget -= 1
            let directory = stack[stack.count - 1].directory
            var info = stat()
            guard fstatat(directory.descriptor, name, &info, AT_SYMLINK_NOFOLLOW) == 0, info.st_dev == device.st_dev else { continue }
            total.inodes += 1
            total.bytes = total.bytes.addingSaturated(Int64(info.st_blocks) * 512)
            if info.st_mode & S_IFMT == S_IFDIR, stack.count < DirectoryHandle.maximumDepth, let child = try? directory.openDirectory(name) {
                stack.append((child, (try? child.entries()) ?? []))
            }
        }
        return total
    }
}
