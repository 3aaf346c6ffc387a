#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import CRuntime
import OCI

/// The systemd cgroup driver's units, made through systemd's D-Bus API so that systemd knows
/// every cgroup in its tree (it would move or reset what it does not): slices for pods and QoS
/// tiers (`kubepods-burstable-pod<uid>.slice`), a transient scope with delegation for each
/// container (`iotkube-<id>.scope`, started by the monitor with the container's pid). Limits go
/// both to systemd (which re-applies its own values on a daemon-reload) and to the cgroup files.
public struct SystemdUnits: Sendable {
    public init() {}

    /// A unit property as StartTransientUnit takes it.
    public struct Property: Sendable, Equatable {
        public enum Value: Sendable, Equatable {
            case text(String), bool(Bool), uint64(UInt64), uint32(UInt32)
        }

        public var name: String
        public var value: Value
        /// Left out where systemd is too old to know it (the cgroup file still gets the value).
        public var optional: Bool

        public init(_ name: String, _ value: Value, optional: Bool = false) {
            self.name = name
            self.value = value
            self.optional = optional
        }

        /// The plan file's tokens (name, type, optional, value) for the monitor.
        public var planTokens: [String] {
            let flag = optional ? "1" : "0"
            switch value {
            case .text(let text): return [name, "s", flag, text]
            case .bool(let on): return [name, "b", flag, on ? "1" : "0"]
            case .uint64(let number): return [name, "t", flag, String(number)]
            case .uint32(let number): return [name, "u", flag, String(number)]
            }
        }
    }

    /// Starts a transient slice with `fixed` and `resources` properties; when systemd has it
    /// already (an agent restart, a changed share), sets `resources` on it instead.
    public func startOrUpdate(_ unit: String, fixed: [Property], resources: [Property]) throws(RuntimeError) {
        var error = [CChar](repeating: 0, count: 1200)
        let started = Self.withCProperties(fixed + resources) { iotkube_systemd_start_transient_unit(unit, $0, $1, &error, error.count) }
        if started == 1, !resources.isEmpty {
            let updated = Self.withCProperties(resources) { iotkube_systemd_set_unit_properties(unit, $0, $1, &error, error.count) }
            if updated != 0 { throw RuntimeError(Self.text(error)) }
        } else if started < 0 {
            throw RuntimeError(Self.text(error))
        }
    }

    /// Stops a unit; nothing when systemd has none of that name.
    public func stop(_ unit: String) throws(RuntimeError) {
        var error = [CChar](repeating: 0, count: 1200)
        if iotkube_systemd_stop_unit(unit, &error, error.count) != 0 { throw RuntimeError(Self.text(error)) }
    }

    /// Whether systemd runs this machine (PID 1), as sd_booted checks it.
    public static var isBooted: Bool { access("/run/systemd/system", F_OK) == 0 }

    // MARK: names

    /// The cgroup of a slice, relative to the hierarchy root: each dash a level, as systemd
    /// makes them ("a-b.slice" → "a.slice/a-b.slice"; "-.slice" is the root).
    public static func slicePath(_ slice: String) throws(RuntimeError) -> String {
        guard slice != "-.slice" else { return "" }
        guard slice.hasSuffix(".slice"), slice.utf8.count <= 255 else { throw RuntimeError("\"\(slice)\" is not a slice unit name") }
        let stem = slice.dropLast(6)
        let parts = stem.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.allSatisfy({ !$0.isEmpty && isNamePart($0) }) else {
            throw RuntimeError("\"\(slice)\" is not a valid slice name (letters, digits, \"_\" and \".\", levels separated by single dashes)")
        }
        var path: [String] = []
        for index in parts.indices { path.append(parts[...index].joined(separator: "-") + ".slice") }
        // Names systemd would escape in the cgroup path ("_cpu.slice"): refused, not guessed.
        guard path.allSatisfy({ !isEscapedByCgroupName($0) }) else { throw RuntimeError("\"\(slice)\" names a cgroup systemd escapes (a leading \"_\" or \".\", or a controller's name)") }
        return path.joined(separator: "/")
    }

