import Foundation
import IotkubeTestSupport
import KubeModel
import OCI
import Testing

@testable import Agent
@testable import Runtime

/// The values pod cgroups get (the kubelet's ResourceConfigForPod and QoS manager), their
/// paths, and the agent.yaml settings behind them, bad values refused by name.
@Suite struct PodCgroupValuesTests {
    static func container(_ name: String, requests: [String: String] = [:], limits: [String: String] = [:], sidecar: Bool = false) -> Container {
        var container = Container(name: name, image: "busybox")
        var resources = ResourceRequirements()
        resources.requests = requests.isEmpty ? nil : requests.mapValues { try! Quantity(parsing: $0) }
        resources.limits = limits.isEmpty ? nil : limits.mapValues { try! Quantity(parsing: $0) }
        container.resources = resources
        if sidecar { container.restartPolicy = .always }
        return container
    }

    static func pod(_ containers: [Container], initContainers: [Container] = [], overhead: [String: String]? = nil, uid: String = "u1") -> Pod {
        var pod = Pod()
        pod.metadata.uid = uid
        var spec = PodSpec(containers: containers)
        spec.initContainers = initContainers.isEmpty ? nil : initContainers
        spec.overhead = overhead?.mapValues { try! Quantity(parsing: $0) }
        pod.spec = spec
        return pod
    }

    @Test func theLimitIsTheSumOrALargerInitContainersPlusOverhead() {
        let pod = Self.pod(
            [Self.container("app", requests: ["cpu": "250m"], limits: ["cpu": "500m", "memory": "100Mi"])],
            initContainers: [Self.container("proxy", limits: ["cpu": "100m", "memory": "20Mi"], sidecar: true),
                             Self.container("migrate", limits: ["cpu": "1", "memory": "300Mi"])],
            overhead: ["cpu": "50m", "memory": "10Mi"])
        let resources = PodCgroups.resources(pod, pidsLimit: 100)
        // The init container with the sidecar started before it (320Mi, 1.1 CPU) outweighs app +
        // sidecar (120Mi, 600m); overhead on top.
        #expect(resources.memory?.limit == (330 << 20))
        #expect(resources.memory?.swap == (330 << 20), "no swap beyond the limit")
        #expect(resources.cpu?.quota == 115_000 && resources.cpu?.period == 100_000)
        // Requests: the app's 250m, the init containers' limits standing in for their requests.
        #expect(resources.cpu?.shares == PodCgroups.shares(milliCPU: 1000 + 50))
        #expect(resources.pids?.limit == 100)
    }

    @Test func aContainerWithoutALimitLeavesThePodUnlimitedAndBestEffortGetsTheMinimalShare() {
        let burstable = Self.pod([Self.container("a", requests: ["cpu": "100m"], limits: ["memory": "64Mi"]), Self.container("b", requests: ["memory": "1Mi"])])
        let resources = PodCgroups.resources(burstable, pidsLimit: nil)
        #expect(resources.memory == nil && resources.cpu?.quota == nil && resources.pids == nil)
        #expect(resources.cpu?.shares == 102)
        let bestEffort = PodCgroups.resources(Self.pod([Self.container("a")]), pidsLimit: nil)
        #expect(bestEffort.cpu?.shares == 2 && bestEffort.memory == nil)
    }

    /// Negative amounts (refused by the API server; a hostile one may send them) count as none:
    /// no unlimited pod from a negative limit, no starved tier from a negative request.
    @Test func negativeAmountsCountAsNone() {
        let pod = Self.pod([Self.container("a", requests: ["cpu": "-100"], limits: ["memory": "-1Gi"]), Self.container("b", limits: ["memory": "64Mi"])],
                           overhead: ["memory": "-1Ei"])
        #expect(pod.effectiveRequests.milliCPU == 0)
        #expect(PodCgroups.resources(pod, pidsLimit: nil).memory == nil, "a container without a (positive) limit leaves the pod unlimited")
        let tier = PodCgroups.burstableShares([(.burstable, pod.effectiveRequests.milliCPU), (.burstable, 500)])
        #expect(tier == PodCgroups.shares(milliCPU: 500))
    }

