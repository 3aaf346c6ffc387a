extension Pod {
    /// The pod's effective requests (a limit stands in for a missing request): the larger of the
    /// sum over the app containers and any single init container. Sums saturate at Int64.max: a
    /// pod asking for absurd amounts fits nowhere instead of stopping the program; a negative
    /// amount (which the API server refuses) counts as none.
    public var effectiveRequests: (milliCPU: Int64, memory: Int64) {
        func request(_ container: Container, _ resource: String) -> Quantity? {
            container.resources?.requests?[resource] ?? container.resources?.limits?[resource]
        }
        let containers = spec?.containers ?? []
        var cpu = containers.map { max(0, request($0, "cpu")?.milliValue ?? 0) }.saturatingSum()
        var memory = containers.map { max(0, request($0, "memory")?.value ?? 0) }.saturatingSum()
        for initContainer in spec?.initContainers ?? [] {
            cpu = max(cpu, request(initContainer, "cpu")?.milliValue ?? 0)
            memory = max(memory, request(initContainer, "memory")?.value ?? 0)
        }
        return (cpu, memory)
    }
}

extension Pod {
    /// Whether `name` is an extended resource (a device class, a plugin's resource): a
    /// domain-qualified name outside kubernetes.io, as Kubernetes' `IsExtendedResourceName` says.
    public static func isExtendedResource(_ name: String) -> Bool {
        name.contains("/") && !name.contains("kubernetes.io/") && !name.hasPrefix("requests.")
    }

    /// The extended resources a container asks for: its limits (the API server requires the
    /// request to equal the limit; a request alone counts the same), whole units.
    public static func extendedRequests(_ container: Container) -> [String: Int64] {
        var result: [String: Int64] = [:]
        for source in [container.resources?.requests, container.resources?.limits] {
            for (name, quantity) in source ?? [:] where isExtendedResource(name) {
                result[name] = max(result[name] ?? 0, quantity.value)
            }
        }
        return result.filter { $0.value > 0 }
    }

    /// The pod's extended resources as Kubernetes counts them: the app containers and the
    /// sidecars (init containers with `restartPolicy: Always`, which keep running) together, or
    /// any other init container with the sidecars started before it, whichever is larger.
    /// Sums saturate.
    public var extendedRequests: [String: Int64] {
        var total: [String: Int64] = [:], sidecars: [String: Int64] = [:], initPeak: [String: Int64] = [:]
        for container in spec?.containers ?? [] {
            for (name, count) in Self.extendedRequests(container) { total[name] = (total[name] ?? 0).addingSaturated(count) }
        }
        for container in spec?.initContainers ?? [] {
            let requests = Self.extendedRequests(container)
            if container.restartPolicy == .always {
                for (name, count) in requests { sidecars[name] = (sidecars[name] ?? 0).addingSaturated(count) }
            } else {
                for (name, count) in requests { initPeak[name] = max(initPeak[name] ?? 0, count.addingSaturated(sidecars[name] ?? 0)) }
            }
        }
        for (name, count) in sidecars { total[name] = (total[name] ?? 0).addingSaturated(count) }
        for (name, count) in initPeak { total[name] = max(total[name] ?? 0, count) }
        return total
    }
}
