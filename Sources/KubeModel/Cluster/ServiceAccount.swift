/// An identity for processes in pods.
public struct ServiceAccount: KubeObject {
    public static let apiVersion = "v1"
    public static let kind = "ServiceAccount"

    public var apiVersion: String? = ServiceAccount.apiVersion
    public var kind: String? = ServiceAccount.kind
    public var metadata = ObjectMeta()
    public var secrets: [ObjectReference]?
    public var imagePullSecrets: [LocalObjectReference]?
    public var automountServiceAccountToken: Bool?
    public var unknownFields = UnknownFields()

    public init(metadata: ObjectMeta = ObjectMeta()) { self.metadata = metadata }
}
