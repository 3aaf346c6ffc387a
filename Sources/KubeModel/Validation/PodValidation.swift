/// The pod rules the API server enforces that a decoder cannot: required values, unique
/// names, one probe handler, sane numbers.
public enum PodValidation {
    /// Every problem of the pod, with the field path, as the API server reports them (422 causes).
    public static func problems(_ pod: Pod) -> [StatusCause] {
        var causes: [StatusCause] = []
        func add(_ field: String, _ message: String, reason: String = "FieldValueInvalid") {
            causes.append(StatusCause(reason: reason, message: message, field: field))
        }
        guard let spec = pod.spec else {
            add("spec.containers", "Required value", reason: "FieldValueRequired")
            return causes
        }
        if spec.containers.isEmpty { add("spec.containers", "Required value", reason: "FieldValueRequired") }
        var names = Set<String>()
        let groups: [(String, [Container])] = [("spec.initContainers", spec.initContainers ?? []), ("spec.containers", spec.containers)]
        let volumeNames = Set((spec.volumes ?? []).map(\.name))
        for (prefix, containers) in groups {
            for (index, container) in containers.enumerated() {
                let field = "\(prefix)[\(index)]"
                if container.name.isEmpty {
                    add("\(field).name", "Required value", reason: "FieldValueRequired")
                } else if let problem = NameValidation.dnsLabelProblem(container.name) {
                    add("\(field).name", "Invalid value: \"\(container.name)\": \(problem)")
                } else if !names.insert(container.name).inserted {
                    add("\(field).name", "Duplicate value: \"\(container.name)\"", reason: "FieldValueDuplicate")
                }
                if (container.image ?? "").isEmpty { add("\(field).image", "Required value", reason: "FieldValueRequired") }
                for (portIndex, port) in (container.ports ?? []).enumerated() where !(1...65535).contains(port.containerPort) {
                    add("\(field).ports[\(portIndex)].containerPort", "Invalid value: \(port.containerPort): must be between 1 and 65535, inclusive")
                }
                for (kind, probe) in [("livenessProbe", container.livenessProbe), ("readinessProbe", container.readinessProbe), ("startupProbe", container.startupProbe)] {
                    guard let probe else { continue }
                    let handlers = [probe.exec != nil, probe.httpGet != nil, probe.tcpSocket != nil, probe.grpc != nil].filter { $0 }.count
                    if handlers != 1 {
                        add("\(field).\(kind)", handlers == 0 ? "Required value: must specify a handler type" : "Forbidden: may not specify more than 1 handler type",
                            reason: handlers == 0 ? "FieldValueRequired" : "FieldValueForbidden")
                    }
                    var ports: [(String, IntOrString)] = []
                    if let port = probe.httpGet?.port { ports.append(("httpGet.port", port)) }
                    if let port = probe.tcpSocket?.port { ports.append(("tcpSocket.port", port)) }
                    if let port = probe.grpc?.port { ports.append(("grpc.port", .int(port))) }
                    for (name, port) in ports {
                        switch port {
                        case .int(let number) where !(1...65535).contains(number):
                            add("\(field).\(kind).\(name)", "Invalid value: \(number): must be between 1 and 65535, inclusive")
                        case .string(let text) where Int(text) == nil && NameValidation.portNameProblem(text) != nil:
                            add("\(field).\(kind).\(name)", "Invalid value: \"\(text)\": \(NameValidation.portNameProblem(text)!)")
                        default: break
                        }
                    }
                    for (number, name) in [(probe.periodSeconds, "periodSeconds"), (probe.timeoutSeconds, "timeoutSeconds"), (probe.failureThreshold, "failureThreshold"), (probe.successThreshold, "successThreshold")] {
                        if let number, number < 1 { add("\(field).\(kind).\(name)", "Invalid value: \(number): must be greater than or equal to 1") }
                    }
                }
                for (resourceName, request) in container.resources?.requests ?? [:] where request.sign < 0 {
                    add("\(field).resources.requests[\(resourceName)]", "Invalid value: \"\(request)\": must be greater than or equal to 0")
                }
                for (resourceName, limit) in container.resources?.limits ?? [:] {
                    if limit.sign < 0 { add("\(field).resources.limits[\(resourceName)]", "Invalid value: \"\(limit)\": must be greater than or equal to 0") }
                    // (An extended resource's request must equal its limit: said below, once.)
                    if let request = container.resources?.requests?[resourceName], request > limit, !Pod.isExtendedResource(resourceName) {
                        add("\(field).resources.requests", "Invalid value: \"\(request)\": must be less than or equal to \(resourceName) limit of \(limit)")
                    }
                }
                // Extended resources (devices) are whole, never overcommitted: a request needs an
                // equal limit.
                for (kind, amounts) in [("requests", container.resources?.requests), ("limits", container.resources?.limits)] {
                    for (resourceName, amount) in (amounts ?? [:]).sorted(by: { $0.key < $1.key }) where Pod.isExtendedResource(resourceName) {
                        if amount.milliValue % 1000 != 0 { add("\(field).resources.\(kind)[\(resourceName)]", "Invalid value: \"\(amount)\": must be an integer") }
                        guard kind == "requests" else { continue }
                        if let limit = container.resources?.limits?[resourceName] {
                            if limit != amount { add("\(field).resources.requests", "Invalid value: \"\(amount)\": must be equal to \(resourceName) limit of \(limit)") }
                        } else {
                            add("\(field).resources.limits", "Required value: Limit must be set for non overcommitable resources", reason: "FieldValueRequired")
                        }
                    }
                }
                for (mountIndex, mount) in (container.volumeMounts ?? []).enumerated() where !volumeNames.contains(mount.name) {
                    add("\(field).volumeMounts[\(mountIndex)].name", "Not found: \"\(mount.name)\"", reason: "FieldValueNotFound")
                }
            }
        }
        for (resourceName, amount) in (spec.overhead ?? [:]).sorted(by: { $0.key < $1.key }) where amount.sign < 0 {
            add("spec.overhead[\(resourceName)]", "Invalid value: \"\(amount)\": must be greater than or equal to 0")
        }
        var seenVolumes = Set<String>()
        for (index, volume) in (spec.volumes ?? []).enumerated() where !seenVolumes.insert(volume.name).inserted {
            add("spec.volumes[\(index)].name", "Duplicate value: \"\(volume.name)\"", reason: "FieldValueDuplicate")
        }
        return causes + PodNumericValidation.problems(spec) + NodeAffinityValidation.problems(spec.affinity)
    }
}
