import Foundation
import IotkubeTestSupport
import KubeModel
import Testing

@testable import Agent

/// The kubelet's admission: pods, CPU and memory left after the pods already admitted.
@Suite(.ownThread) struct PodAdmissionTests {
    static func pod(cpu: String? = nil, memory: String? = nil, initMemory: String? = nil) -> Pod {
        var container = Container(name: "app", image: "busybox")
        var requests: [String: Quantity] = [:]
        if let cpu { requests["cpu"] = Quantity(stringLiteral: cpu) }
        if let memory { requests["memory"] = Quantity(stringLiteral: memory) }
        container.resources = ResourceRequirements()
        container.resources?.requests = requests
        var spec = PodSpec(containers: [container])
        if let initMemory {
            var initContainer = Container(name: "setup", image: "busybox")
            initContainer.resources = ResourceRequirements()
            initContainer.resources?.limits = ["memory": Quantity(stringLiteral: initMemory)]
            spec.initContainers = [initContainer]
        }
        return Pod(metadata: ObjectMeta(name: "p"), spec: spec)
    }

    let allocatable: [String: Quantity] = ["cpu": "2", "memory": "1Gi", "pods": "3"]

    /// Valid quantities that no board has: sums and products saturate instead of stopping the
    /// agent (before, two such pods trapped it, and it trapped again from its checkpoint).
    @Test func absurdRequestsAreRefusedWithoutStoppingTheAgent() throws {
        let huge = "9223372036854775807"
        let admitted = [Self.pod(cpu: huge, memory: "8Ei"), Self.pod(cpu: huge, memory: "8Ei")]
        let rejection = PodAdmission.check(Self.pod(cpu: huge, memory: "8Ei"), admitted: admitted, allocatable: ["cpu": "1e15", "memory": "8Ei", "pods": "110"])
        #expect(rejection?.reason == "OutOfcpu")
        var container = Container(name: "app", image: "busybox")
        container.resources = ResourceRequirements(limits: ["cpu": "100G", "memory": "8Ei"], requests: ["cpu": Quantity(stringLiteral: huge), "memory": "7Ei"])
        let resources = ContainerSpecBuilder.resources(container)
        #expect(resources.cpu?.shares == 262_144 && resources.cpu?.quota == (1 << 44) - 1 && resources.cpu?.period == 100_000)
        var pod = Pod(metadata: ObjectMeta(name: "p"), spec: PodSpec(containers: [container, container]))
        pod.spec?.containers[1].name = "second"
        #expect(ContainerSpecBuilder.oomScoreAdjust(pod, container: container, nodeMemoryCapacity: 1 << 30) == 2)
        #expect(pod.effectiveRequests.milliCPU == Int64.max)
        #expect(EvictionRanking.request(pod, "memory") == Int64.max)
    }

    @Test func fitsUntilTheNodeIsFull() {
        #expect(PodAdmission.check(Self.pod(cpu: "500m", memory: "256Mi"), admitted: [], allocatable: allocatable) == nil)
        let admitted = [Self.pod(cpu: "1500m"), Self.pod(memory: "900Mi")]
        let cpu = PodAdmission.check(Self.pod(cpu: "600m"), admitted: admitted, allocatable: allocatable)
        #expect(cpu?.reason == "OutOfcpu")
        #expect(cpu?.message == "Pod was rejected: Node didn't have enough resource: cpu, requested: 600, used: 1500, capacity: 2000")
        // An init container's limit counts when it is larger than the app containers' sum.
        #expect(PodAdmission.check(Self.pod(memory: "10Mi", initMemory: "200Mi"), admitted: admitted, allocatable: allocatable)?.reason == "OutOfmemory")
        #expect(PodAdmission.check(Self.pod(memory: "100Mi"), admitted: admitted, allocatable: allocatable) == nil)
        #expect(PodAdmission.check(Self.pod(), admitted: admitted + [Self.pod()], allocatable: allocatable)?.reason == "OutOfpods")
    }
}

/// Admission under node pressure and against the node's labels.
@Suite(.ownThread) struct PodAdmissionPressureTests {
    let allocatable: [String: Quantity] = ["cpu": "2", "memory": "1Gi", "pods": "10"]

    @Test func memoryPressureRefusesOnlyBestEffortPods() {
        let bestEffort = PodAdmissionTests.pod()
        let burstable = PodAdmissionTests.pod(memory: "64Mi")
        let refused = PodAdmission.check(bestEffort, admitted: [], allocatable: allocatable, conditions: ["MemoryPressure"])
        #expect(refused?.reason == "Evicted")
        #expect(refused?.message == "Pod was rejected: The node had condition: [MemoryPressure]. ")
        #expect(PodAdmission.check(burstable, admitted: [], allocatable: allocatable, conditions: ["MemoryPressure"]) == nil)
        // A BestEffort pod tolerating the memory-pressure taint is admitted.
        var tolerant = bestEffort
        tolerant.spec?.tolerations = [Toleration(key: "node.kubernetes.io/memory-pressure", operator: .exists, effect: .noSchedule)]
        #expect(PodAdmission.check(tolerant, admitted: [], allocatable: allocatable, conditions: ["MemoryPressure"]) == nil)
    }

