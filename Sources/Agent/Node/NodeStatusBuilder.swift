import ImageStore
import KubeModel
import SystemSupport

/// Builds this board's Node: labels, capacity and allocatable, addresses, nodeInfo and the
/// pressure conditions, keeping transition times when a condition does not change.
public struct NodeStatusBuilder: Sendable {
    public static let kubeletVersion = "v1.30.0-iotkube-\(IotkubeVersion.current)"
    public static let runtimeVersion = "iotkube://\(IotkubeVersion.current)"
    public static let maximumPods: Int64 = 110

    let configuration: AgentConfiguration
    let host: HostReader
    /// The pressure conditions the eviction manager decided.
    let pressure: NodePressure
    /// A graceful node shutdown turns Ready False, as the kubelet reports it.
    let shutdown: NodeShutdownState
    /// The devices advertised as extended resources.
    let devices: DeviceManager?

    public init(configuration: AgentConfiguration, host: HostReader = HostReader(), pressure: NodePressure = NodePressure(), devices: DeviceManager? = nil,
                shutdown: NodeShutdownState = NodeShutdownState()) {
        self.shutdown = shutdown
        self.configuration = configuration
        self.devices = devices
        self.host = host
        self.pressure = pressure
    }

    /// The labels a kubelet puts on its node, plus the configured ones and the board model.
    public func labels() -> [String: String] {
        var labels = configuration.labels ?? [:]
        labels["kubernetes.io/hostname"] = configuration.nodeName
        labels["kubernetes.io/os"] = "linux"
        labels["kubernetes.io/arch"] = HostReader.architecture
        labels["beta.kubernetes.io/os"] = "linux"
        labels["beta.kubernetes.io/arch"] = HostReader.architecture
        if let model = host.boardModel(), let value = Self.labelValue(model) { labels["iotkube.io/board-model"] = value }
        return labels
    }

    /// Annotations with facts too free-form for labels (the CPU model).
    public func annotations() -> [String: String] {
        var annotations: [String: String] = [:]
        if let model = host.cpuModel() { annotations["iotkube.io/cpu-model"] = model }
        return annotations
    }

