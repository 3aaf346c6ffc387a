/// A deployment (`apps/v1`): rolls its pod template out through replica sets, one per revision.
public struct Deployment: KubeObject {
    public static let apiVersion = "apps/v1"
    public static let kind = "Deployment"

    public var apiVersion: String? = Deployment.apiVersion
    public var kind: String? = Deployment.kind
    public var metadata = ObjectMeta()
    public var spec: DeploymentSpec?
    public var status: DeploymentStatus?
    public var unknownFields = UnknownFields()

    public init(metadata: ObjectMeta = ObjectMeta(), spec: DeploymentSpec? = nil, status: DeploymentStatus? = nil) {
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }
}

/// The desired pods of a deployment and how a new template replaces the old one.
public struct DeploymentSpec: Codable, Sendable, Hashable {
    public var replicas: Int32?
    public var selector: LabelSelector?
    public var template: PodTemplateSpec?
    public var strategy: DeploymentStrategy?
    public var minReadySeconds: Int32?
    public var revisionHistoryLimit: Int32?
    public var paused: Bool?
    public var progressDeadlineSeconds: Int32?
    public var unknownFields = UnknownFields()

    public init(replicas: Int32? = nil, selector: LabelSelector? = nil, template: PodTemplateSpec? = nil) {
        self.replicas = replicas
        self.selector = selector
        self.template = template
    }
}

/// `RollingUpdate` (with its surge and unavailability bounds) or `Recreate`.
public struct DeploymentStrategy: Codable, Sendable, Hashable {
    public var type: String?
    public var rollingUpdate: RollingUpdateDeployment?
    public var unknownFields = UnknownFields()

    public init(type: String? = nil, rollingUpdate: RollingUpdateDeployment? = nil) {
        self.type = type
        self.rollingUpdate = rollingUpdate
    }
}

/// How far a rolling update may go below (`maxUnavailable`) and above (`maxSurge`) the replica count.
public struct RollingUpdateDeployment: Codable, Sendable, Hashable {
    public var maxUnavailable: IntOrString?
    public var maxSurge: IntOrString?
    public var unknownFields = UnknownFields()

    public init(maxUnavailable: IntOrString? = nil, maxSurge: IntOrString? = nil) {
        self.maxUnavailable = maxUnavailable
        self.maxSurge = maxSurge
    }
}

/// What the deployment controller last saw of a deployment's replica sets.
public struct DeploymentStatus: Codable, Sendable, Hashable {
    public var observedGeneration: Int64?
    public var replicas: Int32?
    public var updatedReplicas: Int32?
    public var readyReplicas: Int32?
    public var availableReplicas: Int32?
    public var unavailableReplicas: Int32?
    public var conditions: [DeploymentCondition]?
    public var collisionCount: Int32?
    public var unknownFields = UnknownFields()

    public init() {}
}

/// `Available`, `Progressing` or `ReplicaFailure`.
public struct DeploymentCondition: Codable, Sendable, Hashable {
    public var type: String = ""
    public var status: ConditionStatus = .unknown
    public var lastUpdateTime: Timestamp?
    public var lastTransitionTime: Timestamp?
    public var reason: String?
    public var message: String?
    public var unknownFields = UnknownFields()

    public init(type: String, status: ConditionStatus, reason: String? = nil, message: String? = nil, at time: Timestamp? = nil) {
        self.type = type
        self.status = status
        self.reason = reason
        self.message = message
        lastUpdateTime = time
        lastTransitionTime = time
    }
}
