/// What a pod should run and how (`v1.PodSpec`): every field a kubelet reads.
public struct PodSpec: Codable, Sendable, Hashable {
    public var volumes: [Volume]?
    public var initContainers: [Container]?
    public var containers: [Container] = []
    public var ephemeralContainers: [JSONValue]?
    public var restartPolicy: RestartPolicy?
    public var terminationGracePeriodSeconds: Int64?
    public var activeDeadlineSeconds: Int64?
    public var dnsPolicy: DNSPolicy?
    public var nodeSelector: [String: String]?
    public var serviceAccountName: String?
    /// Deprecated alias of serviceAccountName.
    public var serviceAccount: String?
    public var automountServiceAccountToken: Bool?
    public var nodeName: String?
    public var hostNetwork: Bool?
    public var hostPID: Bool?
    public var hostIPC: Bool?
    public var shareProcessNamespace: Bool?
    public var securityContext: PodSecurityContext?
    public var imagePullSecrets: [LocalObjectReference]?
    public var hostname: String?
    public var subdomain: String?
    /// Scheduling constraints; the scheduler reads them, the kubelet does not.
    public var affinity: JSONValue?
    public var schedulerName: String?
    public var tolerations: [Toleration]?
    public var hostAliases: [HostAlias]?
    public var priorityClassName: String?
    public var priority: Int32?
    public var dnsConfig: PodDNSConfig?
    public var readinessGates: [PodReadinessGate]?
    public var runtimeClassName: String?
    public var enableServiceLinks: Bool?
    public var preemptionPolicy: String?
    public var overhead: [String: Quantity]?
    public var topologySpreadConstraints: [JSONValue]?
    public var setHostnameAsFQDN: Bool?
    public var os: PodOS?
    public var hostUsers: Bool?
    public var schedulingGates: [JSONValue]?
    public var resourceClaims: [JSONValue]?
    /// Pod-level resource limits (Kubernetes 1.32+).
    public var resources: ResourceRequirements?
    public var unknownFields = UnknownFields()

    public init(containers: [Container] = []) { self.containers = containers }
}

/// Lets a pod run on nodes with a matching taint.
public struct Toleration: Codable, Sendable, Hashable {
    public var key: String?
    public var `operator`: TolerationOperator?
    public var value: String?
    public var effect: TaintEffect?
    public var tolerationSeconds: Int64?
    public var unknownFields = UnknownFields()

    public init(key: String? = nil, operator: TolerationOperator? = nil, value: String? = nil, effect: TaintEffect? = nil) {
        self.key = key
        self.operator = `operator`
        self.value = value
        self.effect = effect
    }
}

/// An extra /etc/hosts entry.
public struct HostAlias: Codable, Sendable, Hashable {
    public var ip: String = ""
    public var hostnames: [String]?
    public var unknownFields = UnknownFields()

    public init(ip: String, hostnames: [String]) {
        self.ip = ip
        self.hostnames = hostnames
    }
}

/// DNS settings merged into the pod's resolv.conf.
public struct PodDNSConfig: Codable, Sendable, Hashable {
    public var nameservers: [String]?
    public var searches: [String]?
    public var options: [PodDNSConfigOption]?
    public var unknownFields = UnknownFields()

    public init(nameservers: [String]? = nil, searches: [String]? = nil, options: [PodDNSConfigOption]? = nil) {
        self.nameservers = nameservers
        self.searches = searches
        self.options = options
    }
}

/// A resolver option such as `ndots:2`.
public struct PodDNSConfigOption: Codable, Sendable, Hashable {
    public var name: String?
    public var value: String?
    public var unknownFields = UnknownFields()

    public init(name: String, value: String? = nil) {
        self.name = name
        self.value = value
    }
}

/// An extra condition that must be True for the pod to be Ready.
public struct PodReadinessGate: Codable, Sendable, Hashable {
    public var conditionType: String = ""
    public var unknownFields = UnknownFields()

    public init(conditionType: String) { self.conditionType = conditionType }
}

/// The operating system a pod needs (`linux`).
public struct PodOS: Codable, Sendable, Hashable {
    public var name: String = "linux"
    public var unknownFields = UnknownFields()

    public init(name: String) { self.name = name }
}
