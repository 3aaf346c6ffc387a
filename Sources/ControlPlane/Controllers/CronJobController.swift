import KubeModel
import Logging
import ServiceLifecycle

/// The cron job controller: at each time of a cron job's schedule (in its `timeZone`) it
/// creates a job from the template, named by the scheduled minute (so a restarted server
/// never runs one time twice). Missed times run once, late, within `startingDeadlineSeconds`;
/// `concurrencyPolicy` Forbid skips a time while a run is active, Replace deletes the active
/// runs first. Finished jobs beyond the history limits are deleted.
public final class CronJobController: Service, Sendable {
    static let scheduledTimestampAnnotation = "batch.kubernetes.io/cronjob-scheduled-timestamp"

    let store: ObjectStore
    let logger: Logger
    let resync: Duration
    let writes: ControllerWrites

    public init(store: ObjectStore, logger: Logger, resync: Duration = .seconds(10)) {
        self.store = store
        self.logger = logger
        self.resync = resync
        writes = ControllerWrites(store: store, component: "cronjob-controller")
    }

    public func run() async throws {
        try await ControllerLoop(store: store, resources: [.cronJobs, .jobs], resync: resync).run(isRelevant: { _ in true }) { [self] in
            syncAll()
        }
    }

    func syncAll() -> Duration? {
        do {
            let cronJobs = try store.list(.cronJobs, namespace: nil).items.compactMap { try? KubeJSON.decode(CronJob.self, from: $0) }
            guard !cronJobs.isEmpty else { return nil }
            var jobsByNamespace: [String: [Job]] = [:]
            for tree in try store.list(.jobs, namespace: nil).items {
                guard let job = try? KubeJSON.decode(Job.self, from: tree) else { continue }
                jobsByNamespace[job.metadata.namespace ?? "", default: []].append(job)
            }
            var nextDue: Duration?
            for cronJob in cronJobs {
                do {
                    if let due = try sync(cronJob, jobs: jobsByNamespace[cronJob.metadata.namespace ?? ""] ?? [], now: .now()) {
                        nextDue = min(nextDue ?? due, due)
                    }
                } catch {
                    logger.warning("cron job \(cronJob.qualifiedName): \(error)")
                }
            }
            return nextDue
        } catch {
            logger.warning("cron job pass failed: \(error)")
            return nil
        }
    }

