import KubeModel

/// Defaults the API server fills in, so stored objects look as they do in Kubernetes.
enum ResourceDefaults {
    static func apply(_ object: JSONValue, resource: ResourceType) -> JSONValue {
        if resource == .namespaces {
            var namespace = object
            if namespace.string(at: ["status", "phase"]) == nil { namespace.set(["status", "phase"], "Active") }
            if namespace[path: ["spec", "finalizers"]] == nil { namespace.set(["spec", "finalizers"], ["kubernetes"]) }
            return namespace
        }
        guard resource == .pods, var pod = try? KubeJSON.decode(Pod.self, from: object), var spec = pod.spec else { return object }
        spec.restartPolicy = spec.restartPolicy ?? .always
        spec.dnsPolicy = spec.dnsPolicy ?? .clusterFirst
        spec.terminationGracePeriodSeconds = spec.terminationGracePeriodSeconds ?? 30
        spec.schedulerName = spec.schedulerName ?? "default-scheduler"
        spec.securityContext = spec.securityContext ?? PodSecurityContext()
        spec.enableServiceLinks = spec.enableServiceLinks ?? true
        // The Priority admission plugin's built-in classes (no PriorityClass objects here).
        spec.priority = spec.priority ?? builtinPriorities[spec.priorityClassName ?? ""] ?? 0
        spec.serviceAccountName = spec.serviceAccountName ?? "default"
        spec.initContainers = spec.initContainers.map { $0.map(defaultContainer) }
        spec.containers = spec.containers.map(defaultContainer)
        pod.spec = spec
        var status = pod.status ?? PodStatus()
        status.phase = status.phase ?? .pending
        status.qosClass = status.qosClass ?? qosClass(spec)
        pod.status = status
        return (try? KubeJSON.tree(pod)) ?? object
    }

    /// The priorities of Kubernetes' built-in PriorityClasses.
    static let builtinPriorities: [String: Int32] = ["system-node-critical": 2_000_001_000, "system-cluster-critical": 2_000_000_000]

    private static func defaultContainer(_ container: Container) -> Container {
        var result = container
        result.terminationMessagePath = result.terminationMessagePath ?? "/dev/termination-log"
        result.terminationMessagePolicy = result.terminationMessagePolicy ?? .file
        if result.imagePullPolicy == nil {
            let image = result.image ?? ""
            let lastComponent = image.split(separator: "/").last.map(String.init) ?? image
            let tagged = lastComponent.contains(":") && !lastComponent.hasSuffix(":latest")
            result.imagePullPolicy = tagged || image.contains("@") ? .ifNotPresent : .always
        }
        return result
    }

    /// Guaranteed when every container has equal cpu and memory requests and limits,
    /// BestEffort when none has any, Burstable otherwise.
    static func qosClass(_ spec: PodSpec) -> PodQOSClass {
        let containers = (spec.initContainers ?? []) + spec.containers
        var anySet = false
        var guaranteed = true
        for container in containers {
            let limits = container.resources?.limits ?? [:]
            let requests = container.resources?.requests ?? [:]
            if !limits.isEmpty || !requests.isEmpty { anySet = true }
            for resource in ["cpu", "memory"] {
                guard let limit = limits[resource] else {
                    guaranteed = false
                    continue
                }
                if let request = requests[resource], request != limit { guaranteed = false }
            }
        }
        if !anySet { return .bestEffort }
        return guaranteed ? .guaranteed : .burstable
    }
}
