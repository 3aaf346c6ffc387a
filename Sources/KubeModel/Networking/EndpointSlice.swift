/// An endpoint slice (`discovery.k8s.io/v1`): up to 100 addresses behind a service, with
/// their readiness, kept by the endpoint slice controller from the pods.
public struct EndpointSlice: KubeObject {
    public static let apiVersion = "discovery.k8s.io/v1"
    public static let kind = "EndpointSlice"
    /// The label naming the service a slice belongs to.
    public static let serviceNameLabel = "kubernetes.io/service-name"
    /// The label naming who keeps a slice.
    public static let managedByLabel = "endpointslice.kubernetes.io/managed-by"

    public var apiVersion: String? = EndpointSlice.apiVersion
    public var kind: String? = EndpointSlice.kind
    public var metadata = ObjectMeta()
    /// `IPv4`, `IPv6` or `FQDN` (absent only in watch bookmarks).
    public var addressType: String?
    /// The endpoints (kube-apiserver writes `null` for none).
    public var endpoints: [Endpoint]?
    public var ports: [EndpointPort]?
    public var unknownFields = UnknownFields()

    /// The endpoints, none when absent.
    public var endpointList: [Endpoint] { endpoints ?? [] }

    public init(metadata: ObjectMeta = ObjectMeta(), addressType: String = "IPv4", endpoints: [Endpoint]? = [], ports: [EndpointPort]? = nil) {
        self.metadata = metadata
        self.addressType = addressType
        self.endpoints = endpoints
        self.ports = ports
    }
}

/// One backend: its address, whether it takes traffic, and the pod and node behind it.
public struct Endpoint: Codable, Sendable, Hashable {
    public var addresses: [String] = []
    public var conditions: EndpointConditions?
    public var hostname: String?
    public var targetRef: ObjectReference?
    public var nodeName: String?
    public var zone: String?
    public var unknownFields = UnknownFields()

    public init(addresses: [String], conditions: EndpointConditions? = nil, targetRef: ObjectReference? = nil, nodeName: String? = nil) {
        self.addresses = addresses
        self.conditions = conditions
        self.targetRef = targetRef
        self.nodeName = nodeName
    }

    /// Ready unless said otherwise (an absent condition means ready).
    public var isReady: Bool { conditions?.ready ?? true }
}

/// `ready` (takes new traffic), `serving` (ready, terminating or not), `terminating`.
public struct EndpointConditions: Codable, Sendable, Hashable {
    public var ready: Bool?
    public var serving: Bool?
    public var terminating: Bool?
    public var unknownFields = UnknownFields()

    public init(ready: Bool? = nil, serving: Bool? = nil, terminating: Bool? = nil) {
        self.ready = ready
        self.serving = serving
        self.terminating = terminating
    }
}

/// A port the slice's endpoints listen on, named as the service port it serves.
public struct EndpointPort: Codable, Sendable, Hashable {
    public var name: String?
    public var `protocol`: String?
    public var port: Int32?
    public var appProtocol: String?
    public var unknownFields = UnknownFields()

    public init(name: String? = nil, port: Int32? = nil, protocol: String? = nil) {
        self.name = name
        self.port = port
        self.protocol = `protocol`
    }
}
