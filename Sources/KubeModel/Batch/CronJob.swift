/// A cron job (`batch/v1`): creates a job from its template at each time of its schedule.
public struct CronJob: KubeObject {
    public static let apiVersion = "batch/v1"
    public static let kind = "CronJob"

    public var apiVersion: String? = CronJob.apiVersion
    public var kind: String? = CronJob.kind
    public var metadata = ObjectMeta()
    public var spec: CronJobSpec?
    public var status: CronJobStatus?
    public var unknownFields = UnknownFields()

    public init(metadata: ObjectMeta = ObjectMeta(), spec: CronJobSpec? = nil, status: CronJobStatus? = nil) {
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }
}

/// The schedule (standard cron syntax, in `timeZone`), what to do while a run is still going,
/// and how many finished jobs to keep.
public struct CronJobSpec: Codable, Sendable, Hashable {
    public var schedule: String = ""
    public var timeZone: String?
    public var startingDeadlineSeconds: Int64?
    public var concurrencyPolicy: String?
    public var suspend: Bool?
    public var jobTemplate: JobTemplateSpec = JobTemplateSpec()
    public var successfulJobsHistoryLimit: Int32?
    public var failedJobsHistoryLimit: Int32?
    public var unknownFields = UnknownFields()

    public init(schedule: String, jobTemplate: JobTemplateSpec = JobTemplateSpec()) {
        self.schedule = schedule
        self.jobTemplate = jobTemplate
    }
}

/// The job a cron job creates: its labels and annotations and its spec.
public struct JobTemplateSpec: Codable, Sendable, Hashable {
    public var metadata: ObjectMeta?
    public var spec: JobSpec?
    public var unknownFields = UnknownFields()

    public init(metadata: ObjectMeta? = nil, spec: JobSpec? = nil) {
        self.metadata = metadata
        self.spec = spec
    }
}

/// The jobs running now and when the schedule last fired and last succeeded.
public struct CronJobStatus: Codable, Sendable, Hashable {
    public var active: [ObjectReference]?
    public var lastScheduleTime: Timestamp?
    public var lastSuccessfulTime: Timestamp?
    public var unknownFields = UnknownFields()

    public init() {}
}
