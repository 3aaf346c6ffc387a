import KubeModel

/// The kubelet's admission of a pod bound to this node (pods bound without the scheduler,
/// static pods): it must fit in what the node has left of its allocatable pods, CPU and memory
/// after the pods already admitted. A rejected pod is not run; its status says why.
public enum PodAdmission {
    public struct Rejection: Sendable, Hashable {
        public var reason: String
        public var message: String
    }

    public static func check(_ pod: Pod, admitted: [Pod], allocatable: [String: Quantity]) -> Rejection? {
        func rejection(_ resource: String, requested: Int64, used: Int64, capacity: Int64) -> Rejection {
            Rejection(reason: "OutOf\(resource)",
                      message: "Pod was rejected: Node didn't have enough resource: \(resource), requested: \(requested), used: \(used), capacity: \(capacity)")
        }
        let maxPods = allocatable["pods"]?.value ?? 110
        if Int64(admitted.count) + 1 > maxPods {
            return rejection("pods", requested: 1, used: Int64(admitted.count), capacity: maxPods)
        }
        let request = pod.effectiveRequests
        let used = admitted.reduce((milliCPU: Int64(0), memory: Int64(0))) { total, other in
            let requests = other.effectiveRequests
            return (total.milliCPU + requests.milliCPU, total.memory + requests.memory)
        }
        if request.milliCPU > 0, let cpu = allocatable["cpu"]?.milliValue, used.milliCPU + request.milliCPU > cpu {
            return rejection("cpu", requested: request.milliCPU, used: used.milliCPU, capacity: cpu)
        }
        if request.memory > 0, let memory = allocatable["memory"]?.value, used.memory + request.memory > memory {
            return rejection("memory", requested: request.memory, used: used.memory, capacity: memory)
        }
        return nil
    }
}
