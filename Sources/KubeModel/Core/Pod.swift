/// A pod: the unit the kubelet runs.
public struct Pod: KubeObject {
    public static let apiVersion = "v1"
    public static let kind = "Pod"

    public var apiVersion: String? = Pod.apiVersion
    public var kind: String? = Pod.kind
    public var metadata = ObjectMeta()
    public var spec: PodSpec?
    public var status: PodStatus?
    public var unknownFields = UnknownFields()

    public init(metadata: ObjectMeta = ObjectMeta(), spec: PodSpec? = nil, status: PodStatus? = nil) {
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }
}
