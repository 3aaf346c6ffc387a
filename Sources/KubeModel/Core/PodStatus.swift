/// What the kubelet reports about a pod (`v1.PodStatus`).
public struct PodStatus: Codable, Sendable, Hashable {
    public var observedGeneration: Int64?
    public var phase: PodPhase?
    public var conditions: [PodCondition]?
    public var message: String?
    public var reason: String?
    public var nominatedNodeName: String?
    public var hostIP: String?
    public var hostIPs: [PodIP]?
    public var podIP: String?
    public var podIPs: [PodIP]?
    public var startTime: Timestamp?
    public var initContainerStatuses: [ContainerStatus]?
    public var containerStatuses: [ContainerStatus]?
    public var ephemeralContainerStatuses: [ContainerStatus]?
    public var qosClass: PodQOSClass?
    public var resize: String?
    public var resourceClaimStatuses: [JSONValue]?
    public var unknownFields = UnknownFields()

    public init(phase: PodPhase? = nil) { self.phase = phase }
}

/// One condition of a pod: PodScheduled, PodReadyToStartContainers, Initialized, ContainersReady, Ready, or a readiness gate.
public struct PodCondition: Codable, Sendable, Hashable {
    public var type: String = ""
    public var observedGeneration: Int64?
    public var status: ConditionStatus = .unknown
    public var lastProbeTime: Timestamp?
    public var lastTransitionTime: Timestamp?
    public var reason: String?
    public var message: String?
    public var unknownFields = UnknownFields()

    public init(type: String, status: ConditionStatus, lastTransitionTime: Timestamp? = nil, reason: String? = nil, message: String? = nil) {
        self.type = type
        self.status = status
        self.lastTransitionTime = lastTransitionTime
        self.reason = reason
        self.message = message
    }
}

/// An IP address of a pod or its host.
public struct PodIP: Codable, Sendable, Hashable {
    public var ip: String = ""
    public var unknownFields = UnknownFields()

    public init(ip: String) { self.ip = ip }
}

/// The state of one container as the kubelet last saw it.
public struct ContainerStatus: Codable, Sendable, Hashable {
    public var name: String = ""
    public var state: ContainerState?
    public var lastState: ContainerState?
    public var ready: Bool = false
    public var restartCount: Int32 = 0
    public var image: String = ""
    public var imageID: String = ""
    /// `<runtime>://<id>`.
    public var containerID: String?
    public var started: Bool?
    public var allocatedResources: [String: Quantity]?
    public var resources: ResourceRequirements?
    public var volumeMounts: [JSONValue]?
    public var user: JSONValue?
    public var allocatedResourcesStatus: [JSONValue]?
    public var stopSignal: String?
    public var unknownFields = UnknownFields()

    public init(name: String, image: String, imageID: String = "", ready: Bool = false, restartCount: Int32 = 0) {
        self.name = name
        self.image = image
        self.imageID = imageID
        self.ready = ready
        self.restartCount = restartCount
    }
}

/// Exactly one of waiting, running or terminated.
public struct ContainerState: Codable, Sendable, Hashable {
    public var waiting: ContainerStateWaiting?
    public var running: ContainerStateRunning?
    public var terminated: ContainerStateTerminated?
    public var unknownFields = UnknownFields()

    public init(waiting: ContainerStateWaiting? = nil, running: ContainerStateRunning? = nil, terminated: ContainerStateTerminated? = nil) {
        self.waiting = waiting
        self.running = running
        self.terminated = terminated
    }
}

/// Not yet running: why (ContainerCreating, CrashLoopBackOff, ImagePullBackOff, …).
public struct ContainerStateWaiting: Codable, Sendable, Hashable {
    public var reason: String?
    public var message: String?
    public var unknownFields = UnknownFields()

    public init(reason: String? = nil, message: String? = nil) {
        self.reason = reason
        self.message = message
    }
}

/// Running since a time.
public struct ContainerStateRunning: Codable, Sendable, Hashable {
    public var startedAt: Timestamp?
    public var unknownFields = UnknownFields()

    public init(startedAt: Timestamp? = nil) { self.startedAt = startedAt }
}

/// Exited: how (exit code, signal, reason such as Completed, Error or OOMKilled).
public struct ContainerStateTerminated: Codable, Sendable, Hashable {
    public var exitCode: Int32 = 0
    public var signal: Int32?
    public var reason: String?
    public var message: String?
    public var startedAt: Timestamp?
    public var finishedAt: Timestamp?
    public var containerID: String?
    public var unknownFields = UnknownFields()

    public init(exitCode: Int32, reason: String? = nil, signal: Int32? = nil) {
        self.exitCode = exitCode
        self.reason = reason
        self.signal = signal
    }
}
