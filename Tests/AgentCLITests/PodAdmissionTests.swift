import KubeModel
import Testing

@testable import Agent

/// The kubelet's admission: pods, CPU and memory left after the pods already admitted.
@Suite struct PodAdmissionTests {
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
