import CRuntime
import OCI

/// cgroup v2: one hierarchy; controllers are enabled down the path through
/// `cgroup.subtree_control`; limits written to `memory.max`, `cpu.max`, `cpu.weight`, …
public struct CgroupV2Manager: CgroupManager {
    /// The mount point (injectable, so tests can run on a directory of plain files).
    public let root: String

    public init(root: String) { self.root = root }

    public var summary: String { "cgroup v2 at \(root)" }

    public var containerMountLayout: CgroupMountLayout { .unified }

    func directory(_ path: String) -> String { root + "/" + path.split(separator: "/").joined(separator: "/") }

    public var availableControllers: Set<String> {
        Set((CgroupFiles.read(root + "/cgroup.controllers") ?? "").split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init))
    }

    /// kubelet/runc conversion of cgroup v1 cpu.shares (2…262144) to v2 cpu.weight (1…10000).
    public static func weight(fromShares shares: UInt64) -> UInt64 {
        guard shares >= 2 else { return 1 }
        return 1 + ((min(shares, 262_144) - 2) * 9999) / 262_142
    }

    public var controllerNames: Set<String> { availableControllers }

    public func create(_ path: String, resources: RuntimeSpec.Resources?) throws(RuntimeError) -> [String] {
        let current = try makePath(path, resources: resources)
        try apply(resources, to: current)
        try restrictDevices(resources?.devices, in: current)
        return [current + "/cgroup.procs"]
    }

    public func prepareParent(_ path: String, resources: RuntimeSpec.Resources?) throws(RuntimeError) {
        let current = try makePath(path, resources: resources)
        try enableControllers(in: current)
        try apply(resources, to: current)
    }

    public func exists(_ path: String) -> Bool { CgroupFiles.exists(directory(path)) }

    public func procsFiles(_ path: String) -> [String] { [directory(path) + "/cgroup.procs"] }

    public func memoryEventsFile(_ path: String) -> String? {
        availableControllers.contains("memory") ? directory(path) + "/memory.events" : nil
    }

    public func children(_ path: String) -> [String] {
        let directory = self.directory(path)
        return CgroupFiles.subdirectories(directory)
    }

    /// The controllers cgroups below here get: those of the ancestors' that this runtime uses.
    private var wantedControllers: [String] {
        let available = availableControllers
        return ["cpu", "memory", "pids", "io", "cpuset"].filter { available.contains($0) }
    }

    private func enableControllers(in directory: String) throws(RuntimeError) {
        let wanted = wantedControllers
        guard !wanted.isEmpty else { return }
        let enabled = Set((CgroupFiles.read(directory + "/cgroup.subtree_control") ?? "").split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init))
        let missing = wanted.filter { !enabled.contains($0) }
        if !missing.isEmpty {
            try CgroupFiles.write(directory + "/cgroup.subtree_control", missing.map { "+" + $0 }.joined(separator: " "))
        }
    }

    /// Checks the controllers `resources` needs, enables the wanted ones on every ancestor and
    /// creates the directories; returns the last one.
    private func makePath(_ path: String, resources: RuntimeSpec.Resources?) throws(RuntimeError) -> String {
        let available = availableControllers
        for controller in ControllerNeeds.needed(resources) where !available.contains(controller) { throw ControllerNeeds.missing(controller) }
        var current = root
        for component in path.split(separator: "/") {
            try enableControllers(in: current)
            current += "/" + component
            try CgroupFiles.makeDirectories(current)
        }
        return current
    }

    /// v2 has no devices.allow: a BPF program attached to the cgroup decides. Every device is
    /// denied, then the spec's rules (or the standard set) apply, the last matching rule winning,
    /// so a process with CAP_MKNOD still cannot open the host's disks. Skipped when the rules end
    /// in "allow everything" (privileged) and on directories that are not cgroup2 (unit tests).
    func restrictDevices(_ rules: [RuntimeSpec.Resources.DeviceRule]?, in directory: String) throws(RuntimeError) {
        let rules = [RuntimeSpec.Resources.DeviceRule(allow: false, type: "a", major: nil, minor: nil, access: "rwm")]
            + (rules ?? DeviceRules.standard)
        if let last = rules.last, last.allow, (last.type ?? "a") == "a", last.major == nil || last.major == -1,
           last.minor == nil || last.minor == -1, DeviceRules.accessBits(last.access) == 7 {
            return
        }
        guard iotkube_is_cgroup2(directory) == 1 else { return }
        var compiled: [iotkube_device_rule] = []
        for rule in rules {
            let type = rule.type ?? "a"
            guard ["a", "b", "c"].contains(type) else { throw RuntimeError("linux.resources.devices: type \"\(type)\" is not a, b or c") }
            compiled.append(iotkube_device_rule(
                allow: rule.allow ? 1 : 0, type: CChar(type.utf8.first!), major: rule.major ?? -1, minor: rule.minor ?? -1,
                access: DeviceRules.accessBits(rule.access)))
        }
        var error = [CChar](repeating: 0, count: 512)
        let status = compiled.withUnsafeBufferPointer { buffer in
            iotkube_device_filter_attach(directory, buffer.baseAddress, Int32(buffer.count), &error, error.count)
        }
        guard status == 0 else {
            throw RuntimeError("cgroup v2 device filter: \(String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)) (the kernel needs CONFIG_CGROUP_BPF)")
        }
    }

    func apply(_ resources: RuntimeSpec.Resources?, to directory: String) throws(RuntimeError) {
        guard let resources else { return }
        if let memory = resources.memory {
            if let limit = memory.limit { try CgroupFiles.write(directory + "/memory.max", limit < 0 ? "max" : String(limit)) }
            if let reservation = memory.reservation { try CgroupFiles.write(directory + "/memory.low", reservation < 0 ? "max" : String(reservation)) }
            if let swap = memory.swap, CgroupFiles.exists(directory + "/memory.swap.max") {
                // OCI swap is memory+swap; v2's memory.swap.max is swap alone.
                let value = swap < 0 ? "max" : String(SystemdUnits.swapAlone(swap: swap, limit: memory.limit))
                try CgroupFiles.write(directory + "/memory.swap.max", value)
            }
        }
        if let cpu = resources.cpu {
            if cpu.quota != nil || cpu.period != nil {
                let period = cpu.period ?? 100_000
                let quota = cpu.quota.map { $0 <= 0 ? "max" : String($0) } ?? "max"
                try CgroupFiles.write(directory + "/cpu.max", "\(quota) \(period)")
            }
            if let shares = cpu.shares { try CgroupFiles.write(directory + "/cpu.weight", String(Self.weight(fromShares: shares))) }
            if let cpus = cpu.cpus { try CgroupFiles.write(directory + "/cpuset.cpus", cpus) }
            if let mems = cpu.mems { try CgroupFiles.write(directory + "/cpuset.mems", mems) }
        }
        if let pids = resources.pids { try CgroupFiles.write(directory + "/pids.max", pids.limit <= 0 ? "max" : String(pids.limit)) }
        if let weight = resources.blockIO?.weight, CgroupFiles.exists(directory + "/io.weight") {
            // v1 blkio.weight 10…1000 → v2 io.weight 1…10000.
            try CgroupFiles.write(directory + "/io.weight", String(1 + (UInt32(max(10, weight)) - 10) * 9999 / 990))
        }
        for (key, value) in (resources.unified ?? [:]).sorted(by: { $0.key < $1.key }) {
            guard !key.contains("/"), !key.hasPrefix("cgroup.") || key == "cgroup.max.depth" || key == "cgroup.max.descendants" else {
                throw RuntimeError("linux.resources.unified: \(key) may not be set")
            }
            try CgroupFiles.write(directory + "/" + key, value)
        }
    }

    public func statistics(_ path: String) -> CgroupStatistics {
        let directory = self.directory(path)
        var statistics = CgroupStatistics()
        statistics.memoryBytes = CgroupFiles.read(directory + "/memory.current").flatMap { Int64($0.split(separator: "\n").first ?? "") }
        statistics.cpuUsageMicroseconds = CgroupFiles.keyValues(directory + "/cpu.stat")["usage_usec"]
        statistics.pids = CgroupFiles.read(directory + "/pids.current").flatMap { Int64($0.split(separator: "\n").first ?? "") }
        statistics.oomKills = CgroupFiles.keyValues(directory + "/memory.events")["oom_kill"] ?? 0
        statistics.memoryPressure = CgroupFiles.read(directory + "/memory.pressure").flatMap { PressureStall(parsing: $0) }
        statistics.memoryLimitBytes = CgroupFiles.read(directory + "/memory.max").flatMap { Int64($0.split(separator: "\n").first ?? "") }
        statistics.memoryWorkingSetBytes = CgroupStatistics.workingSet(
            usage: statistics.memoryBytes, inactiveFile: CgroupFiles.keyValues(directory + "/memory.stat")["inactive_file"])
        if let io = CgroupFiles.read(directory + "/io.stat") {
            (statistics.ioReadBytes, statistics.ioWriteBytes) = CgroupStatistics.ioBytes(v2: io)
        }
        return statistics
    }

    public func kill(_ path: String) {
        let directory = self.directory(path)
        if CgroupFiles.exists(directory + "/cgroup.kill") {
            try? CgroupFiles.write(directory + "/cgroup.kill", "1")
            return
        }
        CgroupFiles.killTree(directory)
    }

    public func remove(_ path: String) { CgroupFiles.remove(directory(path)) }
}
