#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import ImageStore
import KubeClient
import KubeModel
import Logging
import NIOPosix
import OCI
import PodNetwork
import Runtime
import SystemSupport

/// One pod's serial worker (the kubelet's pod worker): sets the pod up (sandbox, network,
/// volumes, files), runs its init containers in order and then its containers, restarts them
/// per the restart policy with the crash-loop back-off, runs their probes and hooks, reports
/// status on every change, and on deletion stops everything within the grace period and
/// releases what the pod held. Containers outlive the agent: a new worker adopts the running
/// containers of its pod instead of starting them again.
public actor PodWorker {
    public let uid: String
    /// The pod this sync works with; a newer version waits in `newerPod` until the next one.
    var pod: Pod
    var newerPod: Pod?
    /// Rejected or syncing (then evicting, finished), then terminating, then terminated.
    var state: PodWorkerState
    /// The sync in flight: removal, deletion and eviction cancel it (a pull, a probe, an API call).
    var syncInFlight: Task<Void, Never>?
    let host: PodHost
    let logger: Logger
    let directory: String
    var files: PodFiles { PodFiles(podDirectory: directory) }
    var volumes: PodVolumes { PodVolumes(podDirectory: directory) }

    var runs: [String: ContainerRun] = [:]
    var sandbox: PodSandbox?
    /// The pod's cgroup (hierarchy-relative), once made.
    var podCgroup: String?
    var networkReady = false
    var podIPs: [String] = []
    var volumePaths: [String: PreparedVolume]?
    var lastVolumeRefresh: Int64 = 0
    var lastLogCheck: Int64 = 0
    var setupProblem: (reason: String, message: String)?
    var setupBackoff = RestartBackoff()
    var configMaps: [String: ConfigMap] = [:]
    var secrets: [String: Secret] = [:]
    var startTime: Timestamp?
    /// `startTime` in seconds since boot: the active deadline counts from it.
    var activeSince: Int64?
    var lastStatus: PodStatus?
    /// An eviction or shutdown asked for and not yet carried out to the end.
    var killInProgress = false
    /// Ends the pause between syncs when something arrives from outside (or a probe's verdict
    /// changes, or a container's exit is recorded).
    let wake = WakeSignal()
    /// Containers whose exit records wake this worker, with their watches (see ``ContainerExitWatch``).
    var watchedExits: [String: ContainerExitWatch.Watch] = [:]
    /// The probe workers of the running containers and their verdicts.
    let probes = ProbeManager()
    /// Refused by admission: never run; its status is only phase, reason, message and QoS class
    /// (also while it terminates).
    let rejected: Bool

    /// `rejection`: admission refused the pod; it is reported Failed with the reason and not run.
    public init(pod: Pod, host: PodHost, rejection: PodAdmission.Rejection? = nil) {
        uid = pod.metadata.uid ?? ""
        self.pod = pod
        self.host = host
        var logger = host.logger
        logger[metadataKey: "pod"] = "\(pod.metadata.namespace ?? "default")/\(pod.metadata.name ?? "")"
        self.logger = logger
        directory = host.podDirectory(uid: pod.metadata.uid ?? "")
        lastStatus = pod.status
        startTime = pod.status?.startTime
        rejected = rejection != nil
        if let rejection {
            state = .rejected(PodOutcome(phase: .failed, reason: rejection.reason, message: rejection.message))
            logger.warning("pod rejected: \(rejection.message)")
        } else if let phase = pod.status?.phase, phase == .succeeded || phase == .failed {
            // Its final status was written before (by an earlier agent): nothing to add.
            state = .finished(PodOutcome(phase: phase, reason: pod.status?.reason, message: pod.status?.message, reportedBefore: true))
        } else {
            state = .syncing
        }
        // Deleted while the agent was away: the grace period counts from now.
        if pod.metadata.deletionTimestamp != nil {
            state = .terminating(deadline: host.clock.sinceBoot() + Self.gracePeriod(of: pod), deleteFromAPI: true, outcome: state.outcome)
        }
    }

    /// A newer version of the pod (newest wins; the next sync uses it, never one in flight).
    /// Deleted in the API, the pod starts terminating at once.
    public func update(_ newer: Pod) {
        newerPod = newer
        if newer.metadata.deletionTimestamp != nil {
            beginTerminating(deleteFromAPI: true, gracePeriod: Self.gracePeriod(of: newer))
        }
        wake.signal()
    }

    /// The pod is not wanted here any more: stop it (without deleting it from the API).
    public func remove() {
        beginTerminating(deleteFromAPI: false)
        wake.signal()
    }

    /// A wanted pod becomes terminating and the sync in flight is cancelled; a deletion while
    /// terminating can only shorten the deadline.
    func beginTerminating(deleteFromAPI: Bool, gracePeriod: Int64? = nil) {
        let deadline = self.now() + (gracePeriod ?? self.gracePeriod)
        switch state {
        case .rejected, .syncing, .evicting, .finished:
            state = .terminating(deadline: deadline, deleteFromAPI: deleteFromAPI, outcome: state.outcome)
            syncInFlight?.cancel()
            probes.stopLivenessAndStartup()
        case .terminating(let current, let deleting, let outcome):
            state = .terminating(deadline: min(current, deadline), deleteFromAPI: deleting || deleteFromAPI, outcome: outcome)
        case .terminated:
            break
        }
    }

    /// The pod ended (or is being evicted, which ends it): only from syncing or evicting, so
    /// that a sync resumed after a deletion never takes a terminating pod back. A pod that ends
    /// by itself before an eviction asked for is carried out needs no eviction any more.
    func finish(_ outcome: PodOutcome, byKill: Bool = false) {
        switch state {
        case .syncing:
            state = .finished(outcome)
        case .evicting:
            state = .finished(outcome)
            if !byKill { killInProgress = false }
        case .rejected, .finished, .terminating, .terminated:
            break
        }
    }

    var terminating: Bool { !state.isWanted }

    /// Runs until the pod is terminated (or the task is cancelled: the agent stops, the
    /// containers keep running and are adopted by the next agent).
    public func run() async {
        let probes = self.probes
        // The probe workers are children of the worker's task: they end with it.
        await withDiscardingTaskGroup { group in
            group.addTask { await probes.run() }
            await runSyncs()
            probes.finish()
        }
    }

    private func runSyncs() async {
        await inTaskOfItsOwn { await self.adopt() }
        while !Task.isCancelled {
            if let newerPod {
                pod = newerPod
                self.newerPod = nil
            }
            switch state {
            case .terminating(let deadline, let deleteFromAPI, _):
                await terminate(gracePeriod: max(0, deadline - self.now()), deleteFromAPI: deleteFromAPI)
                state = .terminated
                return
            case .terminated:
                return
            case .rejected, .syncing, .evicting, .finished:
                await runSync()
                guard state.isWanted else { continue }
                // Wake early when a newer spec, a deletion, an eviction, a probe's verdict or an
                // exit arrives.
                await wake.wait(upTo: pauseBetweenSyncs())
            }
        }
    }

    /// One sync in a task of its own, so that a removal or an eviction can cancel it (and the
    /// agent's shutdown, as before: the containers run on). The task ends here, and with it the
    /// memory of its deepest call chain: an async task keeps the frames of its deepest chain
    /// until it ends, about 300 KB for a container start, which the worker's task would otherwise
    /// hold for the pod's whole life.
    private func runSync() async {
        let sync = Task { await self.sync() }
        syncInFlight = sync
        await withTaskCancellationHandler { await sync.value } onCancel: { sync.cancel() }
        syncInFlight = nil
    }

    /// Runs `body` in a task that ends with it (see ``runSync()``), cancelled with the caller.
    private func inTaskOfItsOwn(_ body: @escaping @Sendable () async -> Void) async {
        let task = Task { await body() }
        await withTaskCancellationHandler { await task.value } onCancel: { task.cancel() }
    }

    /// Seconds since boot: the clock of every decision (see ``PodClock``).
    nonisolated func now() -> Int64 { host.clock.sinceBoot() }

    /// Records an event about the pod (or one of its containers).
    func event(_ reason: String, _ message: String, warning: Bool = false, container: Container? = nil) async {
        await host.events?.record(pod, type: warning ? "Warning" : "Normal", reason: reason, message: message, fieldPath: container.map(fieldPath(of:)))
    }

    /// How events name a container of the pod.
    func fieldPath(of container: Container) -> String {
        let isInit = pod.spec?.initContainers?.contains { $0.name == container.name } == true
        return "spec.\(isInit ? "initContainers" : "containers"){\(container.name)}"
    }

    static func timestamp(nanoseconds: Int64) -> Timestamp {
        Timestamp(seconds: nanoseconds / 1_000_000_000, nanoseconds: Int32(nanoseconds % 1_000_000_000))
    }

    var allContainers: [Container] { (pod.spec?.initContainers ?? []) + (pod.spec?.containers ?? []) }
    var hostNetwork: Bool { pod.spec?.hostNetwork == true }

    // MARK: sync

    func sync() async {
        let now = self.now()
        if startTime == nil { startTime = host.clock.wall(); activeSince = now }
        // A start time from before this worker (the API's, after an agent restart): placed on
        // the boot clock once, so a later wall-clock jump does not move the deadline.
        if activeSince == nil, let startTime { activeSince = host.clock.sinceBoot(ofWall: startTime) }
        observeExits(now: now)
        if state == .syncing, let deadline = pod.spec?.activeDeadlineSeconds, let activeSince, now - activeSince >= deadline {
            logger.notice("active deadline of \(deadline)s passed: stopping the pod")
            finish(PodOutcome(phase: .failed, reason: "DeadlineExceeded", message: "Pod was active on the node longer than the specified deadline"))
            await stopAll(gracePeriod: gracePeriod)
            observeExits(now: self.now())
        }
        var evicted = false, killed = false
        if case .evicting(let reason, let message, let gracePeriod) = state {
            evicted = reason == "Evicted"
            killed = true
            logger.warning("\(evicted ? "evicted" : "stopping (\(reason))"): \(message)")
            finish(PodOutcome(phase: .failed, reason: reason, message: message), byKill: true)
            // The kubelet records an event for evictions, not for a node shutdown.
            if evicted { await event("Evicted", message, warning: true) }
            await stopAll(gracePeriod: gracePeriod)
            observeExits(now: self.now())
        }
        defer { if killed { killInProgress = false } }
        if state == .syncing {
            await syncContainers(now: now)
        }
        // Cut short by a deletion, a removal or an eviction: what it saw half-way is not
        // reported (termination, or the next sync, reports what is true).
        if Task.isCancelled, state.outcome == nil { return }
        await report()
        let holdsDevices = host.devices?.holders.contains(uid) == true
        if case .finished(let outcome) = state, networkReady || sandbox != nil || holdsDevices {
            // A finished pod keeps its status but not its address nor its devices (once none of
            // its processes is left to use them).
            await stopAll(gracePeriod: gracePeriod)
            if networkReady || sandbox != nil {
                logger.info("pod \(outcome.phase.rawValue): releasing its network")
                await releaseNetwork()
            }
            if holdsDevices, !runs.values.contains(where: \.isRunning) {
                logger.info("pod \(outcome.phase.rawValue): releasing its devices")
                host.devices?.release(pod: uid)
            }
        }
        if evicted {
            // An evicted pod gives back its local storage (the kubelet tears its volumes down).
            let volumes = self.volumes
            do { try await blockingToTheEnd { try volumes.tearDown() } } catch { logger.warning("releasing the volumes of the evicted pod: \(error)") }
            volumePaths = nil
        }
    }

    func syncContainers(now: Int64) async {
        guard await setUpPod(now: now) else { return }
        // Init containers in order; sidecars (restartPolicy Always) keep running.
        for container in pod.spec?.initContainers ?? [] {
            let sidecar = container.restartPolicy == .always
            var run = runs[container.name] ?? freshRun(container)
            if sidecar {
                await keepRunning(container, &run, restart: true, now: now)
                runs[container.name] = run
                // A sidecar whose startup or liveness probe failed is restarted, also while the
                // init containers after it wait for it.
                await restartIfProbesFailed(container)
                if !started(container) { return }
                continue
            }
            if run.exitCode == 0 {
                runs[container.name] = run
                continue
            }
            if run.isRunning {
                runs[container.name] = run
                await restartIfProbesFailed(container)
                return
            }
            if run.exitCode != nil || run.lastTermination != nil, pod.spec?.restartPolicy == .never {
                runs[container.name] = run
                finish(PodOutcome(phase: .failed))
                return
            }
            await keepRunning(container, &run, restart: true, now: now)
            runs[container.name] = run
            return
        }
        let policy = pod.spec?.restartPolicy ?? .always
        for container in pod.spec?.containers ?? [] {
            var run = runs[container.name] ?? freshRun(container)
            let restart: Bool
            switch policy {
            case .always: restart = true
            case .onFailure: restart = run.exitCode != 0
            case .never: restart = false
            }
            await keepRunning(container, &run, restart: restart, now: now)
            runs[container.name] = run
        }
        for container in allContainers where runs[container.name]?.isRunning == true {
            await restartIfProbesFailed(container)
        }
        if now - lastLogCheck >= 10 {
            lastLogCheck = now
            let rotation = host.logRotation
            for container in allContainers {
                guard let run = runs[container.name], run.isRunning else { continue }
                let path = host.logPath(pod, container: container.name, restartCount: run.restartCount)
                do { try rotation.rotateIfNeeded(path) } catch { logger.warning("rotating \(path): \(error)") }
            }
        }
        // Every container ended for good (Never / OnFailure after success): the pod is done.
        let apps = (pod.spec?.containers ?? []).compactMap { runs[$0.name] }
        if policy != .always, apps.count == pod.spec?.containers.count, apps.allSatisfy({ $0.exitCode != nil }) {
            let done = apps.allSatisfy { $0.exitCode == 0 } || policy == .never
            if done { finish(PodOutcome(phase: apps.allSatisfy { $0.exitCode == 0 } ? .succeeded : .failed)) }
        }
    }

    /// A container without a run here yet. Runs before a reboot left their log files (and the
    /// API may remember their count): the next run continues the restart count.
    func freshRun(_ container: Container) -> ContainerRun {
        var run = ContainerRun()
        let folder = host.logDirectory + "/" + PodHost.logFolder(pod) + "/" + container.name
        let logged = FileTree.list(folder).compactMap { name in name.hasSuffix(".log") ? Int32(name.dropLast(4)) : nil }.max()
        let reported = ((pod.status?.containerStatuses ?? []) + (pod.status?.initContainerStatuses ?? []))
            .first { $0.name == container.name && $0.containerID != nil }?.restartCount
        // The API's count is any client's to write: bounded, so `+ 1` cannot trap.
        if let previous = [logged, reported].compactMap({ $0 }).max() {
            run.restartCount = min(max(0, previous), ContainerRun.maximumRestartCount)
            run.hasRun = true
            run.lastTermination = .terminated(exitCode: 255, signal: 0, oomKilled: false, execError: nil, startedAt: nil, finishedAt: .now(),
                                              message: "the container's previous run ended with the node (reboot or runtime state lost)")
        }
        return run
    }

    /// Starts a container that has not run, or restarts one that ended when `restart` allows
    /// and the back-off has passed.
    func keepRunning(_ container: Container, _ run: inout ContainerRun, restart: Bool, now: Int64) async {
        switch run.state {
        case .running:
            return
        case .terminated:
            guard restart else { return }
            run.lastTermination = run.state
            run.lastID = run.id
            run.state = .waiting(reason: "CrashLoopBackOff", message: run.backoff.message(container: container.name, pod: podLabel))
            fallthrough
        case .waiting:
            if run.backoff.isBackingOff(at: now) {
                if case .waiting(let reason, _) = run.state, reason == "CrashLoopBackOff", !run.backoffReported {
                    run.backoffReported = true
                    await event("BackOff", "Back-off restarting failed container \(container.name) in pod \(pod.metadata.name ?? "")", warning: true, container: container)
                }
                return
            }
            if run.pullBackoff.isBackingOff(at: now) || now < run.retryAt { return }
            run.backoffReported = false
            await start(container, &run)
        }
    }

    var podLabel: String { "\(pod.metadata.name ?? "")_\(pod.metadata.namespace ?? "default")(\(uid))" }

    var gracePeriod: Int64 { Self.gracePeriod(of: pod) }

    /// The deletion's grace period, else the spec's, else 30 s (bounded).
    static func gracePeriod(of pod: Pod) -> Int64 {
        SpecSeconds.bounded(pod.metadata.deletionGracePeriodSeconds ?? pod.spec?.terminationGracePeriodSeconds ?? 30)
    }
}
