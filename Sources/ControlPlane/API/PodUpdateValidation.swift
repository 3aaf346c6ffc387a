import KubeModel

extension PodValidation {
    /// Kubernetes allows a pod's spec to change only in container images, activeDeadlineSeconds,
    /// added tolerations and terminationGracePeriodSeconds; everything else is immutable.
    static func updateProblems(old: Pod, new: Pod) -> [StatusCause] {
        guard var oldSpec = old.spec, var newSpec = new.spec else { return [] }
        func maskImages(_ containers: [Container]?, like other: [Container]?) -> [Container]? {
            guard var containers, let other, containers.count == other.count else { return containers }
            for index in containers.indices { containers[index].image = other[index].image }
            return containers
        }
        newSpec.containers = maskImages(newSpec.containers, like: oldSpec.containers) ?? []
        newSpec.initContainers = maskImages(newSpec.initContainers, like: oldSpec.initContainers)
        newSpec.activeDeadlineSeconds = oldSpec.activeDeadlineSeconds
        newSpec.terminationGracePeriodSeconds = oldSpec.terminationGracePeriodSeconds
        let oldTolerations = oldSpec.tolerations ?? []
        if (newSpec.tolerations ?? []).starts(with: oldTolerations) { newSpec.tolerations = oldSpec.tolerations }
        // Binding sets nodeName once; the scheduler does that, not an update.
        if oldSpec.nodeName == nil { oldSpec.nodeName = newSpec.nodeName }
        guard oldSpec != newSpec else { return [] }
        return [StatusCause(
            reason: "FieldValueForbidden",
            message: "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds`",
            field: "spec")]
    }
}
