/// A service (`v1`): a stable virtual address and name in front of the pods its selector picks.
public struct KubeService: KubeObject {
    public static let apiVersion = "v1"
    public static let kind = "Service"

    public var apiVersion: String? = KubeService.apiVersion
    public var kind: String? = KubeService.kind
    public var metadata = ObjectMeta()
    public var spec: ServiceSpec?
    public var status: ServiceStatus?
    public var unknownFields = UnknownFields()

    public init(metadata: ObjectMeta = ObjectMeta(), spec: ServiceSpec? = nil, status: ServiceStatus? = nil) {
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }

    /// `ClusterIP` unless set.
    public var serviceType: String { spec?.type ?? "ClusterIP" }
    /// Whether the service has no virtual address (`clusterIP: None`): its name resolves to the pods.
    public var isHeadless: Bool { spec?.clusterIP == "None" }
}

/// The ports, selector, addresses and traffic policies of a service.
public struct ServiceSpec: Codable, Sendable, Hashable {
    public var ports: [ServicePort]?
    public var selector: [String: String]?
    public var clusterIP: String?
    public var clusterIPs: [String]?
    /// `ClusterIP`, `NodePort`, `LoadBalancer` or `ExternalName`.
    public var type: String?
    public var externalIPs: [String]?
    public var sessionAffinity: String?
    public var loadBalancerIP: String?
    public var loadBalancerSourceRanges: [String]?
    public var externalName: String?
    public var externalTrafficPolicy: String?
    public var healthCheckNodePort: Int32?
    public var publishNotReadyAddresses: Bool?
    public var sessionAffinityConfig: SessionAffinityConfig?
    public var ipFamilies: [String]?
    public var ipFamilyPolicy: String?
    public var allocateLoadBalancerNodePorts: Bool?
    public var loadBalancerClass: String?
    public var internalTrafficPolicy: String?
    public var trafficDistribution: String?
    public var unknownFields = UnknownFields()

    public init(ports: [ServicePort]? = nil, selector: [String: String]? = nil, type: String? = nil) {
        self.ports = ports
        self.selector = selector
        self.type = type
    }
}

/// One port of a service: where clients connect and where the pods listen.
public struct ServicePort: Codable, Sendable, Hashable {
    public var name: String?
    public var `protocol`: String?
    public var appProtocol: String?
    public var port: Int32 = 0
    /// A number, or the name of a container port (resolved per pod).
    public var targetPort: IntOrString?
    public var nodePort: Int32?
    public var unknownFields = UnknownFields()

    public init(name: String? = nil, port: Int32, targetPort: IntOrString? = nil, protocol: String? = nil, nodePort: Int32? = nil) {
        self.name = name
        self.port = port
        self.targetPort = targetPort
        self.protocol = `protocol`
        self.nodePort = nodePort
    }
}

/// `sessionAffinity: ClientIP` settings.
public struct SessionAffinityConfig: Codable, Sendable, Hashable {
    public var clientIP: ClientIPConfig?
    public var unknownFields = UnknownFields()

    public init(timeoutSeconds: Int32? = nil) { clientIP = ClientIPConfig(timeoutSeconds: timeoutSeconds) }
}

/// How long a client stays with the endpoint it was first sent to.
public struct ClientIPConfig: Codable, Sendable, Hashable {
    public var timeoutSeconds: Int32?
    public var unknownFields = UnknownFields()

    public init(timeoutSeconds: Int32? = nil) { self.timeoutSeconds = timeoutSeconds }
}

/// A service's load balancer (always pending here: there is no cloud to provide one).
public struct ServiceStatus: Codable, Sendable, Hashable {
    public var loadBalancer: JSONValue?
    public var conditions: JSONValue?
    public var unknownFields = UnknownFields()

    public init() {}
}