    /// Valid quantities far past any board: the sums saturate, nothing traps.
    @Test func hugeQuantitiesSaturate() {
        let pod = Self.pod([Self.container("a", limits: ["cpu": "9000000000", "memory": "8Ei"]), Self.container("b", limits: ["cpu": "9000000000", "memory": "8Ei"])],
                           overhead: ["cpu": "9000000000", "memory": "8Ei"])
        let resources = PodCgroups.resources(pod, pidsLimit: nil)
        #expect(resources.cpu?.quota == ContainerSpecBuilder.maximumQuota)
        #expect(resources.cpu?.shares == UInt64(ContainerSpecBuilder.maximumShares))
        #expect(resources.memory?.limit == Int64.max)
        #expect(PodCgroups.shares(milliCPU: .max) == 262_144 && PodCgroups.shares(milliCPU: -5) == 2)
    }

    @Test func pathsFollowTheQoSClassAndAUIDCannotLeaveKubepods() throws {
        let root = NSTemporaryDirectory() + "iotkube-podcg-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let cgroups = PodCgroups(manager: CgroupV1Manager(hierarchies: ["pids": root]), root: "edge/kubepods", nodeLimits: nil, podPidsLimit: nil)
        let guaranteed = Self.pod([Self.container("a", requests: ["cpu": "1", "memory": "1Gi"], limits: ["cpu": "1", "memory": "1Gi"])], uid: "g")
        #expect(cgroups.podPath(guaranteed) == "edge/kubepods/podg")
        #expect(cgroups.podPath(Self.pod([Self.container("a", requests: ["cpu": "1"])], uid: "b")) == "edge/kubepods/burstable/podb")
        let bestEffort = Self.pod([Self.container("a")], uid: "e")
        #expect(try cgroups.prepare(bestEffort) == "edge/kubepods/besteffort/pode")
        #expect(FileManager.default.fileExists(atPath: root + "/edge/kubepods/besteffort/pode"))
        #expect(cgroups.podUIDs() == ["e"])
        for hostile in ["../../x", "a/b", "..", "", "a\u{0}b", "a b", String(repeating: "u", count: 129)] {
            #expect(throws: RuntimeError.self) { try cgroups.prepare(Self.pod([Self.container("a")], uid: hostile)) }
        }
        cgroups.remove(uid: "e")
        #expect(!FileManager.default.fileExists(atPath: root + "/edge/kubepods/besteffort/pode"))
        #expect(cgroups.podUIDs().isEmpty)
    }

    @Test(arguments: [
        ("cgroupDriver: systemd\nruntime: crun\n", "cgroupDriver: systemd needs the built-in runtime"),
        ("cgroupDriver: systemd\ncgroupRoot: /edge\n", "cgroupRoot (/edge) needs cgroupfs"),
        ("cgroupsPerQOS: false\nenforceNodeAllocatable: [pods]\n", "enforceNodeAllocatable: pods needs cgroupsPerQOS"),
        ("cgroupDriver: docker\n", "cgroupDriver: \"docker\" is not cgroupfs or systemd"),
        ("enforceNodeAllocatable: [pods, system-reserved]\n", "enforceNodeAllocatable[1]: \"system-reserved\" is not supported"),
        ("podPidsLimit: 0\n", "podPidsLimit (0) must be -1 (none) or 1 to 4194304"),
        ("memoryThrottlingFactor: 0\n", "memoryThrottlingFactor (0.0) must be above 0 and at most 1"),
        ("memoryThrottlingFactor: 1.5\n", "memoryThrottlingFactor (1.5) must be above 0 and at most 1"),
        ("podPidsLimit: 99999999999999999999\n", "podPidsLimit"),
        ("cgroupRoot: edge\n", "cgroupRoot: \"edge\" is not an absolute cgroup path"),
        ("cgroupRoot: /edge/../..\n", "cgroupRoot: \"/edge/../..\" is not an absolute cgroup path"),
        ("kubeReserved: {memory: -1Gi}\n", "kubeReserved.memory (-1Gi) must be 0 to 2^50"),
        ("systemReserved: {cpu: 9Ei}\n", "must be 0 to 2^50"),
    ])
    func aBadCgroupSettingStopsTheAgentNamingIt(_ section: String, _ message: String) throws {
        let path = try AgentNetworkConfigurationTests.file(section)
        #expect { _ = try AgentConfiguration.load(path) } throws: { "\($0)".contains(path) && "\($0)".contains(message) }
    }

