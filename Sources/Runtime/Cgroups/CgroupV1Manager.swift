#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import OCI

/// cgroup v1: one hierarchy per controller (memory, cpu/cpuacct, pids, cpuset, blkio, …) as
/// mounted on older boards and hybrid hosts; the container gets the same path in each.
public struct CgroupV1Manager: CgroupManager {
    /// Controller → mount point.
    public let hierarchies: [String: String]
    /// Mount point → every controller its hierarchy was mounted with (net_cls and the like
    /// included), for containers' own mounts of it.
    let mountedControllers: [String: [String]]

    /// The controllers the agent places containers in.
    static let placedControllers = ["memory", "cpu", "cpuacct", "pids", "cpuset", "blkio", "devices", "freezer"]
    /// Every v1 controller a hierarchy's mount options may name.
    static let knownControllers: Set<String> = Set(placedControllers + ["net_cls", "net_prio", "perf_event", "hugetlb", "rdma", "misc"])

    public init(hierarchies: [String: String]) {
        self.hierarchies = hierarchies
        var mounted: [String: [String]] = [:]
        for (controller, mount) in hierarchies { mounted[mount, default: []].append(controller) }
        mountedControllers = mounted.mapValues { $0.sorted() }
    }

    /// The v1 mounts of /proc/self/mountinfo (`… - cgroup cgroup rw,memory`).
    public init(mountinfo: String) {
        var found: [String: String] = [:]
        var mounted: [String: [String]] = [:]
        for line in mountinfo.split(separator: "\n") {
            guard let separator = line.firstRange(of: " - ") else { continue }
            let fields = line[..<separator.lowerBound].split(separator: " ")
            let tail = line[separator.upperBound...].split(separator: " ")
            guard fields.count >= 5, tail.count >= 3, tail[0] == "cgroup" else { continue }
            let mountPoint = String(fields[4])
            let controllers = tail[2].split(separator: ",").map(String.init).filter { Self.knownControllers.contains($0) }
            for name in controllers where Self.placedControllers.contains(name) { found[name] = mountPoint }
            if !controllers.isEmpty { mounted[mountPoint] = controllers }
        }
        hierarchies = found
        mountedControllers = mounted
    }

    public var summary: String { "cgroup v1 (\(hierarchies.keys.sorted().joined(separator: ", ")))" }

    /// The hierarchies containers are placed in, each under its mount point's name.
    public var containerMountLayout: CgroupMountLayout {
        .hierarchies(placements.map { _, mount in
            let name = mount.split(separator: "/").last.map(String.init) ?? mount
            return CgroupV1Hierarchy(directory: name, controllers: mountedControllers[mount] ?? [])
        })
    }

    func directory(_ controller: String, _ path: String) -> String? {
        hierarchies[controller].map { $0 + "/" + path.split(separator: "/").joined(separator: "/") }
    }

    /// The hierarchies a container is placed in (one per mount point).
    var placements: [(String, String)] {
        var seen: Set<String> = []
        var result: [(String, String)] = []
        for controller in Self.placedControllers {
            guard let mount = hierarchies[controller], !seen.contains(mount) else { continue }
            seen.insert(mount)
            result.append((controller, mount))
        }
        return result
    }

    public var controllerNames: Set<String> { Set(hierarchies.keys) }

    public func create(_ path: String, resources: RuntimeSpec.Resources?) throws(RuntimeError) -> [String] {
        let procs = try makePath(path, resources: resources)
        try apply(resources, path: path, restrictDevices: true)
        return procs
    }

    public func prepareParent(_ path: String, resources: RuntimeSpec.Resources?) throws(RuntimeError) {
        _ = try makePath(path, resources: resources)
        try apply(resources, path: path, restrictDevices: false)
    }

    public func exists(_ path: String) -> Bool {
        placements.contains { _, mount in CgroupFiles.exists(mount + "/" + path.split(separator: "/").joined(separator: "/")) }
    }

    public func memoryEventsFile(_ path: String) -> String? { nil }

    public func procsFiles(_ path: String) -> [String] {
        placements.map { _, mount in mount + "/" + path.split(separator: "/").joined(separator: "/") + "/cgroup.procs" }
    }

    public func children(_ path: String) -> [String] {
        guard let (_, mount) = placements.first else { return [] }
        return CgroupFiles.subdirectories(mount + "/" + path.split(separator: "/").joined(separator: "/"))
    }

    /// The directories of `path` in every hierarchy; returns their `cgroup.procs` files.
    private func makePath(_ path: String, resources: RuntimeSpec.Resources?) throws(RuntimeError) -> [String] {
        for controller in ControllerNeeds.needed(resources) where hierarchies[controller] == nil { throw ControllerNeeds.missing(controller) }
        var procs: [String] = []
        for (controller, mount) in placements {
            let directory = mount + "/" + path.split(separator: "/").joined(separator: "/")
            if controller == "cpuset" {
                // A new cpuset cgroup starts empty: copy cpus and mems down from the parent.
                var current = mount
                for component in path.split(separator: "/") {
                    let parent = current
                    current += "/" + component
                    try CgroupFiles.makeDirectories(current)
                    for file in ["cpuset.cpus", "cpuset.mems"] {
                        let mine = CgroupFiles.read(current + "/" + file)?.split(separator: "\n").first ?? ""
                        if mine.isEmpty, let inherited = CgroupFiles.read(parent + "/" + file)?.split(separator: "\n").first {
                            try CgroupFiles.write(current + "/" + file, String(inherited))
                        }
                    }
                }
            } else {
                try CgroupFiles.makeDirectories(directory)
            }
            procs.append(directory + "/cgroup.procs")
        }
        return procs
    }

