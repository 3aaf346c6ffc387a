import KubeModel

/// The pod status the kubelet reports, from what the agent observed of the pod's containers:
/// container states with the kubelet's reasons, phase, conditions (keeping transition times of
/// conditions that did not change), IPs, start time and QoS class.
public enum PodStatusBuilder {
    /// What the agent knows about one container.
    public struct Observation: Sendable, Hashable {
        public enum State: Sendable, Hashable {
            /// Not running and not to be started yet: ContainerCreating, ErrImagePull,
            /// ImagePullBackOff, CreateContainerConfigError, CrashLoopBackOff, PodInitializing.
            case waiting(reason: String, message: String?)
            case running(startedAt: Timestamp)
            /// `execError`: the process could not be started (exit 126/127 from the runtime).
            case terminated(exitCode: Int32, signal: Int32, oomKilled: Bool, execError: String?, startedAt: Timestamp?, finishedAt: Timestamp, message: String?)
        }

        public var name: String
        public var image: String
        public var imageID: String
        public var containerID: String?
        public var state: State
        /// The previous run's end (after a restart).
        public var lastTermination: State?
        /// The previous run's container ID (default: `containerID`).
        public var lastContainerID: String?
        public var restartCount: Int32
        /// Readiness probe verdict (true without a readiness probe once running).
        public var ready: Bool
        /// Startup probe passed (true without one once running).
        public var started: Bool

        public init(name: String, image: String, imageID: String = "", containerID: String? = nil, state: State,
                    lastTermination: State? = nil, restartCount: Int32 = 0, ready: Bool = false, started: Bool = false) {
            self.name = name
            self.image = image
            self.imageID = imageID
            self.containerID = containerID
            self.state = state
            self.lastTermination = lastTermination
            self.restartCount = restartCount
            self.ready = ready
            self.started = started
        }
    }

    public static func containerState(_ state: Observation.State, containerID: String?) -> ContainerState {
        switch state {
        case .waiting(let reason, let message):
            return ContainerState(waiting: ContainerStateWaiting(reason: reason, message: message))
        case .running(let startedAt):
            return ContainerState(running: ContainerStateRunning(startedAt: startedAt))
        case .terminated(let exitCode, let signal, let oomKilled, let execError, let startedAt, let finishedAt, let message):
            let reason = oomKilled ? "OOMKilled" : execError != nil ? "ContainerCannotRun" : exitCode == 0 ? "Completed" : "Error"
            var terminated = ContainerStateTerminated(exitCode: exitCode, reason: reason, signal: signal == 0 ? nil : signal)
            terminated.message = execError ?? message
            terminated.startedAt = startedAt
            terminated.finishedAt = finishedAt
            terminated.containerID = containerID
            return ContainerState(terminated: terminated)
        }
    }

    static func status(_ observation: Observation) -> ContainerStatus {
        var status = ContainerStatus(name: observation.name, image: observation.image, imageID: observation.imageID,
                                     ready: observation.ready, restartCount: observation.restartCount)
        status.containerID = observation.containerID
        status.state = containerState(observation.state, containerID: observation.containerID)
        status.lastState = observation.lastTermination.map { containerState($0, containerID: observation.lastContainerID ?? observation.containerID) } ?? ContainerState()
        if case .running = observation.state { status.started = observation.started } else { status.started = false }
        return status
    }

    public static func qosClass(_ pod: Pod) -> PodQOSClass {
        let containers = (pod.spec?.initContainers ?? []) + (pod.spec?.containers ?? [])
        let resources = containers.map { ($0.resources?.requests ?? [:], $0.resources?.limits ?? [:]) }
        if resources.allSatisfy({ $0.0.isEmpty && $0.1.isEmpty }) { return .bestEffort }
        let guaranteed = resources.allSatisfy { requests, limits in
            ["cpu", "memory"].allSatisfy { key in limits[key] != nil && (requests[key] ?? limits[key]) == limits[key] }
        }
        return guaranteed ? .guaranteed : .burstable
    }

    /// The phase from the containers and the restart policy (the kubelet's getPhase).
    public static func phase(_ pod: Pod, containers: [Observation], initializing: Bool) -> PodPhase {
        if initializing { return .pending }
        let policy = pod.spec?.restartPolicy ?? .always
        var running = 0, waiting = 0, stopped = 0, succeeded = 0
        for container in containers {
            switch container.state {
            case .running: running += 1
            case .terminated(let exitCode, _, _, _, _, _, _):
                stopped += 1
                if exitCode == 0 { succeeded += 1 }
            case .waiting:
                // Waiting after a run (back-off) counts as stopped-and-restarting.
                if container.lastTermination != nil { stopped += 1 } else { waiting += 1 }
            }
        }
        if waiting > 0 { return .pending }
        if running > 0 { return .running }
        if stopped == containers.count && !containers.isEmpty {
            if policy == .always { return .running }
            if succeeded == stopped { return .succeeded }
            if policy == .onFailure { return .running }
            return .failed
        }
        return .pending
    }

    /// The full status. `previous` keeps unchanged conditions' transition times.
    public static func build(
        pod: Pod, previous: PodStatus?, initContainers: [Observation], containers: [Observation], initializing: Bool,
        sandboxReady: Bool, podIPs: [String], hostIPs: [String], startTime: Timestamp?, now: Timestamp
    ) -> PodStatus {
        var status = PodStatus(phase: phase(pod, containers: containers, initializing: initializing))
        status.qosClass = qosClass(pod)
        status.startTime = previous?.startTime ?? startTime
        status.podIP = podIPs.first
        status.podIPs = podIPs.isEmpty ? nil : podIPs.map(PodIP.init)
        status.hostIP = hostIPs.first
        status.hostIPs = hostIPs.isEmpty ? nil : hostIPs.map(PodIP.init)
        status.initContainerStatuses = initContainers.isEmpty ? nil : initContainers.map(Self.status)
        status.containerStatuses = containers.map(Self.status)
        let allReady = !containers.isEmpty && containers.allSatisfy { observation in
            if case .running = observation.state { return observation.ready }
            return false
        }
        let notReady = containers.filter { observation in
            if case .running = observation.state, observation.ready { return false }
            return true
        }.map(\.name)
        let unready = notReady.isEmpty ? nil : "containers with unready status: [\(notReady.joined(separator: " "))]"
        func condition(_ type: String, _ value: Bool, reason: String? = nil, message: String? = nil) -> PodCondition {
            let status: ConditionStatus = value ? .true : .false
            let old = previous?.conditions?.first { $0.type == type }
            let transition = old?.status == status ? old?.lastTransitionTime ?? now : now
            return PodCondition(type: type, status: status, lastTransitionTime: transition, reason: value ? nil : reason, message: value ? nil : message)
        }
        var conditions = [
            condition("PodReadyToStartContainers", sandboxReady),
            condition("Initialized", !initializing, reason: "ContainersNotInitialized",
                      message: "containers with incomplete status: [\(initContainers.map(\.name).joined(separator: " "))]"),
            condition("ContainersReady", allReady, reason: "ContainersNotReady", message: unready),
            condition("Ready", allReady, reason: "ContainersNotReady", message: unready),
        ]
        if let scheduled = previous?.conditions?.first(where: { $0.type == "PodScheduled" }) ?? pod.status?.conditions?.first(where: { $0.type == "PodScheduled" }) {
            conditions.append(scheduled)
        } else {
            conditions.append(condition("PodScheduled", true))
        }
        status.conditions = conditions
        return status
    }
}
