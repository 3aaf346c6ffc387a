import KubeModel
import OCI
import Runtime
import Synchronization

/// The kubelet's pod cgroups (its cgroupfs driver): `kubepods` holds every pod and carries node
/// allocatable; `kubepods/burstable` and `kubepods/besteffort` are the QoS tiers (Guaranteed
/// pods sit directly in `kubepods`); `pod<uid>` gets the sum of its containers' limits; each
/// container's cgroup is below its pod's. Paths are relative to the hierarchy root and follow
/// from the pod alone (its QoS class cannot change), so an agent restart finds them again.
public final class PodCgroups: Sendable {
    public let manager: any CgroupManager
    /// The cgroup holding all pods ("kubepods").
    public let root: String
    /// What `kubepods` is limited to (node allocatable; nil: not enforced).
    public let nodeLimits: RuntimeSpec.Resources?
    /// Every pod's process limit (the kubelet's `podPidsLimit`; nil: none).
    public let podPidsLimit: Int64?
    /// The pods with a cgroup, by UID: their class and CPU request (for the burstable tier's share).
    private let pods = Mutex<[String: (qos: PodQOSClass, milliCPU: Int64)]>([:])

    public init(manager: any CgroupManager, root: String = "kubepods", nodeLimits: RuntimeSpec.Resources?, podPidsLimit: Int64?) {
        self.manager = manager
        self.root = root
        self.nodeLimits = nodeLimits
        self.podPidsLimit = podPidsLimit
    }

    /// Whether containers' OOM kills take the whole container (cgroup v2 with its memory controller).
    public var groupsOOMKills: Bool { manager.containerMountLayout == .unified && manager.controllerNames.contains("memory") }

    /// The tier a pod's cgroup is in.
    public func tier(_ qos: PodQOSClass) -> String {
        switch qos {
        case .guaranteed: return root
        case .burstable: return root + "/burstable"
        case .bestEffort: return root + "/besteffort"
        }
    }

    public func podPath(uid: String, qos: PodQOSClass) -> String { tier(qos) + "/pod" + uid }

    public func podPath(_ pod: Pod) -> String { podPath(uid: pod.metadata.uid ?? "", qos: PodStatusBuilder.qosClass(pod)) }

    /// Makes (or brings up to date) `kubepods`, the pod's tier and the pod's cgroup; returns the
    /// pod's path, below which its containers go.
    public func prepare(_ pod: Pod) throws(RuntimeError) -> String {
        guard let uid = pod.metadata.uid, !uid.isEmpty, !uid.contains("/"), uid != ".", uid != ".." else {
            throw RuntimeError("metadata.uid: \"\(pod.metadata.uid ?? "")\" cannot name a cgroup")
        }
        let qos = PodStatusBuilder.qosClass(pod)
        try manager.prepareParent(root, resources: nodeLimits)
        let shares = pods.withLock { pods in
            pods[uid] = (qos, pod.effectiveRequests.milliCPU)
            return Self.burstableShares(pods.values)
        }
        try manager.prepareParent(tier(.burstable), resources: fitted(Self.cpuShares(shares)))
        try manager.prepareParent(tier(.bestEffort), resources: fitted(Self.cpuShares(2)))
        let path = podPath(uid: uid, qos: qos)
        try manager.prepareParent(path, resources: fitted(Self.resources(pod, pidsLimit: podPidsLimit)))
        return path
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
    /// gone: the runtime removes them with the containers).
    public func remove(uid: String) {
        guard !uid.isEmpty, !uid.contains("/") else { return }
        let shares = pods.withLock { pods in
            pods[uid] = nil
            return Self.burstableShares(pods.values)
        }
        for qos in [PodQOSClass.guaranteed, .burstable, .bestEffort] {
            let path = podPath(uid: uid, qos: qos)
            guard manager.exists(path) else { continue }
            for child in manager.children(path) {
                manager.kill(path + "/" + child)
                manager.remove(path + "/" + child)
            }
            manager.kill(path)
            manager.remove(path)
        }
        try? manager.prepareParent(tier(.burstable), resources: fitted(Self.cpuShares(shares)))
    }

    /// The usage of the pod's cgroup (every process of the pod, exec'd ones included); nil
    /// when it has none.
    public func statistics(_ pod: Pod) -> CgroupStatistics? {
        let path = podPath(pod)
        guard pod.metadata.uid?.isEmpty == false, manager.exists(path) else { return nil }
        return manager.statistics(path)
    }

    /// The UIDs that have a pod cgroup on this host.
    public func podUIDs() -> Set<String> {
        var found: Set<String> = []
        for qos in [PodQOSClass.guaranteed, .burstable, .bestEffort] {
            for name in manager.children(tier(qos)) where name.hasPrefix("pod") { found.insert(String(name.dropFirst(3))) }
        }
        return found
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
        let overhead = pod.spec?.overhead ?? [:]
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

    /// The larger of the app containers' (and sidecars') limits summed and any single init
    /// container's; nil when a container has no such limit. Sums saturate.
    static func limitSum(_ pod: Pod, _ resource: String, _ amount: (Quantity) -> Int64) -> Int64? {
        let initContainers = pod.spec?.initContainers ?? []
        let containers = pod.spec?.containers ?? []
        var limits: [Int64] = []
        for container in containers + initContainers {
            guard let limit = container.resources?.limits?[resource], !limit.isZero else { return nil }
            limits.append(amount(limit))
        }
        let running = Array(limits[..<containers.count]) + zip(initContainers, limits[containers.count...]).filter { $0.0.restartPolicy == .always }.map(\.1)
        var total = running.saturatingSum()
        for (container, limit) in zip(initContainers, limits[containers.count...]) where container.restartPolicy != .always {
            total = max(total, limit)
        }
        return total
    }
}
