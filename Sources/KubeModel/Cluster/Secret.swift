/// Secret data for pods (base64 on the wire).
public struct Secret: KubeObject {
    public static let apiVersion = "v1"
    public static let kind = "Secret"

    public var apiVersion: String? = Secret.apiVersion
    public var kind: String? = Secret.kind
    public var metadata = ObjectMeta()
    public var data: [String: Base64Bytes]?
    /// Write-only convenience: merged into `data` by the API server.
    public var stringData: [String: String]?
    /// `Opaque`, `kubernetes.io/dockerconfigjson`, `bootstrap.kubernetes.io/token`, …
    public var type: String?
    public var immutable: Bool?
    public var unknownFields = UnknownFields()

    public init(metadata: ObjectMeta = ObjectMeta(), data: [String: Base64Bytes]? = nil, type: String? = nil) {
        self.metadata = metadata
        self.data = data
        self.type = type
    }
}
