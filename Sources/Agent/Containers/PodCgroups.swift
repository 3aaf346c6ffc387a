#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import KubeModel
import OCI
import Runtime
import Synchronization

/// The kubelet's pod cgroups: `kubepods` holds every pod and carries node allocatable;
/// `kubepods/burstable` and `kubepods/besteffort` are the QoS tiers (Guaranteed pods sit
/// directly in `kubepods`); `pod<uid>` gets the sum of its containers' limits; each container's
/// cgroup is below its pod's. With the systemd driver the same tree is made of slices
/// (`kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice`) and scopes. Paths are relative to the hierarchy root and follow
/// from the pod alone (its QoS class cannot change), so an agent restart finds them again.
public final class PodCgroups: Sendable {
    public let manager: any CgroupManager
    /// The cgroup holding all pods ("kubepods").
    public let root: String
    /// What `kubepods` is limited to (node allocatable; nil: not enforced).
    public let nodeLimits: RuntimeSpec.Resources?
    /// Every pod's process limit (the kubelet's `podPidsLimit`; nil: none).
    public let podPidsLimit: Int64?
    /// The pods with a cgroup, by UID: their class, CPU and memory requests (for the tiers' values).
    private let pods = Mutex<[String: (qos: PodQOSClass, milliCPU: Int64, memory: Int64)]>([:])
    /// What `kubepods` and the tiers were last given (taken under `pods`): unchanged values are
    /// not written again, nor sent to systemd, at every pod start.
    private let appliedTiers = Mutex<[String: RuntimeSpec.Resources]>([:])
    /// The kubelet's MemoryQoS (cgroup v2), with its throttling factor: `memory.min` from the
    /// memory requests on pods and tiers (and on containers, `memory.high`); nil: off.
    public let memoryQoS: Double?

    /// The systemd driver: the cgroups are slices systemd makes (`kubepods.slice`,
    /// `kubepods-burstable.slice`, `kubepods-burstable-pod<uid>.slice`), containers scopes in
    /// them; nil: the cgroupfs driver, plain directories.
    public let systemd: SystemdUnits?

    public init(manager: any CgroupManager, root: String = "kubepods", nodeLimits: RuntimeSpec.Resources?, podPidsLimit: Int64?,
                systemd: SystemdUnits? = nil, memoryQoS: Double? = nil) {
        self.manager = manager
        self.memoryQoS = memoryQoS
        self.root = systemd == nil ? root : "kubepods.slice"
        self.nodeLimits = nodeLimits
        self.podPidsLimit = podPidsLimit
        self.systemd = systemd
        // The cgroupfs driver's tree, left by an agent that used it before the driver changed.
        formerTree = systemd == nil ? nil : PodCgroups(manager: manager, root: root, nodeLimits: nil, podPidsLimit: nil)
    }

    /// With the systemd driver: the pod cgroups the cgroupfs driver made, swept as leftovers.
    private let formerTree: PodCgroups?

    /// Whether a UID can name a pod's cgroup here: with systemd, no "_", which stands for a
    /// dash in slice names (another pod's slice could be named otherwise).
    func accepts(_ uid: String) -> Bool { Self.isCgroupName(uid) && (systemd == nil || !uid.contains("_")) }

    /// Whether containers' OOM kills take the whole container (cgroup v2 with its memory controller).
    public var groupsOOMKills: Bool { manager.containerMountLayout == .unified && manager.controllerNames.contains("memory") }

    /// The tier a pod's cgroup is in.
    public func tier(_ qos: PodQOSClass) -> String {
        let name = qos == .burstable ? "burstable" : "besteffort"
        if qos == .guaranteed { return root }
        return systemd == nil ? root + "/" + name : root + "/kubepods-" + name + ".slice"
    }

    public func podPath(uid: String, qos: PodQOSClass) -> String { tier(qos) + "/" + podName(uid: uid, qos: qos) }

    /// The pod's cgroup name: `pod<uid>`, or its slice (`kubepods-burstable-pod<uid>.slice`, the
    /// UID's dashes as underscores, since a dash makes a level).
    func podName(uid: String, qos: PodQOSClass) -> String {
        guard systemd != nil else { return "pod" + uid }
        let escaped = uid.replacing("-", with: "_")
        switch qos {
        case .guaranteed: return "kubepods-pod\(escaped).slice"
        case .burstable: return "kubepods-burstable-pod\(escaped).slice"
        case .bestEffort: return "kubepods-besteffort-pod\(escaped).slice"
        }
    }

