#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import CRuntime
import KubeModel
import Logging
import NIOPosix
import ServiceLifecycle
import SystemSupport

/// The kubelet's graceful node shutdown: holds a delay inhibitor lock of systemd-logind, and
/// when logind announces a shutdown or reboot (PrepareForShutdown) stops the pods by priority
/// group within the plan's time, reports them Failed (reason Terminated, a DisruptionTarget
/// condition), then releases the lock so the shutdown goes on. Where logind's
/// InhibitDelayMaxSec is shorter than the plan, it is raised with a drop-in
/// (`99-iotkube.conf`, as the kubelet writes `99-kubelet.conf`) and logind reloaded.
public struct NodeShutdownService: Service {
    let shutdown: NodeShutdown
    let logindConfigDirectory: String
    let logger: Logger

    public init(plan: NodeShutdownPlan, pods: PodWorkers, host: PodHost, logindConfigDirectory: String = "/etc/systemd/logind.conf.d", logger: Logger) {
        shutdown = NodeShutdown(plan: plan, pods: pods, host: host, logger: logger)
        self.logindConfigDirectory = logindConfigDirectory
        self.logger = logger
    }

    var plan: NodeShutdownPlan { shutdown.plan }

    public func run() async throws {
        // Off: nothing to hold (returning would end the agent's service group).
        guard plan.isEnabled else {
            try? await gracefulShutdown()
            return
        }
        let lock = InhibitorLock()
        defer { lock.release() }
        var failures = 0
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            var connected = false
            do {
                try await watch(lock) {
                    connected = true
                    failures = 0
                }
            } catch {
                failures += 1
                if connected {
                    logger.warning("graceful node shutdown: \(error)")
                } else if failures == 1 || failures % 20 == 0 {
                    logger.error("graceful node shutdown is not available (\(error)): on a shutdown systemd stops the pods without their grace periods; retrying every 30 s")
                }
            }
            // A connection that worked is made again at once (logind restarted); else every 30 s.
            let pause: Duration = connected ? .seconds(1) : .seconds(30)
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: pause) }
        }
    }

    /// One connection to logind: the lock (kept from an earlier connection), then a look every
    /// second for its signal. A shutdown that began or was cancelled while the agent was not
    /// connected is caught up with from logind's PreparingForShutdown.
    func watch(_ lock: InhibitorLock, connected: () -> Void) async throws {
        let logind = try await LogindConnection.open()
        if try await logind.preparingForShutdown() {
            // Under way already: the pods first, logind's settings later.
            connected()
            await shutDown(lock)
        }
        try await ensureInhibitDelay(logind)
        connected()
        logger.info("graceful node shutdown: a shutdown waits up to \(plan.totalSeconds) s for the pods (\(plan.groups.map { "priority ≥ \($0.priority): \($0.gracePeriodSeconds) s" }.joined(separator: ", ")))")
        var looks = 0
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            var signal = try await logind.poll()
            // Every 5 s logind's own state too: a signal the bus did not deliver (a client
            // filling the agent's queue) is not missed for long.
            looks += 1
            if signal == .none, looks % 5 == 0 {
                signal = try await logind.preparingForShutdown() ? .shutdownBegins : .shutdownCancelled
            }
            switch signal {
            case .none:
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(1)) }
            case .more:
                await Task.yield()
            case .shutdownBegins:
                await shutDown(lock)
            case .shutdownCancelled:
                cancelled()
                if !lock.isHeld { lock.hold(try await logind.inhibit()) }
            }
        }
    }

    func shutDown(_ lock: InhibitorLock) async {
        guard !shutdown.host.shutdown.isShuttingDown else { return }
        await shutdown.stopPods(signalled: .now)
        lock.release()
        logger.notice("graceful node shutdown: pods stopped, the shutdown goes on")
    }

    func cancelled() {
        guard shutdown.host.shutdown.isShuttingDown else { return }
        shutdown.host.shutdown.set(false)
        logger.notice("the shutdown was cancelled: pods are admitted again")
    }

    /// logind holds a shutdown back at most InhibitDelayMaxSec (5 s by default): raised to the
    /// plan's time (and a few seconds for the final statuses) when shorter. A value it still
    /// refuses is reported; the shutdown then gets that much.
    func ensureInhibitDelay(_ logind: LogindConnection) async throws {
        let wanted = plan.totalSeconds + NodeShutdown.statusSeconds + 2
        var current = try await logind.inhibitDelayMaxSeconds()
        guard current < wanted else { return }
        let path = logindConfigDirectory + "/99-iotkube.conf", directory = logindConfigDirectory
        do {
            try await NIOThreadPool.singleton.runIfActive {
                try FileTree.makeDirectories(directory, mode: 0o755)
                let text = "# Written by iotkube-agent: logind waits this long for the agent to stop its pods on shutdown (shutdownGracePeriod).\n[Login]\nInhibitDelayMaxSec=\(wanted)\n"
                try AtomicFile.write(Array(text.utf8), to: path, mode: 0o644)
                var error = [CChar](repeating: 0, count: 512)
                if iotkube_systemd_kill_unit("systemd-logind.service", SIGHUP, &error, error.count) != 0 { throw LogindError(LogindConnection.text(error)) }
            }
        } catch {
            logger.error("logind's InhibitDelayMaxSec is \(current) s, less than the \(wanted) s the pods may take, and could not be raised through \(path): \(error)")
            return
        }
        // logind reloads on SIGHUP in its own time.
        for _ in 0..<20 where current < wanted {
            try? await Task.sleep(for: .milliseconds(250))
            current = try await logind.inhibitDelayMaxSeconds()
        }
        if current < wanted {
            logger.error("logind's InhibitDelayMaxSec is still \(current) s after \(path) set \(wanted) s: a shutdown cuts the pods' time short (another drop-in may override it)")
        } else {
            logger.notice("raised logind's InhibitDelayMaxSec to \(current) s (\(path))")
        }
    }
}