    /// systemd's cg_escape: a name starting with "_", "." or "bpf-", or whose part before the
    /// first "." is a controller's name, gets a "_" in front in the cgroup tree.
    static func isEscapedByCgroupName(_ name: String) -> Bool {
        guard let first = name.first, first != "_", first != ".", !name.hasPrefix("bpf-") else { return true }
        let stem = name.split(separator: ".", maxSplits: 1).first.map(String.init) ?? name
        return ["cpu", "cpuacct", "cpuset", "io", "blkio", "memory", "devices", "freezer", "net_cls", "net_prio", "perf_event", "hugetlb", "pids", "rdma", "misc", "cgroup"].contains(stem)
    }

    /// A container's scope from an OCI systemd `cgroupsPath` ("slice:prefix:name", as runc and
    /// crun take it with their systemd cgroup manager): the slice, the scope unit
    /// ("prefix-name.scope") and its cgroup path.
    public static func scope(cgroupsPath: String) throws(RuntimeError) -> (slice: String, unit: String, path: String) {
        let parts = cgroupsPath.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 3, !parts[1].isEmpty, !parts[2].isEmpty,
              isNamePart(Substring(parts[1]), dash: true), isNamePart(Substring(parts[2]), dash: true) else {
            throw RuntimeError("linux.cgroupsPath: \"\(cgroupsPath)\" is not slice:prefix:name (the systemd form)")
        }
        let slice = parts[0].isEmpty ? "system.slice" : parts[0]
        let unit = parts[1] + "-" + parts[2] + ".scope"
        guard !isEscapedByCgroupName(unit) else { throw RuntimeError("linux.cgroupsPath: the unit \(unit) names a cgroup systemd escapes") }
        guard unit.utf8.count <= 255 else { throw RuntimeError("linux.cgroupsPath: the unit \(unit) is longer than 255 bytes") }
        let parent = try slicePath(slice)
        return (slice, unit, parent.isEmpty ? unit : parent + "/" + unit)
    }

    /// Whether a cgroupsPath is in the systemd form (its first part a slice).
    public static func isSystemdForm(_ cgroupsPath: String?) -> Bool {
        guard let cgroupsPath, let colon = cgroupsPath.firstIndex(of: ":") else { return false }
        let slice = cgroupsPath[..<colon]
        return slice.isEmpty || (slice.hasSuffix(".slice") && !slice.contains("/"))
    }

    static func isNamePart(_ text: Substring, dash: Bool = false) -> Bool {
        text.utf8.allSatisfy { (48...57).contains($0) || (65...90).contains($0) || (97...122).contains($0) || $0 == 95 || $0 == 46 || (dash && $0 == 45) }
            && text != "." && text != ".."
    }

    // MARK: properties

    /// What every unit of ours gets: accounting for each controller the limits use.
    public static let accounting: [Property] = [
        Property("MemoryAccounting", .bool(true)), Property("CPUAccounting", .bool(true)),
        Property("TasksAccounting", .bool(true)), Property("IOAccounting", .bool(true)),
    ]

    /// A slice's fixed properties.
    public static func sliceProperties(description: String) -> [Property] {
        [Property("Description", .text(description)), Property("DefaultDependencies", .bool(false))] + accounting
    }

    /// A container scope's fixed properties (the monitor adds `PIDs`): delegated, so that a
    /// privileged container may make cgroups below its own; collected when it fails (an OOM
    /// kill) as when it ends, so that no unit is left behind; an OOM kill takes the whole
    /// container or only its victim as `memory.oom.group` says (systemd writes that file from
    /// `OOMPolicy`).
    public static func scopeProperties(slice: String, description: String, groupOOMKill: Bool) -> [Property] {
        [Property("Description", .text(description)), Property("Slice", .text(slice)), Property("Delegate", .bool(true)),
         Property("DefaultDependencies", .bool(false)), Property("CollectMode", .text("inactive-or-failed"), optional: true),
         Property("OOMPolicy", .text(groupOOMKill ? "kill" : "continue"), optional: true)] + accounting
    }

    /// cgroup v2's `memory.swap.max` from OCI's memory+swap `swap` (not negative) and `limit`;
    /// a negative (unlimited) or absent limit leaves swap as given. Never traps.
    public static func swapAlone(swap: Int64, limit: Int64?) -> Int64 {
        guard let limit, limit > 0 else { return max(0, swap) }
        return max(0, swap - min(limit, swap))
    }