    @Test func theSystemdDriverIsTheDefaultUnderSystemdWithCgroupV2AndRefusedWhereItCannotWork() throws {
        let unified = CgroupV2Manager(root: "/nonexistent"), hybrid = CgroupV1Manager(hierarchies: ["memory": "/nonexistent"])
        let plain = try AgentConfiguration.load(try AgentNetworkConfigurationTests.file(""))
        #expect(try plain.usesSystemdDriver(manager: unified, systemdBooted: true))
        #expect(try !plain.usesSystemdDriver(manager: unified, systemdBooted: false))
        #expect(try !plain.usesSystemdDriver(manager: hybrid, systemdBooted: true))
        #expect(try plain.podCgroups(manager: unified, cpuCount: 1, memoryBytes: 1 << 30, systemdBooted: true).root == "kubepods.slice")
        let crun = try AgentConfiguration.load(try AgentNetworkConfigurationTests.file("runtime: crun\n"))
        #expect(try !crun.usesSystemdDriver(manager: unified, systemdBooted: true))
        let chosen = try AgentConfiguration.load(try AgentNetworkConfigurationTests.file("cgroupDriver: systemd\n"))
        #expect { _ = try chosen.usesSystemdDriver(manager: unified, systemdBooted: false) } throws: { "\($0)".contains("needs systemd running as init") }
        #expect { _ = try chosen.usesSystemdDriver(manager: hybrid, systemdBooted: true) } throws: { "\($0)".contains("systemd.unified_cgroup_hierarchy=1") }
        let cgroupfs = try AgentConfiguration.load(try AgentNetworkConfigurationTests.file("cgroupDriver: cgroupfs\n"))
        #expect(try !cgroupfs.usesSystemdDriver(manager: unified, systemdBooted: true))
    }