    /// A label value made from free text: at most 63 of `[A-Za-z0-9._-]`, alphanumeric at both ends.
    static func labelValue(_ text: String) -> String? {
        let mapped = String(text.map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "_" || $0 == "-") ? $0 : "_" }.prefix(63))
        let trimmed = mapped.trimming(["_", ".", "-"])
        return trimmed.isEmpty ? nil : trimmed
    }

    /// The status now; `previous` supplies transition times of unchanged conditions.
    public func status(previous: NodeStatus?, now: Timestamp) -> NodeStatus {
        var status = NodeStatus()
        let memory = host.memory()
        let disk = host.filesystem(configuration.stateDir) ?? host.filesystem("/")
        var capacity: [String: Quantity] = [
            "cpu": Quantity(Int64(host.cpuCount())), "memory": .bytes(memory.total), "pods": Quantity(Int64(configuration.maxPods ?? Int(Self.maximumPods))),
        ]
        if let disk { capacity["ephemeral-storage"] = .bytes(disk.total) }
        status.capacity = capacity
        var allocatable = capacity
        // The kubelet's allocatable: capacity − systemReserved − kubeReserved − hard eviction
        // thresholds (pods must fit without tripping eviction).
        var reserved = configuration.reserved
        for threshold in (try? configuration.evictionSettings())?.thresholds ?? [] where threshold.isHard {
            let resource: String
            switch threshold.signal {
            case .memoryAvailable: resource = "memory"
            case .nodefsAvailable: resource = "ephemeral-storage"
            default: continue
            }
            guard let total = capacity[resource] else { continue }
            let amount = Quantity.bytes(threshold.limit(capacity: min(total.value, Int64.max)))
            reserved[resource] = (reserved[resource] ?? Quantity.bytes(0)) + amount
        }
        for (resource, reserved) in reserved {
            guard let total = allocatable[resource] else { continue }
            let remaining = total - reserved
            allocatable[resource] = remaining.sign < 0 ? Quantity(nanoUnits: 0, format: total.format) : remaining
        }
        // Devices: capacity counts those held but unplugged, allocatable only those present.
        for (resource, amounts) in devices?.resources() ?? [:] {
            status.capacity?[resource] = Quantity(amounts.capacity)
            allocatable[resource] = Quantity(amounts.allocatable)
        }
        status.allocatable = allocatable
        var addresses = [NodeAddress(type: "Hostname", address: configuration.nodeName)]
        if let ip = host.internalIPv4() { addresses.insert(NodeAddress(type: "InternalIP", address: ip), at: 0) }
        status.addresses = addresses
        status.daemonEndpoints = NodeDaemonEndpoints(kubeletEndpoint: DaemonEndpoint(port: configuration.port))
        var info = NodeSystemInfo()
        info.machineID = host.machineID() ?? ""
        info.systemUUID = host.systemUUID() ?? info.machineID
        info.bootID = host.bootID() ?? ""
        info.kernelVersion = host.kernelVersion()
        info.osImage = host.osImage()
        info.containerRuntimeVersion = Self.runtimeVersion
        info.kubeletVersion = Self.kubeletVersion
        info.architecture = HostReader.architecture
        status.nodeInfo = info

        let pressed = pressure.conditions
        let memoryPressure = pressed.contains("MemoryPressure"), diskPressure = pressed.contains("DiskPressure"), pidPressure = pressed.contains("PIDPressure")
        let conditions = [
            condition("MemoryPressure", memoryPressure ? .true : .false, memoryPressure ? "KubeletHasInsufficientMemory" : "KubeletHasSufficientMemory",
                      memoryPressure ? "kubelet has insufficient memory available" : "kubelet has sufficient memory available", previous, now),
            condition("DiskPressure", diskPressure ? .true : .false, diskPressure ? "KubeletHasDiskPressure" : "KubeletHasNoDiskPressure",
                      diskPressure ? "kubelet has disk pressure" : "kubelet has no disk pressure", previous, now),
            condition("PIDPressure", pidPressure ? .true : .false, pidPressure ? "KubeletHasInsufficientPID" : "KubeletHasSufficientPID",
                      pidPressure ? "kubelet has insufficient PID available" : "kubelet has sufficient PID available", previous, now),
            shutdown.isShuttingDown
                ? condition("Ready", .false, "KubeletNotReady", "node is shutting down", previous, now)
                : condition("Ready", .true, "KubeletReady", "iotkube-agent is posting ready status", previous, now),
        ]
        status.conditions = conditions
        status.images = Self.images(ImageStore.records(stateDirectory: configuration.stateDir))
        return status
    }

    /// The kubelet reports at most this many images, largest first.
    static let maximumReportedImages = 50
    /// The kubelet's maxNamesPerImageInNodeStatus: an image with many tags cannot swell the Node.
    static let maximumNamesPerImage = 5

    /// `status.images`: each image's repo digests and tags with its size; nil when there are none.
    static func images(_ records: [ImageRecord]) -> [ContainerImage]? {
        guard !records.isEmpty else { return nil }
        return records.sorted { ($0.size, $0.id.description) > ($1.size, $1.id.description) }
            .prefix(maximumReportedImages)
            .map { ContainerImage(names: Array(($0.repoDigests + $0.names).prefix(maximumNamesPerImage)), sizeBytes: $0.size) }
    }

    private func condition(_ type: String, _ value: ConditionStatus, _ reason: String, _ message: String, _ previous: NodeStatus?, _ now: Timestamp) -> NodeCondition {
        var condition = NodeCondition(type: type, status: value, reason: reason, message: message)
        condition.lastHeartbeatTime = now
        let before = previous?.conditions?.first { $0.type == type }
        condition.lastTransitionTime = before?.status == value ? (before?.lastTransitionTime ?? now) : now
        return condition
    }

    /// Whether two statuses differ in anything but heartbeat times (so a write is needed).
    public static func differs(_ lhs: NodeStatus?, _ rhs: NodeStatus?) -> Bool {
        func normalised(_ status: NodeStatus?) -> NodeStatus? {
            guard var status else { return nil }
            status.conditions = status.conditions?.map { condition in
                var copy = condition
                copy.lastHeartbeatTime = nil
                return copy
            }
            return status
        }
        return normalised(lhs) != normalised(rhs)
    }
}
