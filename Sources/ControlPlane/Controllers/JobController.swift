import KubeModel
import Logging
import ServiceLifecycle
import Synchronization

/// The job controller: runs up to `parallelism` pods until `completions` succeeded (or, with
/// no completions, until one succeeded and the rest ended), retrying failed pods with kube's
/// back-off (10 s doubling, at most 6 min) up to `backoffLimit`, failing the job past it or
/// past `activeDeadlineSeconds`, suspending and resuming, and deleting finished jobs after
/// `ttlSecondsAfterFinished`. Ended pods are counted once, even across a restart: each pod
/// carries the tracking finalizer until its uid is recorded in the status (kube's
/// `uncountedTerminatedPods`), then it goes into the counts.
public final class JobController: Service, Sendable {
    static let trackingFinalizer = "batch.kubernetes.io/job-tracking"
    static let backoffBase: Int64 = 10
    static let backoffLimitSeconds: Int64 = 360

    let store: ObjectStore
    let logger: Logger
    let resync: Duration
    let writes: ControllerWrites
    /// When each job (by uid) may create pods again after failures. Lost at restart, which
    /// only retries sooner.
    private let retryAt = Mutex<[String: ContinuousClock.Instant]>([:])

    public init(store: ObjectStore, logger: Logger, resync: Duration = .seconds(10)) {
        self.store = store
        self.logger = logger
        self.resync = resync
        writes = ControllerWrites(store: store, component: "job-controller")
    }

    public func run() async throws {
        try await ControllerLoop(store: store, resources: [.jobs, .pods], resync: resync).run(isRelevant: Self.isRelevant) { [self] in
            syncAll()
        }
    }

    static func isRelevant(_ change: Change) -> Bool {
        if change.resource != ResourceType.pods.storageKey { return true }
        return ReplicaSetController.isRelevant(change) || change.object[path: ["metadata", "finalizers"]] != change.previous?[path: ["metadata", "finalizers"]]
    }

    func syncAll() -> Duration? {
        do {
            let jobs = try store.list(.jobs, namespace: nil).items.compactMap { try? KubeJSON.decode(Job.self, from: $0) }
            var podsByNamespace: [String: [Pod]] = [:]
            for tree in try store.list(.pods, namespace: nil).items {
                // Only pods of jobs, or still carrying the tracking finalizer, are decoded (the
                // pass runs on every pod change: decoding every pod would cost the most).
                let owners = tree[path: ["metadata", "ownerReferences"]]?.arrayValue ?? []
                let tracked = (tree[path: ["metadata", "finalizers"]]?.arrayValue ?? []).contains(.string(Self.trackingFinalizer))
                guard tracked || owners.contains(where: { $0.string(at: ["kind"]) == Job.kind }),
                      let pod = try? KubeJSON.decode(Pod.self, from: tree) else { continue }
                podsByNamespace[pod.metadata.namespace ?? "", default: []].append(pod)
            }
            var nextDue: Duration?
            for job in jobs {
                do {
                    if let due = try sync(job, pods: podsByNamespace[job.metadata.namespace ?? ""] ?? []) { nextDue = min(nextDue ?? due, due) }
                } catch {
                    logger.warning("job \(job.qualifiedName): \(error)")
                }
            }
            try releaseOrphans(podsByNamespace.values.joined(), liveJobs: Set(jobs.filter { $0.metadata.deletionTimestamp == nil }.compactMap(\.metadata.uid)))
            let known = Set(jobs.compactMap(\.metadata.uid))
            retryAt.withLock { table in table = table.filter { known.contains($0.key) } }
            return nextDue
        } catch {
            logger.warning("job pass failed: \(error)")
            return nil
        }
    }

    /// Pods whose job is gone or being deleted lose their tracking finalizer (kube's
    /// syncOrphanPod): nothing will count them, and the finalizer must not keep them forever.
    private func releaseOrphans<Pods: Sequence<Pod>>(_ pods: Pods, liveJobs: Set<String>) throws {
        for pod in pods where pod.metadata.finalizers?.contains(Self.trackingFinalizer) == true {
            if let owner = pod.metadata.controllerReference, owner.kind == Job.kind, liveJobs.contains(owner.uid) { continue }
            try removeTrackingFinalizer(pod)
        }
    }