    @Test func systemdSlicesAndScopesAreNamedAsTheKubeletAndRuncNameThem() throws {
        let root = NSTemporaryDirectory() + "slices-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let cgroups = PodCgroups(manager: CgroupV2Manager(root: root), nodeLimits: nil, podPidsLimit: nil, systemd: SystemdUnits())
        let uid = "0f6c2a1e-5b7d-4c1a-9e3f-2d4b6a8c0e1f", escaped = "0f6c2a1e_5b7d_4c1a_9e3f_2d4b6a8c0e1f"
        let burstable = Self.pod([Self.container("a", requests: ["cpu": "1"])], uid: uid)
        let path = cgroups.podPath(burstable)
        #expect(path == "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod\(escaped).slice")
        #expect(try SystemdUnits.slicePath("kubepods-burstable-pod\(escaped).slice") == path)
        #expect(cgroups.podPath(Self.pod([Self.container("a", requests: ["cpu": "1", "memory": "1Gi"], limits: ["cpu": "1", "memory": "1Gi"])], uid: uid))
            == "kubepods.slice/kubepods-pod\(escaped).slice")
        #expect(cgroups.podPath(Self.pod([Self.container("a")], uid: uid)) == "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod\(escaped).slice")
        let cgroupsPath = cgroups.containerCgroupsPath(podPath: path, id: "\(uid)-a-0")
        #expect(cgroupsPath == "kubepods-burstable-pod\(escaped).slice:iotkube:\(uid)-a-0")
        #expect(SystemdUnits.isSystemdForm(cgroupsPath) && !SystemdUnits.isSystemdForm("/kubepods/pod1/c") && !SystemdUnits.isSystemdForm("a/b.slice:x:y"))
        let scope = try SystemdUnits.scope(cgroupsPath: cgroupsPath)
        #expect(scope.unit == "iotkube-\(uid)-a-0.scope" && scope.path == path + "/iotkube-\(uid)-a-0.scope")
        // The sweep finds pods by their slices (dashes back from underscores).
        for directory in [path, "kubepods.slice/kubepods-pod\(escaped)x.slice", "kubepods.slice/kubepods-besteffort.slice/other.slice"] {
            try FileManager.default.createDirectory(atPath: root + "/" + directory, withIntermediateDirectories: true)
        }
        #expect(cgroups.podUIDs() == [uid, uid + "x"])
        // Names that would leave the tree, or clash once dashes are underscores, are refused.
        for hostile in ["a--b.slice", "-a.slice", "a-.slice", "../x.slice", "a/b.slice", "a.scope", "a b.slice", "cpu.slice", "_a.slice", ".a.slice", "bpf-firewall.slice"] {
            #expect(throws: RuntimeError.self) { try SystemdUnits.slicePath(hostile) }
        }
        for hostile in ["x.slice:iotkube", "x.slice:io/kube:c", "x.slice::c", "x.slice:a:..", "x.slice:a:b:c", "../x.slice:a:b", "x.slice:_a:b"] {
            #expect(throws: RuntimeError.self) { try SystemdUnits.scope(cgroupsPath: hostile) }
        }
        #expect(throws: RuntimeError.self) { try cgroups.prepare(Self.pod([Self.container("a")], uid: "a_b")) }
        // Nor does removing (or measuring) a pod with such a UID reach the other pod's slice.
        let other = root + "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-poda_b.slice"
        try FileManager.default.createDirectory(atPath: other, withIntermediateDirectories: true)
        cgroups.remove(uid: "a_b")
        #expect(FileManager.default.fileExists(atPath: other))
        #expect(cgroups.statistics(Self.pod([Self.container("a")], uid: "a_b")) == nil)
    }

    @Test func systemdGetsTheLimitsTheCgroupFilesGet() {
        var resources = RuntimeSpec.Resources()
        resources.memory = RuntimeSpec.Resources.Memory(limit: 50_331_648)
        var cpu = RuntimeSpec.Resources.CPU()
        cpu.shares = 256
        cpu.quota = 25_000
        cpu.period = 100_000
        resources.cpu = cpu
        resources.pids = RuntimeSpec.Resources.Pids(limit: 100)
        let properties = Dictionary(uniqueKeysWithValues: SystemdUnits.resourceProperties(resources).map { ($0.name, $0.value) })
        #expect(properties["MemoryMax"] == .uint64(50_331_648))
        #expect(properties["CPUWeight"] == .uint64(CgroupV2Manager.weight(fromShares: 256)))
        #expect(properties["CPUQuotaPerSecUSec"] == .uint64(250_000) && properties["CPUQuotaPeriodUSec"] == .uint64(100_000))
        #expect(properties["TasksMax"] == .uint64(100))
        // systemd keeps whole percents: rounded up (as runc does), never below the quota.
        cpu.quota = 1_500
        resources.cpu = cpu
        #expect(SystemdUnits.resourceProperties(resources).first { $0.name == "CPUQuotaPerSecUSec" }?.value == .uint64(20_000))
        cpu.quota = 100_000
        cpu.period = 300_000
        resources.cpu = cpu
        #expect(SystemdUnits.resourceProperties(resources).first { $0.name == "CPUQuotaPerSecUSec" }?.value == .uint64(340_000))
        cpu.period = 100_000
        // Swap as the file gets it (OCI's is memory+swap); no process limit is infinity.
        resources.memory?.swap = 50_331_648
        resources.pids = nil
        let more = Dictionary(uniqueKeysWithValues: SystemdUnits.resourceProperties(resources).map { ($0.name, $0.value) })
        #expect(more["MemorySwapMax"] == .uint64(0) && more["TasksMax"] == .uint64(.max))
        // No quota is infinity; a hostile quota saturates instead of trapping.
        cpu.quota = -1
        resources.cpu = cpu
        #expect(SystemdUnits.resourceProperties(resources).first { $0.name == "CPUQuotaPerSecUSec" }?.value == .uint64(.max))
        cpu.quota = .max
        resources.cpu = cpu
        #expect(SystemdUnits.resourceProperties(resources).first { $0.name == "CPUQuotaPerSecUSec" }?.value == .uint64(.max / 1_000_000))
        // A hostile swap over an unlimited (negative) limit neither traps nor wraps.
        #expect(SystemdUnits.swapAlone(swap: .max, limit: -2) == .max && SystemdUnits.swapAlone(swap: 10, limit: 50) == 0
            && SystemdUnits.swapAlone(swap: 80, limit: 50) == 30)
    }

    @Test func memoryQoSGivesContainersMinAndHighAsTheKubeletComputesThem() {
        let burstable = Self.container("a", requests: ["memory": "64Mi"], limits: ["memory": "128Mi"])
        #expect(ContainerSpecBuilder.memoryQoS(burstable, factor: 0.9, allocatableMemory: 1 << 30, pageSize: 4096)
            == ["memory.min": "67108864", "memory.high": "127504384"])
        // Without a limit the ceiling is node allocatable; with neither request nor limit, nothing.
        #expect(ContainerSpecBuilder.memoryQoS(Self.container("a", requests: ["memory": "64Mi"]), factor: 0.9, allocatableMemory: 1 << 30, pageSize: 4096)
            == ["memory.min": "67108864", "memory.high": "973078528"])
        #expect(ContainerSpecBuilder.memoryQoS(Self.container("a"), factor: 0.9, allocatableMemory: 1 << 30, pageSize: 4096).isEmpty)
        // Request equal to limit (Guaranteed): protected, never throttled.
        #expect(ContainerSpecBuilder.memoryQoS(Self.container("a", requests: ["memory": "1Gi"], limits: ["memory": "1Gi"]), factor: 0.9, allocatableMemory: 1 << 32, pageSize: 4096)
            == ["memory.min": "1073741824"])
        // A limit that is only a request (the API server's defaulting) is the request.
        #expect(ContainerSpecBuilder.memoryQoS(Self.container("a", limits: ["memory": "1Gi"]), factor: 0.9, allocatableMemory: 1 << 32, pageSize: 4096)
            == ["memory.min": "1073741824"])
        // Hostile sizes neither trap nor wrap.
        let huge = Self.container("a", requests: ["memory": "1"], limits: ["memory": "8Ei"])
        #expect(ContainerSpecBuilder.memoryQoS(huge, factor: 1, allocatableMemory: .max, pageSize: 4096)["memory.high"].flatMap { Int64($0) }.map { $0 > 0 } ?? true)
    }

    @Test func memoryQoSProtectsPodsAndTiersByTheirRequests() throws {
        let recorder = RecordingCgroupManager()
        let cgroups = PodCgroups(manager: recorder, nodeLimits: nil, podPidsLimit: nil, memoryQoS: 0.9)
        func read(_ path: String) -> String? { recorder.written(path)?.unified?["memory.min"] }
        let burstable = try cgroups.prepare(Self.pod([Self.container("a", requests: ["memory": "64Mi"])], uid: "b"))
        let guaranteed = try cgroups.prepare(Self.pod([Self.container("a", requests: ["cpu": "1", "memory": "128Mi"], limits: ["cpu": "1", "memory": "128Mi"])], uid: "g"))
        _ = try cgroups.prepare(Self.pod([Self.container("a")], uid: "e"))
        #expect(read(burstable) == "67108864" && read(guaranteed) == "134217728")
        #expect(read("kubepods") == "201326592" && read("kubepods/burstable") == "67108864")
        cgroups.remove(uid: "b")
        #expect(read("kubepods") == "134217728" && read("kubepods/burstable") == "0")
        let settings = try AgentConfiguration.load(try AgentNetworkConfigurationTests.file("memoryQoS: true\nmemoryThrottlingFactor: 0.8\n"))
        #expect(try settings.podCgroups(manager: recorder, cpuCount: 1, memoryBytes: 1 << 30, systemdBooted: false).memoryQoS == 0.8)
        #expect { _ = try settings.podCgroups(manager: CgroupV1Manager(hierarchies: ["memory": "/nonexistent"]), cpuCount: 1, memoryBytes: 1 << 30) } throws: {
            "\($0)".contains("memoryQoS: needs cgroup v2")
        }
    }

    @Test func kubepodsGetsCapacityLessBothReservationsAndAllocatableShowsThem() throws {
        let path = try AgentNetworkConfigurationTests.file("systemReserved: {memory: 256Mi, cpu: 500m}\nkubeReserved: {memory: 128Mi}\ncgroupRoot: /edge\n")
        let configuration = try AgentConfiguration.load(path)
        let cgroups = try configuration.podCgroups(manager: CgroupV1Manager(hierarchies: ["memory": "/nonexistent", "cpu": "/nonexistent"]), cpuCount: 4, memoryBytes: 1 << 30)
        #expect(cgroups.root == "edge/kubepods")
        #expect(cgroups.nodeLimits?.memory?.limit == (1 << 30) - (384 << 20))
        #expect(cgroups.nodeLimits?.cpu?.shares == PodCgroups.shares(milliCPU: 3500))
        // Without a memory controller nothing is asked of it; `[]` enforces nothing.
        #expect(try configuration.podCgroups(manager: CgroupV1Manager(hierarchies: ["cpu": "/nonexistent"]), cpuCount: 4, memoryBytes: 1 << 30).nodeLimits?.memory == nil)
        var open = configuration
        open.enforceNodeAllocatable = []
        #expect(try open.podCgroups(manager: CgroupV1Manager(hierarchies: ["memory": "/nonexistent"]), cpuCount: 4, memoryBytes: 1 << 30).nodeLimits == nil)
        #expect(configuration.reserved["memory"] == (try Quantity(parsing: "384Mi")))
    }

    @Test func reservationsLeavingNoMemoryOrAProcessLimitWithoutItsControllerAreRefused() throws {
        let greedy = try AgentConfiguration.load(try AgentNetworkConfigurationTests.file("systemReserved: {memory: 1Gi}\n"))
        #expect { _ = try greedy.podCgroups(manager: CgroupV1Manager(hierarchies: ["memory": "/x"]), cpuCount: 1, memoryBytes: 1 << 30) } throws: {
            "\($0)".contains("leave nothing of this board's 1Gi for pods")
        }
        let limited = try AgentConfiguration.load(try AgentNetworkConfigurationTests.file("podPidsLimit: 100\n"))
        #expect { _ = try limited.podCgroups(manager: CgroupV1Manager(hierarchies: ["memory": "/x"]), cpuCount: 1, memoryBytes: 1 << 30) } throws: {
            "\($0)".contains("podPidsLimit: the pids cgroup controller is not available")
        }
    }

}

