/// Resource usage of a node (`metrics.k8s.io/v1beta1` NodeMetrics), what `kubectl top node` shows.
public struct NodeMetrics: KubeObject {
    public static let apiVersion = "metrics.k8s.io/v1beta1"
    public static let kind = "NodeMetrics"
    public static var plural: String { "nodes" }

    public var apiVersion: String? = NodeMetrics.apiVersion
    public var kind: String? = NodeMetrics.kind
    public var metadata = ObjectMeta()
    /// When the usage was sampled (the end of the window).
    public var timestamp = Timestamp(seconds: 0)
    /// The sampling window, e.g. `10s`.
    public var window = "10s"
    /// `cpu` (cores) and `memory` (working set bytes).
    public var usage: [String: Quantity] = [:]
    public var unknownFields = UnknownFields()

    public init(name: String, timestamp: Timestamp, window: String, usage: [String: Quantity]) {
        metadata = ObjectMeta(name: name)
        self.timestamp = timestamp
        self.window = window
        self.usage = usage
    }
}

/// Resource usage of a pod's containers (`metrics.k8s.io/v1beta1` PodMetrics).
public struct PodMetrics: KubeObject {
    public static let apiVersion = "metrics.k8s.io/v1beta1"
    public static let kind = "PodMetrics"
    public static var plural: String { "pods" }

    public var apiVersion: String? = PodMetrics.apiVersion
    public var kind: String? = PodMetrics.kind
    public var metadata = ObjectMeta()
    public var timestamp = Timestamp(seconds: 0)
    public var window = "10s"
    public var containers: [ContainerMetrics] = []
    public var unknownFields = UnknownFields()

    public init(name: String, namespace: String, timestamp: Timestamp, window: String, containers: [ContainerMetrics]) {
        metadata = ObjectMeta(name: name, namespace: namespace)
        self.timestamp = timestamp
        self.window = window
        self.containers = containers
    }
}

/// One container's usage within ``PodMetrics``.
public struct ContainerMetrics: Codable, Sendable, Hashable {
    public var name: String = ""
    public var usage: [String: Quantity] = [:]
    public var unknownFields = UnknownFields()

    public init(name: String, usage: [String: Quantity]) {
        self.name = name
        self.usage = usage
    }
}
