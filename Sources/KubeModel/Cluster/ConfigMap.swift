/// Configuration data for pods: text values and binary values.
public struct ConfigMap: KubeObject {
    public static let apiVersion = "v1"
    public static let kind = "ConfigMap"

    public var apiVersion: String? = ConfigMap.apiVersion
    public var kind: String? = ConfigMap.kind
    public var metadata = ObjectMeta()
    public var data: [String: String]?
    public var binaryData: [String: Base64Bytes]?
    public var immutable: Bool?
    public var unknownFields = UnknownFields()

    public init(metadata: ObjectMeta = ObjectMeta(), data: [String: String]? = nil) {
        self.metadata = metadata
        self.data = data
    }
}
