#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import ImageStore
import KubeClient
import KubeModel
import Logging
import NIOPosix
import OCI
import PodNetwork
import Runtime
import SystemSupport

// The pod status the worker reports.
extension PodWorker {
    func report() async {
        if state.outcome?.reportedBefore == true {
            // Only on deletion: its unchanged final status goes through the reporter, which then
            // removes the API object.
            guard terminating, let known = pod.status else { return }
            await host.status.report(pod, status: known)
            return
        }
        let status = currentStatus()
        guard status != lastStatus else { return }
        lastStatus = status
        await host.status.report(pod, status: status)
    }

    func observation(_ container: Container) -> PodStatusBuilder.Observation {
        var state = runs[container.name]?.state ?? .waiting(reason: "ContainerCreating", message: nil)
        if runs[container.name] == nil || runs[container.name]?.hasRun == false, case .waiting(let reason, _) = state, reason == "ContainerCreating",
           let setupProblem {
            state = .waiting(reason: setupProblem.reason, message: setupProblem.message)
        }
        let run = runs[container.name]
        var observed = PodStatusBuilder.Observation(
            name: container.name, image: container.image ?? "", imageID: run?.imageID ?? "",
            containerID: run?.hasRun == true ? run?.id.map { "iotkube://" + $0 } : nil, state: state,
            lastTermination: run?.lastTermination, restartCount: run?.restartCount ?? 0, ready: ready(container), started: started(container))
        observed.lastContainerID = run?.lastID.map { "iotkube://" + $0 }
        return observed
    }

    func currentStatus() -> PodStatus {
        let outcome = state.outcome
        if rejected, let outcome {
            // As the kubelet reports a pod it did not admit (kubectl shows the reason).
            var status = PodStatus()
            status.phase = outcome.phase
            status.reason = outcome.reason
            status.message = outcome.message
            status.qosClass = PodStatusBuilder.qosClass(pod)
            return status
        }
        let initContainers = pod.spec?.initContainers ?? []
        let initializing = initContainers.contains { container in
            let run = runs[container.name]
            return container.restartPolicy == .always ? !started(container) && run?.hasRun != true : run?.exitCode != 0
        }
        var initObservations = initContainers.map(observation)
        // Init containers not reached yet wait for the ones before them.
        if let firstWaiting = initContainers.firstIndex(where: { runs[$0.name]?.exitCode != 0 && $0.restartPolicy != .always }) {
            for index in initObservations.indices where index > firstWaiting && runs[initContainers[index].name] == nil {
                initObservations[index].state = .waiting(reason: "PodInitializing", message: nil)
            }
        }
        var containerObservations = (pod.spec?.containers ?? []).map(observation)
        if initializing {
            for index in containerObservations.indices where runs[containerObservations[index].name] == nil {
                containerObservations[index].state = .waiting(reason: "PodInitializing", message: nil)
            }
        }
        var status = PodStatusBuilder.build(
            pod: pod, previous: lastStatus, initContainers: initObservations, containers: containerObservations,
            initializing: initializing && outcome == nil, sandboxReady: hostNetwork ? volumePaths != nil : networkReady,
            podIPs: podIPs, hostIPs: host.hostIPs, startTime: startTime, now: .now())
        if let devices = host.devices, let uid = pod.metadata.uid {
            Self.addDeviceHealth(&status, assignments: devices.assignments(pod: uid), devices: devices)
        }
        if let outcome {
            status.phase = outcome.phase
            status.reason = outcome.reason
            status.message = outcome.message
            if outcome.reason == "Evicted" || (outcome.reason == "Terminated" && outcome.message == Self.nodeShutdownMessage), let message = outcome.message {
                // Kubernetes ≥ 1.26: the disruption (eviction, node shutdown) is named on the pod.
                let previous = lastStatus?.conditions?.first { $0.type == "DisruptionTarget" }
                var conditions = status.conditions ?? []
                conditions.append(PodCondition(type: "DisruptionTarget", status: .true, lastTransitionTime: previous?.lastTransitionTime ?? .now(),
                                               reason: "TerminationByKubelet", message: message))
                status.conditions = conditions
            }
        }
        return status
    }

    /// Each container's devices and whether they are still there (`allocatedResourcesStatus`,
    /// as the kubelet reports its device plugins' health): an unplugged device is Unhealthy.
    static func addDeviceHealth(_ status: inout PodStatus, assignments: [String: [String: [String]]], devices: DeviceManager) {
        guard !assignments.isEmpty else { return }
        func annotate(_ statuses: [KubeModel.ContainerStatus]?) -> [KubeModel.ContainerStatus]? {
            statuses?.map { container in
                guard let held = assignments[container.name] else { return container }
                var annotated = container
                annotated.allocatedResourcesStatus = held.keys.sorted().map { resource in
                    let resources = (held[resource] ?? []).map { key -> JSONValue in
                        ["resourceID": .string(key), "health": .string(devices.isPresent(resource: resource, device: key) ? "Healthy" : "Unhealthy")]
                    }
                    return ["name": .string(resource), "resources": .array(resources)] as JSONValue
                }
                return annotated
            }
        }
        status.containerStatuses = annotate(status.containerStatuses)
        status.initContainerStatuses = annotate(status.initContainerStatuses)
    }
}
