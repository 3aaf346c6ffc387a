/// A daemon set (`apps/v1`): one pod of its template on every node it selects.
public struct DaemonSet: KubeObject {
    public static let apiVersion = "apps/v1"
    public static let kind = "DaemonSet"

    public var apiVersion: String? = DaemonSet.apiVersion
    public var kind: String? = DaemonSet.kind
    public var metadata = ObjectMeta()
    public var spec: DaemonSetSpec?
    public var status: DaemonSetStatus?
    public var unknownFields = UnknownFields()

    public init(metadata: ObjectMeta = ObjectMeta(), spec: DaemonSetSpec? = nil, status: DaemonSetStatus? = nil) {
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }
}

/// Which pods the daemon set counts, the template of its pods and how a new template replaces them.
public struct DaemonSetSpec: Codable, Sendable, Hashable {
    public var selector: LabelSelector?
    public var template: PodTemplateSpec?
    public var updateStrategy: DaemonSetUpdateStrategy?
    public var minReadySeconds: Int32?
    public var revisionHistoryLimit: Int32?
    public var unknownFields = UnknownFields()

    public init(selector: LabelSelector? = nil, template: PodTemplateSpec? = nil) {
        self.selector = selector
        self.template = template
    }
}

/// `RollingUpdate` (node by node, within `maxUnavailable` and `maxSurge`) or `OnDelete`.
public struct DaemonSetUpdateStrategy: Codable, Sendable, Hashable {
    public var type: String?
    public var rollingUpdate: RollingUpdateDaemonSet?
    public var unknownFields = UnknownFields()

    public init(type: String? = nil, rollingUpdate: RollingUpdateDaemonSet? = nil) {
        self.type = type
        self.rollingUpdate = rollingUpdate
    }
}

/// How many nodes may be without an available pod (`maxUnavailable`) or run two (`maxSurge`) during an update.
public struct RollingUpdateDaemonSet: Codable, Sendable, Hashable {
    public var maxUnavailable: IntOrString?
    public var maxSurge: IntOrString?
    public var unknownFields = UnknownFields()

    public init(maxUnavailable: IntOrString? = nil, maxSurge: IntOrString? = nil) {
        self.maxUnavailable = maxUnavailable
        self.maxSurge = maxSurge
    }
}

/// What the daemon set controller last saw, node by node.
public struct DaemonSetStatus: Codable, Sendable, Hashable {
    public var currentNumberScheduled: Int32 = 0
    public var numberMisscheduled: Int32 = 0
    public var desiredNumberScheduled: Int32 = 0
    public var numberReady: Int32 = 0
    public var observedGeneration: Int64?
    public var updatedNumberScheduled: Int32?
    public var numberAvailable: Int32?
    public var numberUnavailable: Int32?
    public var collisionCount: Int32?
    public var conditions: [JSONValue]?
    public var unknownFields = UnknownFields()

    public init() {}
}
