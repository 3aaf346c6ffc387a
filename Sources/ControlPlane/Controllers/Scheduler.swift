import KubeModel

/// Picks a node for a pod: Ready, schedulable, matching the pod's nodeSelector and required node
/// affinity, tolerating its
/// taints and with room for its requests. Pure logic; ``SchedulerService`` runs it.
struct Scheduler {
    /// What a placement attempt found.
    enum Decision: Equatable {
        case bind(String)
        case unschedulable(String)
    }

    static func decide(_ pod: Pod, nodes: [Node], podsByNode: [String: [Pod]]) -> Decision {
        guard !nodes.isEmpty else { return .unschedulable("0/0 nodes are available: no nodes registered.") }
        var reasons: [String: Int] = [:]
        var best: (name: String, freeMilliCPU: Int64)?
        let request = requests(pod)
        for node in nodes {
            guard let name = node.metadata.name else { continue }
            if let reason = rejection(pod, request: request, node: node, running: podsByNode[name] ?? []) {
                reasons[reason, default: 0] += 1
                continue
            }
            let used = (podsByNode[name] ?? []).map { requests($0).milliCPU }.saturatingSum()
            let free = (node.status?.allocatable?["cpu"]?.milliValue ?? 0).subtractingSaturated(used)
            if best == nil || free > best!.freeMilliCPU || (free == best!.freeMilliCPU && name < best!.name) {
                best = (name, free)
            }
        }
        if let best { return .bind(best.name) }
        let summary = reasons.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        return .unschedulable("0/\(nodes.count) nodes are available: \(summary).")
    }

    /// Why `node` cannot take the pod, in the scheduler's wording; nil when it can.
    static func rejection(_ pod: Pod, request: (milliCPU: Int64, memory: Int64), node: Node, running: [Pod]) -> String? {
        let ready = node.status?.conditions?.first { $0.type == "Ready" }?.status == .true
        if !ready { return "node(s) were not ready" }
        if node.spec?.unschedulable == true { return "node(s) were unschedulable" }
        let labels = node.metadata.labels ?? [:]
        for (key, value) in pod.spec?.nodeSelector ?? [:] where labels[key] != value {
            return "node(s) didn't match Pod's node affinity/selector"
        }
        if let required = NodeSelector.required(by: pod.spec?.affinity), !required.matches(labels: labels, name: node.metadata.name ?? "") {
            return "node(s) didn't match Pod's node affinity/selector"
        }
        for taint in node.spec?.taints ?? [] where taint.effect == .noSchedule || taint.effect == .noExecute {
            if !(pod.spec?.tolerations ?? []).contains(where: { tolerates($0, taint) }) {
                return "node(s) had untolerated taint {\(taint.key): \(taint.value ?? "")}"
            }
        }
        let allocatable = node.status?.allocatable ?? [:]
        // Sums saturate: a pod (or node) with absurd amounts is refused, never a trap.
        let runningRequests = running.map { requests($0) }
        let usedCPU = runningRequests.map(\.milliCPU).saturatingSum()
        let usedMemory = runningRequests.map(\.memory).saturatingSum()
        if let pods = allocatable["pods"]?.value, Int64(running.count).addingSaturated(1) > pods { return "Too many pods" }
        if let cpu = allocatable["cpu"]?.milliValue, usedCPU.addingSaturated(request.milliCPU) > cpu { return "Insufficient cpu" }
        if let memory = allocatable["memory"]?.value, usedMemory.addingSaturated(request.memory) > memory { return "Insufficient memory" }
        // Extended resources (devices): a node that does not advertise one has none of it.
        let extended = pod.extendedRequests
        if !extended.isEmpty {
            let used = running.map(\.extendedRequests)
            for name in extended.keys.sorted() {
                let inUse = used.map { $0[name] ?? 0 }.saturatingSum()
                if inUse.addingSaturated(extended[name]!) > (allocatable[name]?.value ?? 0) { return "Insufficient \(name)" }
            }
        }
        return nil
    }

    /// A toleration matches a taint by key (or an empty key with Exists), value and effect.
    static func tolerates(_ toleration: Toleration, _ taint: Taint) -> Bool {
        if let effect = toleration.effect, effect != .all, effect != taint.effect { return false }
        let key = toleration.key ?? ""
        if key.isEmpty { return toleration.operator == .exists }
        guard key == taint.key else { return false }
        return toleration.operator == .exists || (toleration.value ?? "") == (taint.value ?? "")
    }

    /// The pod's effective requests (shared with the agent's admission).
    static func requests(_ pod: Pod) -> (milliCPU: Int64, memory: Int64) { pod.effectiveRequests }
}
