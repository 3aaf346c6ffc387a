#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import CRuntime
import OCI

/// Usage figures of a container's cgroup (what metrics and OOM reporting need).
public struct CgroupStatistics: Sendable, Equatable {
    /// Memory charged to the cgroup, page cache included.
    public var memoryBytes: Int64?
    /// The kubelet's working set: usage minus inactive file pages (what eviction and `kubectl top` use).
    public var memoryWorkingSetBytes: Int64?
    /// Bytes read and written on block devices.
    public var ioReadBytes: Int64?
    public var ioWriteBytes: Int64?
    public var cpuUsageMicroseconds: Int64?
    public var pids: Int64?
    public var oomKills: Int64 = 0
    /// The cgroup's memory pressure (cgroup v2's `memory.pressure`; nil on v1 or without PSI).
    public var memoryPressure: PressureStall?
    /// Its memory limit (cgroup v2's `memory.max`; nil when "max" or unknown).
    public var memoryLimitBytes: Int64?
}

/// Creates a container's cgroup with its limits, reports usage, kills and removes it. Two
/// implementations behind one interface: cgroup v2 (the target) and the v1 hierarchies of
/// older boards and hybrid hosts; `detect` picks one.
public protocol CgroupManager: Sendable {
    /// Human-readable: "cgroup v2 at /sys/fs/cgroup".
    var summary: String { get }
    /// Creates `path` (relative to the hierarchy root), applies `resources`, and returns the
    /// `cgroup.procs` files the container's process must be written to.
    func create(_ path: String, resources: RuntimeSpec.Resources?) throws(RuntimeError) -> [String]
    func statistics(_ path: String) -> CgroupStatistics
    /// Kills every process in the cgroup.
    func kill(_ path: String)
    func remove(_ path: String)
    /// What a container's `cgroup` mount becomes on this host.
    var containerMountLayout: CgroupMountLayout { get }
    /// Creates (or updates) a cgroup that holds other cgroups (a pod's, a QoS tier's) with
    /// `resources`; unlike `create`, no device rules, and processes never go in it.
    func prepareParent(_ path: String, resources: RuntimeSpec.Resources?) throws(RuntimeError)
    /// Whether the cgroup exists.
    func exists(_ path: String) -> Bool
    /// The `cgroup.procs` files of `path` (made by someone else: an external runtime).
    func procsFiles(_ path: String) -> [String]
    /// The names of the cgroups directly below `path`.
    func children(_ path: String) -> [String]
    /// The controllers this host offers (`memory`, `cpu`, `pids`, …).
    var controllerNames: Set<String> { get }
    /// The file counting the cgroup's OOM kills that can be watched (v2's `memory.events`;
    /// nil on v1).
    func memoryEventsFile(_ path: String) -> String?
}

/// What a spec's `cgroup` mount (at /sys/fs/cgroup) is made of, so that a container sees its
/// own cgroup as the root and reads its own limits there, as with runc and crun.
public enum CgroupMountLayout: Sendable, Equatable {
    /// One cgroup2 mount.
    case unified
    /// A tmpfs holding one v1 hierarchy per directory; a combined hierarchy also gets a link per
    /// controller (`cpu -> cpu,cpuacct`).
    case hierarchies([CgroupV1Hierarchy])
}

/// A v1 hierarchy as a container mounts it: its directory name and the controllers it was
/// mounted with (which a new mount of it must repeat exactly).
public struct CgroupV1Hierarchy: Sendable, Equatable {
    public var directory: String
    public var controllers: [String]

    public init(directory: String, controllers: [String]) {
        self.directory = directory
        self.controllers = controllers
    }
}

/// The controllers a resource request needs, for clear errors.
enum ControllerNeeds {
    static func needed(_ resources: RuntimeSpec.Resources?) -> [String] {
        guard let resources else { return [] }
        var needed: [String] = []
        if resources.memory?.limit != nil || resources.memory?.reservation != nil || resources.memory?.swap != nil { needed.append("memory") }
        if resources.cpu?.quota != nil || resources.cpu?.shares != nil { needed.append("cpu") }
        if resources.cpu?.cpus != nil || resources.cpu?.mems != nil { needed.append("cpuset") }
        if resources.pids != nil { needed.append("pids") }
        return needed
    }

    static func missing(_ controller: String) -> RuntimeError {
        let hint = controller == "memory"
            ? " (on Raspberry Pi OS add `cgroup_enable=memory cgroup_memory=1` to the kernel command line in /boot/firmware/cmdline.txt and reboot)"
            : " (enable it in the kernel command line or the kernel configuration)"
        return RuntimeError("the \(controller) cgroup controller is not available on this host\(hint)")
    }
}

extension CgroupStatistics {
    /// usage − inactive_file, floored at 0 (the kubelet's definition).
    static func workingSet(usage: Int64?, inactiveFile: Int64?) -> Int64? {
        guard let usage else { return nil }
        return max(0, usage - (inactiveFile ?? 0))
    }

    /// Sums `rbytes=`/`wbytes=` over the devices of an io.stat (v2).
    static func ioBytes(v2 text: String) -> (read: Int64, write: Int64) {
        var read: Int64 = 0, write: Int64 = 0
        for field in text.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
            if field.hasPrefix("rbytes="), let value = Int64(field.dropFirst(7)) { read += value }
            if field.hasPrefix("wbytes="), let value = Int64(field.dropFirst(7)) { write += value }
        }
        return (read, write)
    }

    /// Sums the Read/Write lines of blkio.throttle.io_service_bytes (v1: "8:0 Read 4096").
    static func ioBytes(v1 text: String) -> (read: Int64, write: Int64) {
        var read: Int64 = 0, write: Int64 = 0
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count == 3, let value = Int64(fields[2]) else { continue }
            if fields[1] == "Read" { read += value } else if fields[1] == "Write" { write += value }
        }
        return (read, write)
    }
}

public enum CgroupDetection {
    /// cgroup v2 when `root` is a cgroup2 mount (unified host); otherwise the v1 hierarchies
    /// found in /proc/self/mountinfo.
    public static func detect(root: String = "/sys/fs/cgroup", mountinfo: String = "/proc/self/mountinfo") -> any CgroupManager {
        if iotkube_is_cgroup2(root) == 1 {
            return CgroupV2Manager(root: root)
        }
        return CgroupV1Manager(mountinfo: CgroupFiles.read(mountinfo) ?? "")
    }
}
