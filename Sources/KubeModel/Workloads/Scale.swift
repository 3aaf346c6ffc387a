/// The `scale` subresource of a workload (`autoscaling/v1`): its replica count and pod selector.
public struct Scale: KubeObject {
    public static let apiVersion = "autoscaling/v1"
    public static let kind = "Scale"

    public var apiVersion: String? = Scale.apiVersion
    public var kind: String? = Scale.kind
    public var metadata = ObjectMeta()
    public var spec: ScaleSpec?
    public var status: ScaleStatus?
    public var unknownFields = UnknownFields()

    public init(metadata: ObjectMeta = ObjectMeta(), spec: ScaleSpec? = nil, status: ScaleStatus? = nil) {
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }
}

/// The desired replica count.
public struct ScaleSpec: Codable, Sendable, Hashable {
    public var replicas: Int32?
    public var unknownFields = UnknownFields()

    public init(replicas: Int32? = nil) { self.replicas = replicas }
}

/// The observed replica count and the selector of the pods counted, as a query string.
public struct ScaleStatus: Codable, Sendable, Hashable {
    public var replicas: Int32 = 0
    public var selector: String?
    public var unknownFields = UnknownFields()

    public init(replicas: Int32 = 0, selector: String? = nil) {
        self.replicas = replicas
        self.selector = selector
    }
}