/// The shutdown itself: no new pods, Ready False, then each priority group stopped in turn.
struct NodeShutdown: Sendable {
    let plan: NodeShutdownPlan
    let pods: PodWorkers
    let host: PodHost
    let logger: Logger

    /// How long the final statuses may take to reach the API after the groups' time (and the
    /// checkpoint after them: logind waits this and 2 s more beyond the plan).
    static let statusSeconds: Int64 = 3

    /// Stops every pod still running or stopping, lowest priority group first, and waits (within
    /// the plan's time from `signalled`, and a few seconds more) for the final statuses of those
    /// it ended to reach the API; those written are checkpointed as ended, so a reboot does not
    /// start them again. The node stays "shutting down".
    func stopPods(signalled: ContinuousClock.Instant) async {
        host.shutdown.set(true)
        // A pod admitted by a pass that began before: running now, so in the list below.
        await pods.settle()
        var candidates: [(pod: Pod, worker: PodWorker)] = []
        for (pod, worker) in pods.admittedPods() where !(await worker.isStopped) { candidates.append((pod, worker)) }
        logger.notice("the node is shutting down: stopping \(candidates.count) pods within \(plan.totalSeconds) s")
        var ended: [(uid: String, worker: PodWorker)] = []
        // One budget from the signal: group i ends at most the first i+1 groups' time after it.
        var groupsEnd = signalled
        for (index, group) in plan.groups.enumerated() {
            groupsEnd += .seconds(group.gracePeriodSeconds)
            let members = candidates.filter { plan.groupIndex(priority: $0.pod.spec?.priority ?? 0) == index }
            guard !members.isEmpty else { continue }
            logger.info("stopping \(members.count) pods of priority ≥ \(group.priority) within \(group.gracePeriodSeconds) s")
            for member in members where await member.worker.shutDownForNode(gracePeriod: group.gracePeriodSeconds) {
                if let uid = member.pod.metadata.uid { ended.append((uid, member.worker)) }
            }
            while ContinuousClock.now < groupsEnd && !Task.isCancelled {
                var stopped = true
                for member in members where !(await member.worker.isStopped) { stopped = false }
                if stopped { break }
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
        // The final statuses: the status service writes them.
        let statusDeadline = signalled + .seconds(plan.totalSeconds + Self.statusSeconds)
        var written: [String: PodStatus] = [:], waiting = 0
        repeat {
            written = [:]
            waiting = 0
            for (uid, worker) in ended where await worker.endedByNodeShutdown {
                if let status = await host.status.writtenStatus(uid: uid), status.phase == .failed { written[uid] = status } else { waiting += 1 }
            }
            if waiting == 0 || ContinuousClock.now >= statusDeadline || Task.isCancelled { break }
            try? await Task.sleep(for: .milliseconds(100))
        } while true
        if waiting > 0 {
            logger.warning("\(waiting) pods' final statuses did not reach the API before the shutdown; they run again after the boot")
        }
        await pods.recordEnded(written)
    }
}