    @Test func diskAndPIDPressureRefuseEveryPodButCriticalOnes() {
        let burstable = PodAdmissionTests.pod(memory: "64Mi")
        let refused = PodAdmission.check(burstable, admitted: [], allocatable: allocatable, conditions: ["DiskPressure", "MemoryPressure"])
        #expect(refused?.message == "Pod was rejected: The node had condition: [DiskPressure MemoryPressure]. ")
        #expect(PodAdmission.check(burstable, admitted: [], allocatable: allocatable, conditions: ["PIDPressure"])?.reason == "Evicted")
        var staticPod = burstable
        staticPod.metadata.annotations = ["kubernetes.io/config.source": "file"]
        #expect(PodAdmission.check(staticPod, admitted: [], allocatable: allocatable, conditions: ["DiskPressure"]) == nil)
        var critical = burstable
        critical.spec?.priority = 2_000_001_000
        #expect(PodAdmission.check(critical, admitted: [], allocatable: allocatable, conditions: ["DiskPressure"]) == nil)
    }

    @Test func nodeSelectorIsCheckedAgainstTheNodesLabels() {
        var pod = PodAdmissionTests.pod()
        pod.spec?.nodeSelector = ["disktype": "ssd", "kubernetes.io/os": "linux"]
        let labels = ["kubernetes.io/os": "linux", "disktype": "sd"]
        let refused = PodAdmission.check(pod, admitted: [], allocatable: allocatable, nodeLabels: labels)
        #expect(refused?.reason == "NodeAffinity")
        #expect(refused?.message.contains("disktype=ssd") == true)
        #expect(PodAdmission.check(pod, admitted: [], allocatable: allocatable, nodeLabels: labels.merging(["disktype": "ssd"]) { $1 }) == nil)
        // Labels not known yet (the API has not answered): the scheduler's choice stands.
        #expect(PodAdmission.check(pod, admitted: [], allocatable: allocatable, nodeLabels: nil) == nil)
        var windows = PodAdmissionTests.pod()
        windows.spec?.os = PodOS(name: "windows")
        #expect(PodAdmission.check(windows, admitted: [], allocatable: allocatable)?.reason == "PodOSNotSupported")
    }
}

/// hostPath volumes against the node's allowedHostPaths.
@Suite(.ownThread) struct HostPathAdmissionTests {
    static func pod(hostPath: String) -> Pod {
        var pod = PodAdmissionTests.pod()
        var volume = Volume(name: "data")
        volume.hostPath = HostPathVolumeSource(path: hostPath)
        pod.spec?.volumes = [volume]
        return pod
    }

    @Test func onlyPathsUnderTheAllowedOnesAreAdmitted() throws {
        let allowedBase = NSTemporaryDirectory() + "iotkube-allowed-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: allowedBase + "/data", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: allowedBase) }
        // A link inside the allowed directory that leads out of it.
        try FileManager.default.createSymbolicLink(atPath: allowedBase + "/data/escape", withDestinationPath: "/etc")
        let allowed = [allowedBase + "/data", "/dev/i2c-1"]
        let allocatable: [String: Quantity] = ["pods": "10"]
        func check(_ path: String) -> PodAdmission.Rejection? {
            PodAdmission.check(Self.pod(hostPath: path), admitted: [], allocatable: allocatable, allowedHostPaths: allowed)
        }
        #expect(check(allowedBase + "/data") == nil)
        #expect(check(allowedBase + "/data/sub/file") == nil)
        #expect(check("/dev/i2c-1") == nil)
        let refused = check("/etc")
        #expect(refused?.reason == "HostPathNotAllowed")
        #expect(refused?.message.contains("hostPath volume \"data\" uses /etc") == true)
        #expect(check(allowedBase + "/database")?.reason == "HostPathNotAllowed")
        #expect(check(allowedBase + "/data/../../etc")?.reason == "HostPathNotAllowed")
        #expect(check(allowedBase + "/data/escape")?.reason == "HostPathNotAllowed")
        #expect(check("/dev/i2c-10")?.reason == "HostPathNotAllowed")
        // Without the setting any path goes; an empty list allows none.
        #expect(PodAdmission.check(Self.pod(hostPath: "/etc"), admitted: [], allocatable: allocatable) == nil)
        #expect(PodAdmission.check(Self.pod(hostPath: "/srv"), admitted: [], allocatable: allocatable, allowedHostPaths: [])?.message.contains("none are allowed") == true)
    }
}
