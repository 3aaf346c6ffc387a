/// A replica set (`apps/v1`): keeps `replicas` pods from its template running.
public struct ReplicaSet: KubeObject {
    public static let apiVersion = "apps/v1"
    public static let kind = "ReplicaSet"

    public var apiVersion: String? = ReplicaSet.apiVersion
    public var kind: String? = ReplicaSet.kind
    public var metadata = ObjectMeta()
    public var spec: ReplicaSetSpec?
    public var status: ReplicaSetStatus?
    public var unknownFields = UnknownFields()

    public init(metadata: ObjectMeta = ObjectMeta(), spec: ReplicaSetSpec? = nil, status: ReplicaSetStatus? = nil) {
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }
}

/// How many pods of which template a replica set keeps, and which pods it counts as its own.
public struct ReplicaSetSpec: Codable, Sendable, Hashable {
    public var replicas: Int32?
    public var minReadySeconds: Int32?
    public var selector: LabelSelector?
    public var template: PodTemplateSpec?
    public var unknownFields = UnknownFields()

    public init(replicas: Int32? = nil, selector: LabelSelector? = nil, template: PodTemplateSpec? = nil) {
        self.replicas = replicas
        self.selector = selector
        self.template = template
    }
}

/// What a replica set's controller last saw of its pods.
public struct ReplicaSetStatus: Codable, Sendable, Hashable {
    public var replicas: Int32 = 0
    public var fullyLabeledReplicas: Int32?
    public var readyReplicas: Int32?
    public var availableReplicas: Int32?
    public var observedGeneration: Int64?
    public var conditions: [ReplicaSetCondition]?
    public var unknownFields = UnknownFields()

    public init(replicas: Int32 = 0) { self.replicas = replicas }
}

/// A replica set condition (`ReplicaFailure` when pods cannot be created).
public struct ReplicaSetCondition: Codable, Sendable, Hashable {
    public var type: String = ""
    public var status: ConditionStatus = .unknown
    public var lastTransitionTime: Timestamp?
    public var reason: String?
    public var message: String?
    public var unknownFields = UnknownFields()

    public init(type: String, status: ConditionStatus, lastTransitionTime: Timestamp? = nil, reason: String? = nil, message: String? = nil) {
        self.type = type
        self.status = status
        self.lastTransitionTime = lastTransitionTime
        self.reason = reason
        self.message = message
    }
}
