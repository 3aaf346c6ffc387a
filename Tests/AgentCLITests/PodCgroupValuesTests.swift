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
        ("cgroupDriver: systemd\n", "cgroupDriver: systemd is not supported yet"),
        ("cgroupsPerQOS: false\nenforceNodeAllocatable: [pods]\n", "enforceNodeAllocatable: pods needs cgroupsPerQOS"),
        ("cgroupDriver: docker\n", "cgroupDriver: \"docker\" is not cgroupfs"),
        ("enforceNodeAllocatable: [pods, system-reserved]\n", "enforceNodeAllocatable[1]: \"system-reserved\" is not supported"),
        ("podPidsLimit: 0\n", "podPidsLimit (0) must be -1 (none) or 1 to 4194304"),
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
