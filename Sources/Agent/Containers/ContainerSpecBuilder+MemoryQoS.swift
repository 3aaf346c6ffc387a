#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import KubeModel

extension ContainerSpecBuilder {
    /// The kubelet's MemoryQoS for a container (cgroup v2): `memory.min` = its memory request;
    /// `memory.high` = request + factor × (limit, or node allocatable without one, − request),
    /// rounded down to whole pages, when that is above the request (none when request equals
    /// limit). Reclaim then throttles it before the OOM killer acts at the limit.
    static func memoryQoS(_ container: Container, factor: Double, allocatableMemory: Int64,
                          pageSize: Int64 = Int64(sysconf(Int32(_SC_PAGESIZE)))) -> [String: String] {
        let requests = container.resources?.requests ?? [:], limits = container.resources?.limits ?? [:]
        let request = max(0, (requests["memory"] ?? limits["memory"])?.value ?? 0)
        let limit = max(0, limits["memory"]?.value ?? 0)
        var values: [String: String] = [:]
        if request > 0 { values["memory.min"] = String(request) }
        let ceiling = limit > 0 ? limit : allocatableMemory
        guard request != limit, ceiling > 0, pageSize > 0, factor > 0, factor <= 1 else { return values }
        // In floating point, as the kubelet computes it; every value fits (at most 2^63 bytes).
        let high = (Double(request) + (Double(ceiling) - Double(request)) * factor) / Double(pageSize)
        guard high.isFinite, high > 0, high < Double(Int64.max / pageSize) else { return values }
        let bytes = Int64(high.rounded(.down)) * pageSize
        if bytes > request { values["memory.high"] = String(bytes) }
        return values
    }
}