    func apply(_ resources: RuntimeSpec.Resources?, path: String, restrictDevices: Bool) throws(RuntimeError) {
        let resources = resources ?? RuntimeSpec.Resources()
        if let memory = resources.memory, let directory = directory("memory", path) {
            if let limit = memory.limit { try CgroupFiles.write(directory + "/memory.limit_in_bytes", String(limit < 0 ? -1 : limit)) }
            if let reservation = memory.reservation { try CgroupFiles.write(directory + "/memory.soft_limit_in_bytes", String(reservation)) }
            if let swap = memory.swap, CgroupFiles.exists(directory + "/memory.memsw.limit_in_bytes") {
                try CgroupFiles.write(directory + "/memory.memsw.limit_in_bytes", String(swap < 0 ? -1 : swap))
            }
        }
        if let cpu = resources.cpu {
            if let directory = directory("cpu", path) {
                if let shares = cpu.shares { try CgroupFiles.write(directory + "/cpu.shares", String(shares)) }
                if let period = cpu.period { try CgroupFiles.write(directory + "/cpu.cfs_period_us", String(period)) }
                if let quota = cpu.quota { try CgroupFiles.write(directory + "/cpu.cfs_quota_us", String(quota <= 0 ? -1 : quota)) }
            }
            if let directory = directory("cpuset", path) {
                if let cpus = cpu.cpus { try CgroupFiles.write(directory + "/cpuset.cpus", cpus) }
                if let mems = cpu.mems { try CgroupFiles.write(directory + "/cpuset.mems", mems) }
            }
        }
        if let pids = resources.pids, let directory = directory("pids", path) {
            try CgroupFiles.write(directory + "/pids.max", pids.limit <= 0 ? "max" : String(pids.limit))
        }
        if let weight = resources.blockIO?.weight, let directory = directory("blkio", path), CgroupFiles.exists(directory + "/blkio.weight") {
            try CgroupFiles.write(directory + "/blkio.weight", String(weight))
        }
        if restrictDevices, let directory = directory("devices", path) {
            // Deny every device, then allow what the spec lists (or the standard set), so a
            // process with CAP_MKNOD still cannot reach the host's disks.
            try CgroupFiles.write(directory + "/devices.deny", "a")
            for rule in resources.devices ?? DeviceRules.standard where rule.allow {
                try CgroupFiles.write(directory + "/devices.allow", DeviceRules.text(rule))
            }
        }
    }

    public func statistics(_ path: String) -> CgroupStatistics {
        var statistics = CgroupStatistics()
        if let memory = directory("memory", path) {
            statistics.memoryBytes = CgroupFiles.read(memory + "/memory.usage_in_bytes").flatMap { Int64($0.split(separator: "\n").first ?? "") }
            statistics.oomKills = CgroupFiles.keyValues(memory + "/memory.oom_control")["oom_kill"] ?? 0
            statistics.memoryWorkingSetBytes = CgroupStatistics.workingSet(
                usage: statistics.memoryBytes, inactiveFile: CgroupFiles.keyValues(memory + "/memory.stat")["total_inactive_file"])
        }
        if let cpu = directory("cpuacct", path) ?? directory("cpu", path),
           let nanoseconds = CgroupFiles.read(cpu + "/cpuacct.usage").flatMap({ Int64($0.split(separator: "\n").first ?? "") }) {
            statistics.cpuUsageMicroseconds = nanoseconds / 1000
        }
        if let blkio = directory("blkio", path), let io = CgroupFiles.read(blkio + "/blkio.throttle.io_service_bytes") {
            (statistics.ioReadBytes, statistics.ioWriteBytes) = CgroupStatistics.ioBytes(v1: io)
        }
        if let pids = directory("pids", path) {
            statistics.pids = CgroupFiles.read(pids + "/pids.current").flatMap { Int64($0.split(separator: "\n").first ?? "") }
        }
        return statistics
    }

    /// Kills every process in the cgroup and in the cgroups below it, in every hierarchy.
    public func kill(_ path: String) {
        for (_, mount) in placements {
            CgroupFiles.killTree(mount + "/" + path.split(separator: "/").joined(separator: "/"))
        }
    }

    /// Removes the cgroup in every hierarchy (its parents stay, as on v2: a pod's cgroup and
    /// the QoS tiers carry limits of their own).
    public func remove(_ path: String) {
        for (_, mount) in placements {
            CgroupFiles.remove(mount + "/" + path.split(separator: "/").joined(separator: "/"))
        }
    }
}
