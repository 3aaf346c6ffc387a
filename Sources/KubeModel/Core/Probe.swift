/// A health check: how to probe (exec, HTTP, TCP or gRPC) and when to decide.
public struct Probe: Codable, Sendable, Hashable {
    public var exec: ExecAction?
    public var httpGet: HTTPGetAction?
    public var tcpSocket: TCPSocketAction?
    public var grpc: GRPCAction?
    public var initialDelaySeconds: Int32?
    public var timeoutSeconds: Int32?
    public var periodSeconds: Int32?
    public var successThreshold: Int32?
    public var failureThreshold: Int32?
    public var terminationGracePeriodSeconds: Int64?
    public var unknownFields = UnknownFields()

    public init() {}
}

/// Run a command inside the container; exit 0 is success.
public struct ExecAction: Codable, Sendable, Hashable {
    public var command: [String]?
    public var unknownFields = UnknownFields()

    public init(command: [String]) { self.command = command }
}

/// An HTTP GET; 200–399 is success.
public struct HTTPGetAction: Codable, Sendable, Hashable {
    public var path: String?
    /// A port number or the name of a container port.
    public var port: IntOrString = .int(0)
    /// Defaults to the pod IP.
    public var host: String?
    public var scheme: URIScheme?
    public var httpHeaders: [HTTPHeader]?
    public var unknownFields = UnknownFields()

    public init(port: IntOrString, path: String? = nil) {
        self.port = port
        self.path = path
    }
}

/// A header sent with an HTTP probe.
public struct HTTPHeader: Codable, Sendable, Hashable {
    public var name: String = ""
    public var value: String = ""
    public var unknownFields = UnknownFields()

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// Open a TCP connection; connecting is success.
public struct TCPSocketAction: Codable, Sendable, Hashable {
    public var port: IntOrString = .int(0)
    public var host: String?
    public var unknownFields = UnknownFields()

    public init(port: IntOrString) { self.port = port }
}

/// A gRPC health check; SERVING is success.
public struct GRPCAction: Codable, Sendable, Hashable {
    public var port: Int32 = 0
    public var service: String?
    public var unknownFields = UnknownFields()

    public init(port: Int32, service: String? = nil) {
        self.port = port
        self.service = service
    }
}

/// Hooks run after a container starts and before it is stopped.
public struct Lifecycle: Codable, Sendable, Hashable {
    public var postStart: LifecycleHandler?
    public var preStop: LifecycleHandler?
    /// The signal that stops the container, overriding the image's STOPSIGNAL.
    public var stopSignal: String?
    public var unknownFields = UnknownFields()

    public init(postStart: LifecycleHandler? = nil, preStop: LifecycleHandler? = nil) {
        self.postStart = postStart
        self.preStop = preStop
    }
}

/// What a lifecycle hook does.
public struct LifecycleHandler: Codable, Sendable, Hashable {
    public var exec: ExecAction?
    public var httpGet: HTTPGetAction?
    public var tcpSocket: TCPSocketAction?
    public var sleep: SleepAction?
    public var unknownFields = UnknownFields()

    public init() {}
}

/// Wait a number of seconds (a preStop delay without a shell in the image).
public struct SleepAction: Codable, Sendable, Hashable {
    public var seconds: Int64 = 0
    public var unknownFields = UnknownFields()

    public init(seconds: Int64) { self.seconds = seconds }
}