/// Eviction ranks a pod by its pod cgroup (everything charged to the pod) when it has one.
@Suite(.ownThread, .enabled(if: getuid() == 0, "needs root (the worker bench mounts)"))
struct PodCgroupUsageTests {
    @Test func aPodsUsageIsItsPodCgroups() throws {
        let bench = try PodWorkerTests.Bench(blockingPulls: false)
        defer { bench.tearDown() }
        let root = bench.base + "/cgroup"
        let pod = try bench.pod(uid: "measured")
        let directory = root + "/kubepods/besteffort/podmeasured"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for (file, text) in [("memory.current", "5000000\n"), ("memory.stat", "anon 10\ninactive_file 1000000\n"), ("pids.current", "7\n")] {
            try text.write(toFile: directory + "/" + file, atomically: true, encoding: .utf8)
        }
        var host = bench.host
        #expect(PodResourceUsage.measure(pod, host: host, withStorage: false).memoryBytes == 0, "no container runs, no pod cgroup known")
        host.cgroups = PodCgroups(manager: CgroupV2Manager(root: root), nodeLimits: nil, podPidsLimit: nil)
        let usage = PodResourceUsage.measure(pod, host: host, withStorage: false)
        #expect(usage.memoryBytes == 4_000_000 && usage.processes == 7)
    }
}