    func sync(_ cronJob: CronJob, jobs: [Job], now: Timestamp) throws -> Duration? {
        guard let uid = cronJob.metadata.uid, let name = cronJob.metadata.name, let namespace = cronJob.metadata.namespace,
              let spec = cronJob.spec, let schedule = try? CronSchedule(parsing: spec.schedule), let zone = ZoneRules.load(spec.timeZone) else { return nil }
        let owned = jobs.filter { $0.metadata.controllerReference?.uid == uid }
        let active = owned.filter { JobController.finished($0) == nil && $0.metadata.deletionTimestamp == nil }
        var status = cronJob.status ?? CronJobStatus()
        try cleanUpHistory(owned, spec: spec)
        let succeededAt = owned.compactMap { JobController.finished($0)?.type == "Complete" ? $0.status?.completionTime : nil }.max { $0.seconds < $1.seconds }
        if let succeededAt, (status.lastSuccessfulTime?.seconds ?? Int64.min) < succeededAt.seconds { status.lastSuccessfulTime = succeededAt }
        status.active = active.isEmpty ? nil : active.map(ControllerWrites.reference)
        // The first scheduled instant after now (a repeated autumn hour maps a wall time to an
        // instant already past: step on until one is ahead).
        var nextTime: Int64?
        var wall = zone.wallTime(at: now.seconds)
        for _ in 0..<1_500 {
            guard let candidate = schedule.next(after: wall) else { break }
            let instant = zone.instant(of: candidate)
            if instant > now.seconds {
                nextTime = instant
                break
            }
            wall = candidate
        }
        let dueAgain = nextTime.map { Duration.seconds(max(1, $0 - now.seconds)) }
        guard spec.suspend != true, cronJob.metadata.deletionTimestamp == nil else {
            try writeStatus(cronJob, status)
            return dueAgain
        }
        // The most recent scheduled time since the last run (or the creation), if any.
        let since = status.lastScheduleTime?.seconds ?? cronJob.metadata.creationTimestamp?.seconds ?? now.seconds
        guard let latestWall = schedule.previous(atOrBefore: zone.wallTime(at: now.seconds)) else {
            try writeStatus(cronJob, status)
            return dueAgain
        }
        let scheduled = zone.instant(of: latestWall)
        // A wall time in a spring gap reads as an instant after now: not due yet.
        guard scheduled > since, scheduled <= now.seconds else {
            try writeStatus(cronJob, status)
            return dueAgain
        }
        if let deadline = spec.startingDeadlineSeconds, now.seconds - scheduled > deadline {
            writes.event(about: ControllerWrites.reference(cronJob), type: "Warning", reason: "MissSchedule",
                         message: "Missed scheduled time to start a job: \(Timestamp(seconds: scheduled))")
            status.lastScheduleTime = Timestamp(seconds: scheduled)
            try writeStatus(cronJob, status)
            return dueAgain
        }
        switch spec.concurrencyPolicy ?? "Allow" {
        case "Forbid" where !active.isEmpty:
            // Tried again when the active run ends (its end changes a job and wakes this pass).
            try writeStatus(cronJob, status)
            return dueAgain
        case "Replace":
            for job in active {
                guard let jobName = job.metadata.name else { continue }
                try? writes.delete(.jobs, namespace: namespace, name: jobName, uid: job.metadata.uid)
                writes.event(about: ControllerWrites.reference(cronJob), type: "Normal", reason: "SuccessfulDelete", message: "Deleted job \(jobName)")
            }
            status.active = nil
        default:
            break
        }
        let jobName = "\(name)-\(scheduled / 60)"
        var metadata = cronJob.spec?.jobTemplate.metadata ?? ObjectMeta()
        metadata.name = jobName
        metadata.namespace = namespace
        metadata.annotations = (metadata.annotations ?? [:]).merging([Self.scheduledTimestampAnnotation: Timestamp(seconds: scheduled).description]) { $1 }
        metadata.ownerReferences = [ControllerWrites.controllerReference(to: cronJob)]
        var job = Job(metadata: metadata, spec: spec.jobTemplate.spec)
        job.setTypeMeta()
        do {
            let created = try KubeJSON.decode(Job.self, from: try writes.create(.jobs, namespace: namespace, object: try KubeJSON.tree(job)))
            status.active = (status.active ?? []) + [ControllerWrites.reference(created)]
            writes.event(about: ControllerWrites.reference(cronJob), type: "Normal", reason: "SuccessfulCreate", message: "Created job \(jobName)")
        } catch let error as APIError where error.code == 409 {
            // Created before a restart: this time has run. A job of that name made by someone
            // else is reported (the time is not run twice either way).
            let existing = try store.get(.jobs, namespace: namespace, name: jobName).flatMap { try? KubeJSON.decode(Job.self, from: $0) }
            if existing?.metadata.controllerReference?.uid != uid {
                writes.event(about: ControllerWrites.reference(cronJob), type: "Warning", reason: "FailedCreate",
                             message: "Error creating job \(jobName): a job of that name exists and is not this cron job's")
            }
        } catch {
            writes.event(about: ControllerWrites.reference(cronJob), type: "Warning", reason: "FailedCreate", message: "Error creating job: \(error)")
            try writeStatus(cronJob, status)
            return .seconds(10)
        }
        status.lastScheduleTime = Timestamp(seconds: scheduled)
        try writeStatus(cronJob, status)
        return dueAgain
    }

    /// Deletes the oldest finished jobs beyond `successfulJobsHistoryLimit` and `failedJobsHistoryLimit`.
    private func cleanUpHistory(_ owned: [Job], spec: CronJobSpec) throws {
        for (type, limit) in [("Complete", spec.successfulJobsHistoryLimit ?? 3), ("Failed", spec.failedJobsHistoryLimit ?? 1)] {
            // Oldest first: by the time each was scheduled for (its annotation), then its start.
            func order(_ job: Job) -> (String, Int64, String) {
                (job.metadata.annotations?[Self.scheduledTimestampAnnotation] ?? "",
                 job.status?.startTime?.seconds ?? job.metadata.creationTimestamp?.seconds ?? 0, job.metadata.name ?? "")
            }
            let finished = owned.filter { JobController.finished($0)?.type == type && $0.metadata.deletionTimestamp == nil }
                .sorted { order($0) < order($1) }
            for job in finished.prefix(max(0, finished.count - Int(max(0, limit)))) {
                guard let jobName = job.metadata.name, let namespace = job.metadata.namespace else { continue }
                try? writes.delete(.jobs, namespace: namespace, name: jobName, uid: job.metadata.uid)
            }
        }
    }

    private func writeStatus(_ cronJob: CronJob, _ status: CronJobStatus) throws {
        guard status != (cronJob.status ?? CronJobStatus()), let name = cronJob.metadata.name, let namespace = cronJob.metadata.namespace else { return }
        let tree = try KubeJSON.tree(status)
        try store.update(.cronJobs, namespace: namespace, name: name) { object in
            guard object.string(at: ["metadata", "uid"]) == cronJob.metadata.uid else { return nil }
            var next = object
            next.set(["status"], tree)
            return next
        }
    }
}
