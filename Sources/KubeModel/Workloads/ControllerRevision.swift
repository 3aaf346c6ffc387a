/// A controller revision (`apps/v1`): one stored revision of a daemon set's template, which
/// `kubectl rollout history|undo daemonset` read (the data is the patch that restores it).
public struct ControllerRevision: KubeObject {
    public static let apiVersion = "apps/v1"
    public static let kind = "ControllerRevision"

    public var apiVersion: String? = ControllerRevision.apiVersion
    public var kind: String? = ControllerRevision.kind
    public var metadata = ObjectMeta()
    public var data: JSONValue?
    public var revision: Int64 = 0
    public var unknownFields = UnknownFields()

    public init(metadata: ObjectMeta = ObjectMeta(), data: JSONValue? = nil, revision: Int64 = 0) {
        self.metadata = metadata
        self.data = data
        self.revision = revision
    }
}
