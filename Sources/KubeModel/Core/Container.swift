/// One container of a pod: the image, the process, and how the kubelet runs and checks it.
public struct Container: Codable, Sendable, Hashable {
    public var name: String = ""
    public var image: String?
    /// Replaces the image's ENTRYPOINT.
    public var command: [String]?
    /// Replaces the image's CMD.
    public var args: [String]?
    public var workingDir: String?
    public var ports: [ContainerPort]?
    public var envFrom: [EnvFromSource]?
    public var env: [EnvVar]?
    public var resources: ResourceRequirements?
    public var resizePolicy: [JSONValue]?
    /// `Always` makes an init container a sidecar that keeps running.
    public var restartPolicy: ContainerRestartPolicy?
    public var volumeMounts: [VolumeMount]?
    public var volumeDevices: [JSONValue]?
    public var livenessProbe: Probe?
    public var readinessProbe: Probe?
    public var startupProbe: Probe?
    public var lifecycle: Lifecycle?
    public var terminationMessagePath: String?
    public var terminationMessagePolicy: TerminationMessagePolicy?
    public var imagePullPolicy: PullPolicy?
    public var securityContext: SecurityContext?
    public var stdin: Bool?
    public var stdinOnce: Bool?
    public var tty: Bool?
    public var unknownFields = UnknownFields()

    public init(name: String, image: String? = nil, command: [String]? = nil, args: [String]? = nil) {
        self.name = name
        self.image = image
        self.command = command
        self.args = args
    }
}

/// A port a container listens on, optionally published on the host.
public struct ContainerPort: Codable, Sendable, Hashable {
    public var name: String?
    public var hostPort: Int32?
    public var containerPort: Int32 = 0
    public var `protocol`: NetworkProtocol?
    public var hostIP: String?
    public var unknownFields = UnknownFields()

    public init(containerPort: Int32, name: String? = nil, hostPort: Int32? = nil, protocol: NetworkProtocol? = nil) {
        self.containerPort = containerPort
        self.name = name
        self.hostPort = hostPort
        self.protocol = `protocol`
    }
}

/// Resource requests (what the scheduler reserves) and limits (what the cgroup enforces).
public struct ResourceRequirements: Codable, Sendable, Hashable {
    public var limits: [String: Quantity]?
    public var requests: [String: Quantity]?
    public var claims: [JSONValue]?
    public var unknownFields = UnknownFields()

    public init(limits: [String: Quantity]? = nil, requests: [String: Quantity]? = nil) {
        self.limits = limits
        self.requests = requests
    }
}
