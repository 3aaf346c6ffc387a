/// kube-apiserver's rules for the numbers of a pod spec that reach arithmetic in the agent or
/// the server: ports, IDs, file modes, durations, probe timings, quantities and divisors.
enum PodNumericValidation {
    static let portRange: ClosedRange<Int64> = 1...65535

    static func problems(_ spec: PodSpec) -> [StatusCause] {
        var problems = FieldProblems()
        problems.atLeast(spec.terminationGracePeriodSeconds, 0, "spec.terminationGracePeriodSeconds")
        problems.inRange(spec.activeDeadlineSeconds, 1...Int64(Int32.max), "spec.activeDeadlineSeconds")
        problems.nonNegative(spec.overhead, "spec.overhead")
        if let context = spec.securityContext {
            problems.userOrGroupID(context.runAsUser, "spec.securityContext.runAsUser")
            problems.userOrGroupID(context.runAsGroup, "spec.securityContext.runAsGroup")
            problems.userOrGroupID(context.fsGroup, "spec.securityContext.fsGroup")
            for (index, group) in (context.supplementalGroups ?? []).enumerated() {
                problems.userOrGroupID(group, "spec.securityContext.supplementalGroups[\(index)]")
            }
        }
        let groups: [(String, [Container])] = [("spec.initContainers", spec.initContainers ?? []), ("spec.containers", spec.containers)]
        for (prefix, containers) in groups {
            for (index, container) in containers.enumerated() {
                self.container(container, "\(prefix)[\(index)]", grace: spec.terminationGracePeriodSeconds ?? 30, into: &problems)
            }
        }
        for (index, volume) in (spec.volumes ?? []).enumerated() {
            self.volume(volume, "spec.volumes[\(index)]", into: &problems)
        }
        return problems.causes
    }

    private static func container(_ container: Container, _ field: String, grace: Int64, into problems: inout FieldProblems) {
        for (index, port) in (container.ports ?? []).enumerated() where port.hostPort != nil && port.hostPort != 0 {
            problems.inRange(port.hostPort, portRange, "\(field).ports[\(index)].hostPort")
        }
        for (kind, probe) in [("livenessProbe", container.livenessProbe), ("readinessProbe", container.readinessProbe), ("startupProbe", container.startupProbe)] {
            guard let probe else { continue }
            problems.atLeast(probe.initialDelaySeconds, 0, "\(field).\(kind).initialDelaySeconds")
            problems.atLeast(probe.terminationGracePeriodSeconds, 1, "\(field).\(kind).terminationGracePeriodSeconds")
        }
        for (hook, handler) in [("postStart", container.lifecycle?.postStart), ("preStop", container.lifecycle?.preStop)] {
            if let seconds = handler?.sleep?.seconds, !(0...max(0, grace)).contains(seconds) {
                problems.invalid("\(field).lifecycle.\(hook).sleep.seconds", "\(seconds)", "must be non-negative and less than terminationGracePeriodSeconds (\(grace))")
            }
        }
        if let context = container.securityContext {
            problems.userOrGroupID(context.runAsUser, "\(field).securityContext.runAsUser")
            problems.userOrGroupID(context.runAsGroup, "\(field).securityContext.runAsGroup")
        }
        problems.nonNegative(container.resources?.requests, "\(field).resources.requests")
        for (index, variable) in (container.env ?? []).enumerated() {
            if let selector = variable.valueFrom?.resourceFieldRef {
                divisor(selector, "\(field).env[\(index)].valueFrom.resourceFieldRef.divisor", into: &problems)
            }
        }
    }

    private static func volume(_ volume: Volume, _ field: String, into problems: inout FieldProblems) {
        if let size = volume.emptyDir?.sizeLimit, size.sign < 0 {
            problems.invalid("\(field).emptyDir.sizeLimit", "\"\(size)\"", "must be greater than or equal to 0")
        }
        problems.fileMode(volume.configMap?.defaultMode, "\(field).configMap.defaultMode")
        problems.fileMode(volume.secret?.defaultMode, "\(field).secret.defaultMode")
        problems.fileMode(volume.downwardAPI?.defaultMode, "\(field).downwardAPI.defaultMode")
        problems.fileMode(volume.projected?.defaultMode, "\(field).projected.defaultMode")
        for (index, item) in (volume.configMap?.items ?? []).enumerated() { problems.fileMode(item.mode, "\(field).configMap.items[\(index)].mode") }
        for (index, item) in (volume.secret?.items ?? []).enumerated() { problems.fileMode(item.mode, "\(field).secret.items[\(index)].mode") }
        downwardAPIFiles(volume.downwardAPI?.items, "\(field).downwardAPI", into: &problems)
        for (index, source) in (volume.projected?.sources ?? []).enumerated() {
            let sourceField = "\(field).projected.sources[\(index)]"
            for (itemIndex, item) in (source.configMap?.items ?? []).enumerated() { problems.fileMode(item.mode, "\(sourceField).configMap.items[\(itemIndex)].mode") }
            for (itemIndex, item) in (source.secret?.items ?? []).enumerated() { problems.fileMode(item.mode, "\(sourceField).secret.items[\(itemIndex)].mode") }
            downwardAPIFiles(source.downwardAPI?.items, "\(sourceField).downwardAPI", into: &problems)
            if let seconds = source.serviceAccountToken?.expirationSeconds {
                let tokenField = "\(sourceField).serviceAccountToken.expirationSeconds"
                if seconds < 600 { problems.invalid(tokenField, "\(seconds)", "may not specify a duration less than 10 minutes") }
                if seconds > 1 << 32 { problems.invalid(tokenField, "\(seconds)", "may not specify a duration larger than 2^32 seconds") }
            }
        }
    }

    private static func downwardAPIFiles(_ items: [DownwardAPIVolumeFile]?, _ field: String, into problems: inout FieldProblems) {
        for (index, item) in (items ?? []).enumerated() {
            problems.fileMode(item.mode, "\(field).items[\(index)].mode")
            if let selector = item.resourceFieldRef { divisor(selector, "\(field).items[\(index)].resourceFieldRef.divisor", into: &problems) }
        }
    }

    static let cpuDivisors: Set<Quantity> = ["1m", "1"]
    static let byteDivisors: Set<Quantity> = ["1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei"]

    /// A divisor is one of the units kube-apiserver lists (the agent divides by it).
    private static func divisor(_ selector: ResourceFieldSelector, _ field: String, into problems: inout FieldProblems) {
        guard let divisor = selector.divisor else { return }
        let isCPU = selector.resource.hasSuffix("cpu")
        if isCPU, !cpuDivisors.contains(divisor) {
            problems.invalid(field, "\"\(divisor)\"", "only divisor's values 1m and 1 are supported with the cpu resource")
        } else if !isCPU, !byteDivisors.contains(divisor) {
            problems.invalid(field, "\"\(divisor)\"", "only divisor's values 1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, 1Pi, 1Ei are supported with the memory resource")
        }
    }
}
