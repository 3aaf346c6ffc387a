/// What the agent reports about its node (`v1.NodeStatus`).
public struct NodeStatus: Codable, Sendable, Hashable {
    public var capacity: [String: Quantity]?
    public var allocatable: [String: Quantity]?
    public var phase: String?
    public var conditions: [NodeCondition]?
    public var addresses: [NodeAddress]?
    public var daemonEndpoints: NodeDaemonEndpoints?
    public var nodeInfo: NodeSystemInfo?
    public var images: [ContainerImage]?
    public var volumesInUse: [String]?
    public var volumesAttached: [JSONValue]?
    public var config: JSONValue?
    public var runtimeHandlers: [JSONValue]?
    public var features: JSONValue?
    public var unknownFields = UnknownFields()

    public init() {}
}

/// One condition of a node: Ready, MemoryPressure, DiskPressure, PIDPressure, NetworkUnavailable.
public struct NodeCondition: Codable, Sendable, Hashable {
    public var type: String = ""
    public var status: ConditionStatus = .unknown
    public var lastHeartbeatTime: Timestamp?
    public var lastTransitionTime: Timestamp?
    public var reason: String?
    public var message: String?
    public var unknownFields = UnknownFields()

    public init(type: String, status: ConditionStatus, reason: String? = nil, message: String? = nil) {
        self.type = type
        self.status = status
        self.reason = reason
        self.message = message
    }
}

/// An address of the node: Hostname, InternalIP, ExternalIP, InternalDNS or ExternalDNS.
public struct NodeAddress: Codable, Sendable, Hashable {
    public var type: String = ""
    public var address: String = ""
    public var unknownFields = UnknownFields()

    public init(type: String, address: String) {
        self.type = type
        self.address = address
    }
}

/// Ports of daemons on the node (the kubelet's HTTPS endpoint).
public struct NodeDaemonEndpoints: Codable, Sendable, Hashable {
    public var kubeletEndpoint: DaemonEndpoint?
    public var unknownFields = UnknownFields()

    public init(kubeletEndpoint: DaemonEndpoint? = nil) { self.kubeletEndpoint = kubeletEndpoint }
}

/// A daemon's port (written `Port` in JSON).
public struct DaemonEndpoint: Codable, Sendable, Hashable {
    public var port: Int32 = 0
    public var unknownFields = UnknownFields()

    public init(port: Int32) { self.port = port }

    enum CodingKeys: String, CodingKey {
        case port = "Port"
        case unknownFields
    }
}

/// Facts about the node's machine and software; every field is required by the API.
public struct NodeSystemInfo: Codable, Sendable, Hashable {
    public var machineID: String = ""
    public var systemUUID: String = ""
    public var bootID: String = ""
    public var kernelVersion: String = ""
    public var osImage: String = ""
    public var containerRuntimeVersion: String = ""
    public var kubeletVersion: String = ""
    public var kubeProxyVersion: String = ""
    public var operatingSystem: String = "linux"
    public var architecture: String = ""
    public var swap: JSONValue?
    public var unknownFields = UnknownFields()

    public init() {}
}

/// An image present on the node.
public struct ContainerImage: Codable, Sendable, Hashable {
    public var names: [String]?
    public var sizeBytes: Int64?
    public var unknownFields = UnknownFields()

    public init(names: [String], sizeBytes: Int64? = nil) {
        self.names = names
        self.sizeBytes = sizeBytes
    }
}