    /// The limits of `resources` as systemd properties, with the values the cgroup files get
    /// (systemd writes its own again on a daemon-reload). No process limit is `infinity`, not
    /// systemd's DefaultTasksMax.
    public static func resourceProperties(_ resources: RuntimeSpec.Resources?) -> [Property] {
        var properties: [Property] = []
        let memory = resources?.memory
        if let limit = memory?.limit { properties.append(Property("MemoryMax", .uint64(limit < 0 ? .max : UInt64(limit)))) }
        if let low = memory?.reservation { properties.append(Property("MemoryLow", .uint64(low < 0 ? .max : UInt64(low)), optional: true)) }
        if let swap = memory?.swap {
            // OCI swap is memory+swap; memory.swap.max is swap alone.
            let value = swap < 0 ? UInt64.max : UInt64(swapAlone(swap: swap, limit: memory?.limit))
            properties.append(Property("MemorySwapMax", .uint64(value), optional: true))
        }
        if let cpu = resources?.cpu {
            if let shares = cpu.shares { properties.append(Property("CPUWeight", .uint64(CgroupV2Manager.weight(fromShares: shares)))) }
            if cpu.quota != nil || cpu.period != nil {
                let period = max(1000, min(1_000_000, cpu.period ?? 100_000))
                var perSecond = UInt64.max
                if let quota = cpu.quota, quota > 0 {
                    // systemd keeps whole percents (10 ms per second): rounded up, as runc does,
                    // so that after a daemon-reload the container gets at least its quota.
                    let (product, overflow) = UInt64(quota).multipliedReportingOverflow(by: 1_000_000)
                    let exact = product / period + (product % period == 0 ? 0 : 1)
                    // systemd multiplies it by the period: kept where that cannot wrap.
                    perSecond = overflow ? .max / 1_000_000 : min(UInt64.max / 1_000_000, max(10_000, (exact + 9_999) / 10_000 * 10_000))
                }
                properties.append(Property("CPUQuotaPerSecUSec", .uint64(perSecond)))
                properties.append(Property("CPUQuotaPeriodUSec", .uint64(period), optional: true))
            }
        }
        let pids = resources?.pids?.limit ?? 0
        properties.append(Property("TasksMax", .uint64(pids <= 0 ? .max : UInt64(pids))))
        // MemoryQoS's values (written as unified files too).
        for (file, name) in [("memory.min", "MemoryMin"), ("memory.high", "MemoryHigh")] {
            guard let text = resources?.unified?[file] else { continue }
            if let bytes = UInt64(text) {
                properties.append(Property(name, .uint64(bytes), optional: true))
            } else if text == "max" {
                properties.append(Property(name, .uint64(.max), optional: true))
            }
        }
        return properties
    }

    // MARK: C

    private static func withCProperties(_ properties: [Property], _ body: (UnsafePointer<iotkube_unit_property>, Int32) -> Int32) -> Int32 {
        var texts: [UnsafeMutablePointer<CChar>] = []
        defer { texts.forEach { free($0) } }
        var converted: [iotkube_unit_property] = []
        for property in properties {
            let name = strdup(property.name)!
            texts.append(name)
            var entry = iotkube_unit_property(name: name, type: 0, text: nil, number: 0, optional: property.optional ? 1 : 0)
            switch property.value {
            case .text(let text):
                let copy = strdup(text)!
                texts.append(copy)
                entry.type = CChar(UInt8(ascii: "s"))
                entry.text = UnsafePointer(copy)
            case .bool(let flag): entry.type = CChar(UInt8(ascii: "b")); entry.number = flag ? 1 : 0
            case .uint64(let number): entry.type = CChar(UInt8(ascii: "t")); entry.number = number
            case .uint32(let number): entry.type = CChar(UInt8(ascii: "u")); entry.number = UInt64(number)
            }
            converted.append(entry)
        }
        return converted.withUnsafeBufferPointer { body($0.baseAddress!, Int32($0.count)) }
    }

    private static func text(_ error: [CChar]) -> String {
        String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