    static func finished(_ job: Job) -> JobCondition? {
        job.status?.conditions?.first { ($0.type == "Complete" || $0.type == "Failed") && $0.status == .true }
    }

    func sync(_ job: Job, pods: [Pod]) throws -> Duration? {
        guard let uid = job.metadata.uid, let namespace = job.metadata.namespace, let spec = job.spec else { return nil }
        let owned = pods.filter { $0.metadata.controllerReference?.uid == uid }
        var status = job.status ?? JobStatus()
        let now = Timestamp.now()

        // Ended pods: recorded by uid first, then released, then counted.
        var uncountedSucceeded = status.uncountedTerminatedPods?.succeeded ?? []
        var uncountedFailed = status.uncountedTerminatedPods?.failed ?? []
        let recorded = Set(uncountedSucceeded + uncountedFailed)
        var newlyEnded = false
        for pod in owned where pod.metadata.finalizers?.contains(Self.trackingFinalizer) == true {
            guard let podUID = pod.metadata.uid, !recorded.contains(podUID) else { continue }
            if pod.status?.phase == .succeeded {
                uncountedSucceeded.append(podUID)
                newlyEnded = true
            } else if pod.status?.phase == .failed || pod.metadata.deletionTimestamp != nil {
                uncountedFailed.append(podUID)
                newlyEnded = true
            }
        }
        if newlyEnded {
            status.uncountedTerminatedPods = UncountedTerminatedPods(succeeded: uncountedSucceeded, failed: uncountedFailed)
            try writeStatus(job, status)
        }
        let byUID = Dictionary(owned.compactMap { pod in pod.metadata.uid.map { ($0, pod) } }, uniquingKeysWith: { first, _ in first })
        var released: Set<String> = []
        for podUID in uncountedSucceeded + uncountedFailed {
            guard let pod = byUID[podUID] else {
                released.insert(podUID)  // gone: it was released before
                continue
            }
            try removeTrackingFinalizer(pod)
            released.insert(podUID)
        }
        let failures = Int32(clamping: uncountedFailed.filter(released.contains).count)
        status.succeeded = Int32(clamping: Int64(status.succeeded ?? 0) + Int64(uncountedSucceeded.filter(released.contains).count))
        status.failed = Int32(clamping: Int64(status.failed ?? 0) + Int64(failures))
        let remainingSucceeded = uncountedSucceeded.filter { !released.contains($0) }
        let remainingFailed = uncountedFailed.filter { !released.contains($0) }
        status.uncountedTerminatedPods = remainingSucceeded.isEmpty && remainingFailed.isEmpty ? nil
            : UncountedTerminatedPods(succeeded: remainingSucceeded, failed: remainingFailed)
        if failures > 0 {
            let wait = min(Self.backoffLimitSeconds, Self.backoffBase << Int64(min(max(0, Int(status.failed ?? 1) - 1), 10)))
            retryAt.withLock { $0[uid] = ContinuousClock.now + .seconds(wait) }
        }

        let active = owned.filter { $0.metadata.deletionTimestamp == nil && !PodAvailability.hasEnded($0) }
        status.active = active.isEmpty ? nil : Int32(clamping: active.count)
        let ready = active.filter(PodAvailability.isReady).count
        status.ready = Int32(clamping: ready)
        let terminating = owned.filter { $0.metadata.deletionTimestamp != nil && !PodAvailability.hasEnded($0) }.count
        status.terminating = terminating == 0 ? nil : Int32(clamping: terminating)
        var nextDue: Duration?

        if job.metadata.deletionTimestamp != nil {
            // Being deleted: nothing new starts (its pods lose their finalizers as orphans).
            try writeStatusIfChanged(job, status)
            return nil
        }
        if let finish = Self.finished(job) {
            for pod in active { try writes.deletePod(namespace: namespace, name: pod.metadata.name ?? "", uid: pod.metadata.uid) }
            try writeStatusIfChanged(job, status)
            return try expire(job, finishedAt: job.status?.completionTime ?? finish.lastTransitionTime ?? now, now: now)
        }
        var conditions = status.conditions ?? []
        let succeeded = Int64(status.succeeded ?? 0)
        let failed = Int64(status.failed ?? 0)
        var finishing: JobCondition?
        // With restartPolicy OnFailure the node restarts containers in place: their restarts
        // count against backoffLimit too, as in Kubernetes.
        let restarts = spec.template?.spec?.restartPolicy == .onFailure
            ? active.reduce(Int64(0)) { total, pod in total + (pod.status?.containerStatuses ?? []).reduce(Int64(0)) { $0 + Int64(max(0, $1.restartCount)) } } : 0
        if failed + restarts > Int64(spec.backoffLimit ?? 6) {
            finishing = JobCondition(type: "Failed", status: .true, reason: "BackoffLimitExceeded", message: "Job has reached the specified backoff limit", at: now)
        } else if let deadline = spec.activeDeadlineSeconds, let start = status.startTime, spec.suspend != true,
                  max(0, now.seconds - start.seconds) >= deadline {
            finishing = JobCondition(type: "Failed", status: .true, reason: "DeadlineExceeded", message: "Job was active longer than specified deadline", at: now)
        } else if let completions = spec.completions, succeeded >= Int64(completions) {
            finishing = JobCondition(type: "Complete", status: .true, at: now)
        } else if spec.completions == nil, succeeded > 0, active.isEmpty {
            finishing = JobCondition(type: "Complete", status: .true, at: now)
        }
        if let finishing {
            for pod in active { try writes.deletePod(namespace: namespace, name: pod.metadata.name ?? "", uid: pod.metadata.uid) }
            conditions.append(finishing)
            status.conditions = conditions
            if finishing.type == "Complete" { status.completionTime = now }
            status.active = nil
            try writeStatusIfChanged(job, status)
            writes.event(about: ControllerWrites.reference(job), type: finishing.type == "Complete" ? "Normal" : "Warning",
                         reason: finishing.type == "Complete" ? "Completed" : (finishing.reason ?? "Failed"), message: finishing.message ?? "Job completed")
            retryAt.withLock { $0[uid] = nil }
            return .seconds(1)
        }

        if spec.suspend == true {
            for pod in active { try writes.deletePod(namespace: namespace, name: pod.metadata.name ?? "", uid: pod.metadata.uid) }
            status.active = nil
            status.startTime = nil
            setCondition(&conditions, JobCondition(type: "Suspended", status: .true, reason: "JobSuspended", message: "Job suspended", at: now))
        } else {
            if conditions.contains(where: { $0.type == "Suspended" && $0.status == .true }) {
                setCondition(&conditions, JobCondition(type: "Suspended", status: .false, reason: "JobResumed", message: "Job resumed", at: now))
            }
            status.startTime = status.startTime ?? now
            let parallelism = Int64(spec.parallelism ?? 1)
            let wanted = max(0, spec.completions.map { min(parallelism, Int64($0) - succeeded) } ?? (succeeded > 0 ? 0 : parallelism))
            if Int64(active.count) < wanted {
                let wait = retryAt.withLock { table -> Duration? in
                    guard let at = table[uid] else { return nil }
                    let left = at - ContinuousClock.now
                    return left > .zero ? left : nil
                }
                if let wait {
                    nextDue = wait
                } else {
                    let count = min(Int(wanted) - active.count, ReplicaSetController.burstReplicas)
                    for _ in 0..<count {
                        do {
                            let pod = try writes.create(.pods, namespace: namespace, object: try KubeJSON.tree(podFromTemplate(job)))
                            writes.event(about: ControllerWrites.reference(job), type: "Normal", reason: "SuccessfulCreate",
                                         message: "Created pod: \(pod.string(at: ["metadata", "name"]) ?? "")")
                        } catch {
                            writes.event(about: ControllerWrites.reference(job), type: "Warning", reason: "FailedCreate", message: "Error creating: \(error)")
                            break
                        }
                    }
                }
            } else if Int64(active.count) > wanted {
                for pod in PodAvailability.deletionOrder(active).prefix(active.count - Int(wanted)) {
                    try writes.deletePod(namespace: namespace, name: pod.metadata.name ?? "", uid: pod.metadata.uid)
                }
            }
            if let deadline = spec.activeDeadlineSeconds, let start = status.startTime {
                // A start in the future (a clock that jumped, a status a client wrote) counts as now.
                let elapsed = max(0, now.seconds - start.seconds)
                let left = deadline > elapsed ? min(deadline - elapsed, 86_400) : 1
                nextDue = min(nextDue ?? .seconds(left), .seconds(left))
            }
        }
        status.conditions = conditions.isEmpty ? nil : conditions
        try writeStatusIfChanged(job, status)
        return nextDue
    }

