#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import KubeModel
import Runtime
import Synchronization

/// Per-container CPU and memory of the running containers, from their cgroups, as
/// metrics-server reports them: CPU as the rate between two samples (a container appears from
/// its second sample), memory as the working set. Feeds the PodMetrics the heartbeat pushes
/// (`kubectl top pod`) and the endpoint's `/metrics/resource`.
public final class PodMetricsSampler: Sendable {
    /// One container's usage at one instant.
    public struct ContainerSample: Sendable, Equatable {
        public var namespace: String
        public var pod: String
        public var container: String
        /// The pod's UID ("" when the container does not say).
        public var podUID: String = ""
        /// Cumulative CPU time.
        public var cpuMicroseconds: Int64
        public var memoryWorkingSetBytes: Int64
        /// Monotonic nanoseconds when sampled.
        public var sampledAt: UInt64
    }

    let runtime: any PodRuntime
    /// The previous sample of each container id (for CPU rates).
    private let previous = Mutex<[String: ContainerSample]>([:])

    public init(runtime: any PodRuntime) { self.runtime = runtime }

    /// The running containers now, keyed by container id.
    public func sample() -> [String: ContainerSample] {
        var samples: [String: ContainerSample] = [:]
        for state in runtime.list() where state.status == .running {
            let annotations = state.annotations ?? [:]
            guard let namespace = annotations["io.kubernetes.pod.namespace"], let pod = annotations["io.kubernetes.pod.name"],
                  let container = annotations["io.kubernetes.container.name"], let record = try? runtime.record(id: state.id) else { continue }
            let statistics = runtime.statistics(of: record)
            samples[state.id] = ContainerSample(
                namespace: namespace, pod: pod, container: container, cpuMicroseconds: max(0, statistics.cpuUsageMicroseconds ?? 0),
                memoryWorkingSetBytes: max(0, statistics.memoryWorkingSetBytes ?? statistics.memoryBytes ?? 0),
                sampledAt: Self.monotonicNanoseconds())
            samples[state.id]?.podUID = annotations["io.kubernetes.pod.uid"] ?? ""
        }
        return samples
    }

    /// PodMetrics for every pod whose containers all have a previous sample; remembers this
    /// sample for the next call.
    public func podMetrics(now: Timestamp) -> [PodMetrics] {
        let current = sample()
        let earlier = previous.withLock { previous in
            defer { previous = current }
            return previous
        }
        var pods: [String: (namespace: String, name: String, containers: [ContainerMetrics], complete: Bool, window: UInt64)] = [:]
        for (id, sample) in current.sorted(by: { $0.key < $1.key }) {
            let key = sample.namespace + "/" + sample.pod
            var entry = pods[key] ?? (sample.namespace, sample.pod, [], true, 0)
            if let before = earlier[id], sample.sampledAt > before.sampledAt, sample.cpuMicroseconds >= before.cpuMicroseconds {
                let elapsed = sample.sampledAt - before.sampledAt
                // Millicores: CPU time over the time elapsed, in floating point (a bogus
                // counter cannot overflow), bounded.
                let milliCores = Double(sample.cpuMicroseconds - before.cpuMicroseconds) * 1_000_000 / Double(elapsed)
                entry.containers.append(ContainerMetrics(name: sample.container, usage: [
                    "cpu": Quantity(milli: Int64(min(max(0, milliCores.rounded()), 1e15))), "memory": .bytes(sample.memoryWorkingSetBytes),
                ]))
                entry.window = max(entry.window, elapsed)
            } else {
                entry.complete = false
            }
            pods[key] = entry
        }
        return pods.values.filter { $0.complete && !$0.containers.isEmpty }.sorted { ($0.namespace, $0.name) < ($1.namespace, $1.name) }.map { pod in
            let seconds = max(1, (pod.window + 500_000_000) / 1_000_000_000)
            return PodMetrics(name: pod.name, namespace: pod.namespace, timestamp: now, window: "\(seconds)s",
                              containers: pod.containers.sorted { $0.name < $1.name })
        }
    }
}

extension PodMetricsSampler {
    static func monotonicNanoseconds() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }
}