/// A cgroup v2 host that only records what parents get (the values, not the kernel's part).
final class RecordingCgroupManager: CgroupManager, @unchecked Sendable {
    private let lock = NSLock()
    private var parents: [String: RuntimeSpec.Resources] = [:]

    func written(_ path: String) -> RuntimeSpec.Resources? { lock.withLock { parents[path] } }

    var summary: String { "recording" }
    var containerMountLayout: CgroupMountLayout { .unified }
    var controllerNames: Set<String> { ["cpu", "memory", "pids"] }
    func create(_ path: String, resources: RuntimeSpec.Resources?) throws(RuntimeError) -> [String] { [] }
    func statistics(_ path: String) -> CgroupStatistics { CgroupStatistics() }
    func kill(_ path: String) {}
    func remove(_ path: String) { lock.withLock { parents[path] = nil } }
    func prepareParent(_ path: String, resources: RuntimeSpec.Resources?) throws(RuntimeError) {
        lock.withLock { parents[path] = resources ?? RuntimeSpec.Resources() }
    }
    func exists(_ path: String) -> Bool { lock.withLock { parents[path] != nil } }
    func procsFiles(_ path: String) -> [String] { [] }
    func children(_ path: String) -> [String] { [] }
    func memoryEventsFile(_ path: String) -> String? { nil }
}