    private func setCondition(_ conditions: inout [JobCondition], _ condition: JobCondition) {
        if let index = conditions.firstIndex(where: { $0.type == condition.type }) {
            if conditions[index].status != condition.status || conditions[index].reason != condition.reason { conditions[index] = condition }
        } else {
            conditions.append(condition)
        }
    }

    /// Deletes a finished job once its `ttlSecondsAfterFinished` passed (its pods follow, by
    /// the garbage collector); returns when that is due.
    private func expire(_ job: Job, finishedAt: Timestamp, now: Timestamp) throws -> Duration? {
        guard let ttl = job.spec?.ttlSecondsAfterFinished, let name = job.metadata.name, let namespace = job.metadata.namespace else { return nil }
        let age = now.seconds - finishedAt.seconds
        if age >= Int64(ttl) {
            logger.info("deleting job \(namespace)/\(name): finished \(age) s ago, ttlSecondsAfterFinished \(ttl)")
            try? writes.delete(.jobs, namespace: namespace, name: name, uid: job.metadata.uid)
            return nil
        }
        return .seconds(Int64(ttl) - age)
    }

    private func podFromTemplate(_ job: Job) -> Pod {
        let template = job.spec?.template
        var metadata = ObjectMeta(labels: template?.metadata?.labels, annotations: template?.metadata?.annotations)
        metadata.generateName = String((job.metadata.name ?? "").prefix(57)) + "-"
        metadata.finalizers = (template?.metadata?.finalizers ?? []) + [Self.trackingFinalizer]
        metadata.ownerReferences = [ControllerWrites.controllerReference(to: job)]
        var pod = Pod(metadata: metadata, spec: template?.spec)
        pod.setTypeMeta()
        return pod
    }

