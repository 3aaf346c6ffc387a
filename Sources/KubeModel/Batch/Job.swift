/// A job (`batch/v1`): runs pods of its template until enough of them succeed.
public struct Job: KubeObject {
    public static let apiVersion = "batch/v1"
    public static let kind = "Job"

    public var apiVersion: String? = Job.apiVersion
    public var kind: String? = Job.kind
    public var metadata = ObjectMeta()
    public var spec: JobSpec?
    public var status: JobStatus?
    public var unknownFields = UnknownFields()

    public init(metadata: ObjectMeta = ObjectMeta(), spec: JobSpec? = nil, status: JobStatus? = nil) {
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }
}

/// How many pods succeed make the job complete, how many run at once, and its limits.
public struct JobSpec: Codable, Sendable, Hashable {
    public var parallelism: Int32?
    public var completions: Int32?
    public var activeDeadlineSeconds: Int64?
    public var backoffLimit: Int32?
    public var selector: LabelSelector?
    public var manualSelector: Bool?
    public var template: PodTemplateSpec?
    public var ttlSecondsAfterFinished: Int32?
    public var completionMode: String?
    public var suspend: Bool?
    public var podReplacementPolicy: String?
    public var podFailurePolicy: JSONValue?
    public var backoffLimitPerIndex: Int32?
    public var maxFailedIndexes: Int32?
    public var unknownFields = UnknownFields()

    public init(template: PodTemplateSpec? = nil) { self.template = template }
}

/// What the job controller counted.
public struct JobStatus: Codable, Sendable, Hashable {
    public var conditions: [JobCondition]?
    public var startTime: Timestamp?
    public var completionTime: Timestamp?
    public var active: Int32?
    public var succeeded: Int32?
    public var failed: Int32?
    public var terminating: Int32?
    public var ready: Int32?
    public var completedIndexes: String?
    public var failedIndexes: String?
    /// Pods that ended but are not in the counts yet (their tracking finalizer is being removed).
    public var uncountedTerminatedPods: UncountedTerminatedPods?
    public var unknownFields = UnknownFields()

    public init() {}
}

/// The uids of ended pods on their way into the counts.
public struct UncountedTerminatedPods: Codable, Sendable, Hashable {
    public var succeeded: [String]?
    public var failed: [String]?
    public var unknownFields = UnknownFields()

    public init(succeeded: [String]? = nil, failed: [String]? = nil) {
        self.succeeded = succeeded
        self.failed = failed
    }
}

/// `Complete`, `Failed` or `Suspended`.
public struct JobCondition: Codable, Sendable, Hashable {
    public var type: String = ""
    public var status: ConditionStatus = .unknown
    public var lastProbeTime: Timestamp?
    public var lastTransitionTime: Timestamp?
    public var reason: String?
    public var message: String?
    public var unknownFields = UnknownFields()

    public init(type: String, status: ConditionStatus, reason: String? = nil, message: String? = nil, at time: Timestamp? = nil) {
        self.type = type
        self.status = status
        self.reason = reason
        self.message = message
        lastProbeTime = time
        lastTransitionTime = time
    }
}
