import KubeModel

/// The kubelet's order of eviction for a starved resource, and the message an evicted pod
/// carries. Memory and storage: pods using more than they requested first (BestEffort pods
/// request nothing), then lower priority, then the larger use above the request. Pids: lower
/// priority, then more tasks.
public enum EvictionRanking {
    /// Pods in the order they are evicted for `signal`.
    public static func rank(_ pods: [PodResourceUsage], for signal: EvictionSignal) -> [PodResourceUsage] {
        func priority(_ usage: PodResourceUsage) -> Int32 { usage.pod.spec?.priority ?? 0 }
        switch signal {
        case .pidAvailable:
            return pods.sorted { (priority($0), -$0.processes, $0.pod.metadata.uid ?? "") < (priority($1), -$1.processes, $1.pod.metadata.uid ?? "") }
        default:
            return pods.sorted { lhs, rhs in
                let (left, right) = (excess(lhs, signal), excess(rhs, signal))
                let (leftOver, rightOver) = (left > 0 ? 0 : 1, right > 0 ? 0 : 1)
                return (leftOver, priority(lhs), -left, lhs.pod.metadata.uid ?? "") < (rightOver, priority(rhs), -right, rhs.pod.metadata.uid ?? "")
            }
        }
    }

    /// Use minus request of the signal's resource (requests from the app containers' specs).
    static func excess(_ usage: PodResourceUsage, _ signal: EvictionSignal) -> Int64 {
        switch signal {
        case .memoryAvailable, .memoryPressure: return usage.memoryBytes.subtractingSaturated(request(usage.pod, "memory"))
        case .nodefsAvailable, .imagefsAvailable: return usage.diskBytes.subtractingSaturated(request(usage.pod, "ephemeral-storage"))
        case .nodefsInodesFree, .imagefsInodesFree: return usage.inodes
        case .pidAvailable: return usage.processes
        }
    }

    static func request(_ pod: Pod, _ resource: String) -> Int64 {
        (pod.spec?.containers ?? []).map { $0.resources?.requests?[resource]?.value ?? $0.resources?.limits?[resource]?.value ?? 0 }.saturatingSum()
    }

    /// Pods eviction never picks: static (and mirror) pods and pods of system-critical priority
    /// — the board's own services.
    public static func isCritical(_ pod: Pod) -> Bool {
        let source = pod.metadata.annotations?["kubernetes.io/config.source"]
        return (source != nil && source != "api") || pod.metadata.annotations?["kubernetes.io/config.mirror"] != nil
            || (pod.spec?.priority ?? 0) >= 2_000_000_000
    }

    /// The kubelet's message: "The node was low on resource: memory. Threshold quantity: 100Mi,
    /// available: 80Mi. Container app was using 300Mi, request is 0, has larger consumption of memory."
    public static func message(for usage: PodResourceUsage, threshold: EvictionThreshold, reading: NodeResourceObservation.Reading) -> String {
        let resource = threshold.signal.resource
        func shown(_ value: Int64) -> String { threshold.signal.isBytes ? Quantity.bytes(value).description : "\(value)" }
        var text = "The node was low on resource: \(resource). Threshold quantity: \(threshold.displayed(capacity: reading.capacity)), available: \(shown(reading.available)). "
        if threshold.signal == .memoryPressure {
            text = "The node was low on resource: memory. Memory was fully stalled \(stalledPercent(reading))% of the last 10 s, threshold \(stallThreshold(threshold))%. "
        }
        guard threshold.signal.isMemory || threshold.signal == .nodefsAvailable || threshold.signal == .imagefsAvailable else { return text }
        let requestName = threshold.signal.isMemory ? "memory" : "ephemeral-storage"
        for container in usage.containers {
            let used = threshold.signal.isMemory ? container.memoryBytes : container.diskBytes
            let spec = ((usage.pod.spec?.containers ?? []) + (usage.pod.spec?.initContainers ?? [])).first { $0.name == container.name }
            let request = spec?.resources?.requests?[requestName]?.value ?? spec?.resources?.limits?[requestName]?.value ?? 0
            guard used > request else { continue }
            text += "Container \(container.name) was using \(Quantity.bytes(used).description), request is \(request == 0 ? "0" : Quantity.bytes(request).description), has larger consumption of \(resource). "
        }
        return text
    }

    /// A memory.pressure reading as the stalled percentage ("34.5").
    static func stalledPercent(_ reading: NodeResourceObservation.Reading) -> String {
        EvictionThreshold.Value.percent(Double(reading.capacity - reading.available) / 10_000)
    }

    /// A memory.pressure threshold as the stalled percentage it stands for.
    static func stallThreshold(_ threshold: EvictionThreshold) -> String {
        guard case .percentage(let fraction) = threshold.value else { return "?" }
        return EvictionThreshold.Value.percent(((1 - fraction) * 10_000).rounded() / 10_000)
    }
}