    private func removeTrackingFinalizer(_ pod: Pod) throws {
        guard let name = pod.metadata.name, let namespace = pod.metadata.namespace, pod.metadata.finalizers?.contains(Self.trackingFinalizer) == true else { return }
        let stored = try store.update(.pods, namespace: namespace, name: name) { object in
            guard object.string(at: ["metadata", "uid"]) == pod.metadata.uid, let finalizers = object[path: ["metadata", "finalizers"]]?.arrayValue else { return nil }
            let kept = finalizers.filter { $0.stringValue != Self.trackingFinalizer }
            guard kept.count != finalizers.count else { return nil }
            var next = object
            next.set(["metadata", "finalizers"], kept.isEmpty ? nil : .array(kept))
            return next
        }
        // A pod being deleted whose last finalizer this was goes now (unless its node must confirm).
        if stored.string(at: ["metadata", "uid"]) == pod.metadata.uid, APIServer.mayRemove(stored, resource: .pods) {
            _ = try? store.delete(.pods, namespace: namespace, name: name, expectedUID: pod.metadata.uid)
        }
    }

    private func writeStatusIfChanged(_ job: Job, _ status: JobStatus) throws {
        guard status != (job.status ?? JobStatus()) else { return }
        try writeStatus(job, status)
    }

    private func writeStatus(_ job: Job, _ status: JobStatus) throws {
        guard let name = job.metadata.name, let namespace = job.metadata.namespace else { return }
        let tree = try KubeJSON.tree(status)
        try store.update(.jobs, namespace: namespace, name: name) { object in
            guard object.string(at: ["metadata", "uid"]) == job.metadata.uid else { return nil }
            var next = object
            next.set(["status"], tree)
            return next
        }
    }
}