    /// The UID a child of a tier names, if it is a pod's cgroup.
    func uid(ofChild name: String, in qos: PodQOSClass) -> String? {
        var uid: String
        if systemd == nil {
            guard name.hasPrefix("pod") else { return nil }
            uid = String(name.dropFirst(3))
        } else {
            let prefix = podName(uid: "", qos: qos).dropLast(6)   // "kubepods-burstable-pod"
            guard name.hasPrefix(prefix), name.hasSuffix(".slice") else { return nil }
            uid = String(name.dropFirst(prefix.count).dropLast(6)).replacing("_", with: "-")
        }
        return Self.isCgroupName(uid) ? uid : nil
    }

    /// A container's OCI `cgroupsPath` below the pod's cgroup: a path, or with systemd the
    /// `slice:prefix:name` form that puts it in a scope of the pod's slice.
    public func containerCgroupsPath(podPath: String, id: String) -> String {
        guard systemd != nil else { return "/\(podPath)/\(id)" }
        return "\(podPath.split(separator: "/").last ?? ""):iotkube:\(id)"
    }

    public func podPath(_ pod: Pod) -> String { podPath(uid: pod.metadata.uid ?? "", qos: PodStatusBuilder.qosClass(pod)) }

    /// Makes (or brings up to date) `kubepods`, the pod's tier and the pod's cgroup; returns the
    /// pod's path, below which its containers go.
    public func prepare(_ pod: Pod) throws(RuntimeError) -> String {
        guard let uid = pod.metadata.uid, accepts(uid) else {
            throw RuntimeError("metadata.uid: \"\(pod.metadata.uid ?? "")\" cannot name a cgroup")
        }
        let qos = PodStatusBuilder.qosClass(pod)
        // The tiers' values are written under the lock: two pods at once must not leave them stale.
        try pods.withLock { (pods) throws(RuntimeError) in
            let requests = pod.effectiveRequests
            pods[uid] = (qos, requests.milliCPU, qos == .bestEffort ? 0 : max(0, requests.memory))
            try prepareTiers(pods)
        }
        let path = podPath(uid: uid, qos: qos)
        var resources = fitted(Self.resources(pod, pidsLimit: podPidsLimit))
        if memoryQoS != nil { resources = Self.memoryMin(pod.effectiveRequests.memory, on: resources) }
        try prepareParent(path, resources: resources, description: "iotkube pod \(uid)")
        return path
    }

    /// `kubepods` and the tiers, with the values the pods in `pods` give them.
    private func prepareTiers(_ pods: [String: (qos: PodQOSClass, milliCPU: Int64, memory: Int64)]) throws(RuntimeError) {
        var node = nodeLimits, burstable = fitted(Self.cpuShares(Self.burstableShares(pods.values.map { ($0.qos, $0.milliCPU) })))
        if memoryQoS != nil {
            // What the pods below request is protected from reclaim by the rest of the board.
            node = Self.memoryMin(pods.values.map(\.memory).saturatingSum(), on: node)
            burstable = Self.memoryMin(pods.values.filter { $0.qos == .burstable }.map(\.memory).saturatingSum(), on: burstable)
        }
        let tiers = [(root, node ?? RuntimeSpec.Resources(), "iotkube pods"), (tier(.burstable), burstable, "iotkube burstable pods"),
                     (tier(.bestEffort), fitted(Self.cpuShares(2)), "iotkube best-effort pods")]
        for (path, resources, description) in tiers {
            guard appliedTiers.withLock({ $0[path] }) != resources || !manager.exists(path) else { continue }
            try prepareParent(path, resources: resources, description: description)
            appliedTiers.withLock { $0[path] = resources }
        }
    }

    /// `resources` with cgroup v2's `memory.min`.
    static func memoryMin(_ bytes: Int64, on resources: RuntimeSpec.Resources?) -> RuntimeSpec.Resources {
        var resources = resources ?? RuntimeSpec.Resources()
        var unified = resources.unified ?? [:]
        unified["memory.min"] = String(max(0, bytes))
        resources.unified = unified
        return resources
    }

