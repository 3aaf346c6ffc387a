extension Pod {
    /// The pod's effective requests (a limit stands in for a missing request): the larger of the
    /// sum over the app containers and any single init container.
    public var effectiveRequests: (milliCPU: Int64, memory: Int64) {
        func request(_ container: Container, _ resource: String) -> Quantity? {
            container.resources?.requests?[resource] ?? container.resources?.limits?[resource]
        }
        let containers = spec?.containers ?? []
        var cpu = containers.reduce(Int64(0)) { $0 + (request($1, "cpu")?.milliValue ?? 0) }
        var memory = containers.reduce(Int64(0)) { $0 + (request($1, "memory")?.value ?? 0) }
        for initContainer in spec?.initContainers ?? [] {
            cpu = max(cpu, request(initContainer, "cpu")?.milliValue ?? 0)
            memory = max(memory, request(initContainer, "memory")?.value ?? 0)
        }
        return (cpu, memory)
    }
}
