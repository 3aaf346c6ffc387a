extension Pod {
    /// The pod's effective requests (a limit stands in for a missing request): the larger of the
    /// sum over the app containers and any single init container. Sums saturate at Int64.max: a
    /// pod asking for absurd amounts fits nowhere instead of stopping the program.
    public var effectiveRequests: (milliCPU: Int64, memory: Int64) {
        func request(_ container: Container, _ resource: String) -> Quantity? {
            container.resources?.requests?[resource] ?? container.resources?.limits?[resource]
        }
        let containers = spec?.containers ?? []
        var cpu = containers.map { request($0, "cpu")?.milliValue ?? 0 }.saturatingSum()
        var memory = containers.map { request($0, "memory")?.value ?? 0 }.saturatingSum()
        for initContainer in spec?.initContainers ?? [] {
            cpu = max(cpu, request(initContainer, "cpu")?.milliValue ?? 0)
            memory = max(memory, request(initContainer, "memory")?.value ?? 0)
        }
        return (cpu, memory)
    }
}