    /// A cgroup that holds others; with systemd, its slice is started (or updated) first and
    /// then has its cgroup, whose files get the same values.
    private func prepareParent(_ path: String, resources: RuntimeSpec.Resources?, description: String) throws(RuntimeError) {
        if let systemd, let unit = path.split(separator: "/").last.map(String.init) {
            try systemd.startOrUpdate(unit, fixed: SystemdUnits.sliceProperties(description: description),
                                      resources: SystemdUnits.resourceProperties(resources))
            // The start job runs right after the call returns; systemd then makes the cgroup.
            var waited = 0
            while !manager.exists(path) {
                guard waited < 10_000 else { throw RuntimeError("systemd did not make the cgroup of \(unit) within 10 s") }
                usleep(2000)
                waited += 2
            }
        }
        try manager.prepareParent(path, resources: resources)
    }

    /// Without a cpu controller, CPU shares are left out (a limit still needs the controller,
    /// and its absence is then the error).
    private func fitted(_ resources: RuntimeSpec.Resources) -> RuntimeSpec.Resources {
        guard !manager.controllerNames.contains("cpu") else { return resources }
        var resources = resources
        resources.cpu?.shares = nil
        if resources.cpu?.quota == nil, resources.cpu?.period == nil { resources.cpu = nil }
        return resources
    }

    /// Kills what is left in the pod's cgroup and removes it (its containers' cgroups must be
    /// gone: the runtime removes them with the containers). With systemd, its slice is stopped;
    /// one that cannot be is kept, for the next sweep to find.
    public func remove(uid: String) {
        formerTree?.remove(uid: uid)
        guard accepts(uid) else { return }
        for qos in [PodQOSClass.guaranteed, .burstable, .bestEffort] {
            let path = podPath(uid: uid, qos: qos), exists = manager.exists(path)
            // Everything below it too: a privileged container may have made cgroups of its own.
            if exists { manager.kill(path) }
            if let systemd {
                guard (try? systemd.stop(podName(uid: uid, qos: qos))) != nil else { continue }
            }
            if exists { manager.remove(path) }
        }
        pods.withLock { pods in
            guard pods.removeValue(forKey: uid) != nil else { return }
            try? prepareTiers(pods)
        }
    }

    /// A UID as the API server makes them: 1 to 128 of `[A-Za-z0-9_.-]`, not "." or "..".
    static func isCgroupName(_ text: String) -> Bool {
        (1...128).contains(text.utf8.count) && text != "." && text != ".."
            && text.utf8.allSatisfy { (48...57).contains($0) || (65...90).contains($0) || (97...122).contains($0) || $0 == 45 || $0 == 95 || $0 == 46 }
    }

    /// The usage of the pod's cgroup (every process of the pod, exec'd ones included); nil
    /// when it has none.
    public func statistics(_ pod: Pod) -> CgroupStatistics? {
        let path = podPath(pod)
        guard let uid = pod.metadata.uid, accepts(uid), manager.exists(path) else { return nil }
        return manager.statistics(path)
    }

    /// The largest memory stall (PSI `full avg10`, percent) of a pod that is at its own memory
    /// limit, or has a container at its: stall the pod brings on itself by reclaiming within
    /// its limit (or MemoryQoS's memory.high), which is no shortage of the board's.
    public func selfLimitedMemoryStall() -> Double {
        func atLimit(_ statistics: CgroupStatistics) -> Bool {
            guard let limit = statistics.memoryLimitBytes, limit > 0, let used = statistics.memoryBytes else { return false }
            return used >= limit / 10 * 9
        }
        var worst = 0.0
        for qos in [PodQOSClass.guaranteed, .burstable, .bestEffort] {
            for name in manager.children(tier(qos)) where uid(ofChild: name, in: qos) != nil {
                let path = tier(qos) + "/" + name
                let statistics = manager.statistics(path)
                guard let stall = statistics.memoryPressure?.full.avg10, stall > 0 else { continue }
                if atLimit(statistics) || manager.children(path).contains(where: { atLimit(manager.statistics(path + "/" + $0)) }) {
                    worst = max(worst, stall)
                }
            }
        }
        return worst
    }

    /// The usage of the cgroup of the pod with this UID, whichever its QoS class; nil when it has none.
    public func statistics(uid: String) -> CgroupStatistics? {
        guard accepts(uid) else { return nil }
        for qos in [PodQOSClass.guaranteed, .burstable, .bestEffort] where manager.exists(podPath(uid: uid, qos: qos)) {
            return manager.statistics(podPath(uid: uid, qos: qos))
        }
        return nil
    }

