#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import KubeModel

/// The kubelet's admission of a pod bound to this node (pods bound without the scheduler,
/// static pods): it must fit in what the node has left of its allocatable pods, CPU and memory
/// after the pods already admitted. A rejected pod is not run; its status says why.
public enum PodAdmission {
    public struct Rejection: Sendable, Hashable {
        public var reason: String
        public var message: String
    }

    /// `conditions`: the node's pressure conditions now; `nodeLabels`: its labels from the API
    /// (nil while unknown: the nodeSelector is then not checked — the scheduler did).
    /// `allowedHostPaths`: hostPath volumes must lie under one of these (nil: anywhere).
    /// `holdsDevices`: the pod was given its devices before (an agent restart): they are not
    /// counted again against what is present now (a USB device may not be back yet at boot).
    public static func check(_ pod: Pod, admitted: [Pod], allocatable: [String: Quantity], conditions: Set<String> = [],
                             nodeLabels: [String: String]? = nil, allowedHostPaths: [String]? = nil, holdsDevices: Bool = false) -> Rejection? {
        if let rejection = pressureRejection(pod, conditions: conditions) { return rejection }
        if let allowedHostPaths {
            for volume in pod.spec?.volumes ?? [] {
                guard let path = volume.hostPath?.path else { continue }
                // Symbolic links are followed where the path exists: a link inside an allowed
                // directory must not lead out of it.
                let resolved = resolvedPath(path) ?? path
                if allowedHostPaths.contains(where: { isWithin(path, $0) }), allowedHostPaths.contains(where: { isWithin(resolved, resolvedPath($0) ?? $0) }) { continue }
                let allowed = allowedHostPaths.isEmpty ? "none are allowed" : "allowed: \(allowedHostPaths.joined(separator: ", "))"
                return Rejection(reason: "HostPathNotAllowed",
                                 message: "Pod was rejected: hostPath volume \"\(volume.name)\" uses \(path), which the node's allowedHostPaths do not include (\(allowed))")
            }
        }
        if let os = pod.spec?.os?.name, os != "linux" {
            return Rejection(reason: "PodOSNotSupported", message: "Pod was rejected: Failed to admit pod as the OS field doesn't match node OS")
        }
        if let selector = pod.spec?.nodeSelector, !selector.isEmpty, let nodeLabels,
           selector.contains(where: { nodeLabels[$0.key] != $0.value }) {
            let missing = selector.filter { nodeLabels[$0.key] != $0.value }.map { "\($0.key)=\($0.value)" }.sorted().joined(separator: ",")
            return Rejection(reason: "NodeAffinity", message: "Pod was rejected: Predicate NodeAffinity failed: the node has no label \(missing)")
        }
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
            return (total.milliCPU.addingSaturated(requests.milliCPU), total.memory.addingSaturated(requests.memory))
        }
        if request.milliCPU > 0, let cpu = allocatable["cpu"]?.milliValue, used.milliCPU.addingSaturated(request.milliCPU) > cpu {
            return rejection("cpu", requested: request.milliCPU, used: used.milliCPU, capacity: cpu)
        }
        if request.memory > 0, let memory = allocatable["memory"]?.value, used.memory.addingSaturated(request.memory) > memory {
            return rejection("memory", requested: request.memory, used: used.memory, capacity: memory)
        }
        // Extended resources: those the node advertises, and every device class name (this node
        // owns that domain: a class it does not have is none). Others may be a scheduler
        // extender's and are left out, as the kubelet does.
        for (resource, requested) in pod.extendedRequests.sorted(by: { $0.key < $1.key }) where !holdsDevices {
            guard allocatable[resource] != nil || resource.hasPrefix(DeviceClass.resourcePrefix) else { continue }
            let capacity = allocatable[resource]?.value ?? 0
            let inUse = admitted.map { $0.extendedRequests[resource] ?? 0 }.saturatingSum()
            if inUse.addingSaturated(requested) > capacity { return rejection(resource, requested: requested, used: inUse, capacity: capacity) }
        }
        return nil
    }

    /// Whether `path` is `prefix` or below it, by whole path components after resolving `.` and
    /// `..` lexically ("/srv/data/x" is within "/srv/data"; "/srv/database" and "/srv/data/../etc" are not).
    static func isWithin(_ path: String, _ prefix: String) -> Bool {
        func components(_ text: String) -> [Substring] {
            var result: [Substring] = []
            for part in text.split(separator: "/") where part != "." {
                if part == ".." { _ = result.popLast() } else { result.append(part) }
            }
            return result
        }
        let (inside, base) = (components(path), components(prefix))
        return inside.count >= base.count && Array(inside.prefix(base.count)) == base
    }

    static func resolvedPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// The eviction manager's admission: under memory pressure no BestEffort pod (unless it
    /// tolerates the memory-pressure taint), under any other pressure no pod at all; critical
    /// pods (static, system-critical priority) are always admitted.
    static func pressureRejection(_ pod: Pod, conditions: Set<String>) -> Rejection? {
        guard !conditions.isEmpty, !EvictionRanking.isCritical(pod) else { return nil }
        if conditions == ["MemoryPressure"] {
            if PodStatusBuilder.qosClass(pod) != .bestEffort { return nil }
            let tolerated = pod.spec?.tolerations?.contains { toleration in
                (toleration.key == "node.kubernetes.io/memory-pressure" || (toleration.key == nil && toleration.operator == .exists))
                    && (toleration.effect == nil || toleration.effect == .all || toleration.effect == .noSchedule)
            } ?? false
            if tolerated { return nil }
        }
        return Rejection(reason: "Evicted", message: "Pod was rejected: The node had condition: [\(conditions.sorted().joined(separator: " "))]. ")
    }
}