    /// The UIDs that have a pod cgroup on this host.
    public func podUIDs() -> Set<String> {
        var found: Set<String> = []
        for qos in [PodQOSClass.guaranteed, .burstable, .bestEffort] {
            for name in manager.children(tier(qos)) {
                if let uid = uid(ofChild: name, in: qos) { found.insert(uid) }
            }
        }
        return found.union(formerTree?.podUIDs() ?? [])
    }

    // MARK: values

    /// The burstable tier's CPU share: the sum of its pods' requests (the kubelet's QoS manager).
    static func burstableShares(_ pods: some Sequence<(qos: PodQOSClass, milliCPU: Int64)>) -> UInt64 {
        let milli = pods.filter { $0.qos == .burstable }.map(\.milliCPU).saturatingSum()
        return shares(milliCPU: milli)
    }

    /// The kubelet's MilliCPUToShares: 1024 per CPU, 2 to 262144.
    static func shares(milliCPU: Int64) -> UInt64 {
        UInt64(min(ContainerSpecBuilder.maximumShares, max(2, milliCPU.multipliedSaturated(by: 1024) / 1000)))
    }

    static func cpuShares(_ shares: UInt64) -> RuntimeSpec.Resources {
        var resources = RuntimeSpec.Resources()
        var cpu = RuntimeSpec.Resources.CPU()
        cpu.shares = shares
        resources.cpu = cpu
        return resources
    }

    /// A pod's cgroup values as the kubelet's ResourceConfigForPod makes them: the CPU share
    /// from the requests; a CPU quota and a memory limit only when every container has that
    /// limit (their sum, or a larger init container's; the pod's overhead added); BestEffort
    /// pods the minimal share; the process limit for every pod.
    public static func resources(_ pod: Pod, pidsLimit: Int64?) -> RuntimeSpec.Resources {
        let overhead = (pod.spec?.overhead ?? [:]).filter { $0.value.sign > 0 }
        var resources = RuntimeSpec.Resources()
        var cpu = RuntimeSpec.Resources.CPU()
        if PodStatusBuilder.qosClass(pod) == .bestEffort {
            cpu.shares = 2
        } else {
            cpu.shares = shares(milliCPU: pod.effectiveRequests.milliCPU.addingSaturated(overhead["cpu"]?.milliValue ?? 0))
            if let limit = limitSum(pod, "cpu", \.milliValue) {
                cpu.period = 100_000
                cpu.quota = min(ContainerSpecBuilder.maximumQuota, max(1000, limit.addingSaturated(overhead["cpu"]?.milliValue ?? 0).multipliedSaturated(by: 100_000) / 1000))
            }
            if let limit = limitSum(pod, "memory", \.value) {
                let bytes = limit.addingSaturated(overhead["memory"]?.value ?? 0)
                resources.memory = RuntimeSpec.Resources.Memory(limit: bytes)
                resources.memory?.swap = bytes
            }
        }
        resources.cpu = cpu
        if let pidsLimit, pidsLimit > 0 { resources.pids = RuntimeSpec.Resources.Pids(limit: pidsLimit) }
        return resources
    }

    /// As the kubelet sums limits: the app containers and every sidecar (an init container with
    /// `restartPolicy: Always`, which keeps running), or an ordinary init container with the
    /// sidecars started before it, whichever is larger; nil when a container has no such limit.
    /// Sums saturate; a negative limit (which the API server refuses) counts as none.
    static func limitSum(_ pod: Pod, _ resource: String, _ amount: (Quantity) -> Int64) -> Int64? {
        func limit(_ container: Container) -> Int64? {
            guard let quantity = container.resources?.limits?[resource], quantity.sign > 0 else { return nil }
            return amount(quantity)
        }
        var apps: Int64 = 0
        for container in pod.spec?.containers ?? [] {
            guard let value = limit(container) else { return nil }
            apps = apps.addingSaturated(value)
        }
        var sidecars: Int64 = 0, initPeak: Int64 = 0
        for container in pod.spec?.initContainers ?? [] {
            guard let value = limit(container) else { return nil }
            if container.restartPolicy == .always {
                sidecars = sidecars.addingSaturated(value)
                initPeak = max(initPeak, sidecars)
            } else {
                initPeak = max(initPeak, value.addingSaturated(sidecars))
            }
        }
        return max(apps.addingSaturated(sidecars), initPeak)
    }
}
