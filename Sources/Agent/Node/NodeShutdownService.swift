#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import CRuntime
import KubeModel
import Logging
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
        guard plan.isEnabled else { return }
        var failures = 0
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                try await watch { failures = 0 }
            } catch {
                failures += 1
                if failures == 1 || failures % 20 == 0 {
                    logger.error("graceful node shutdown is not available (\(error)): on a shutdown systemd stops the pods without their grace periods; retrying every 30 s")
                }
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(30)) }
        }
    }

    /// One connection to logind: the lock, then a look every second for its signal.
    func watch(connected: () -> Void) async throws {
        let logind = try await LogindConnection.open()
        try await ensureInhibitDelay(logind)
        try await logind.inhibit()
        connected()
        logger.info("graceful node shutdown: a shutdown waits up to \(plan.totalSeconds) s for the pods (\(plan.groups.map { "priority ≥ \($0.priority): \($0.gracePeriodSeconds) s" }.joined(separator: ", ")))")
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            switch try await logind.poll() {
            case .none:
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(1)) }
            case .shutdownBegins:
                guard logind.lock >= 0 else { continue }
                await shutdown.stopPods()
                logind.release()
                logger.notice("graceful node shutdown: pods stopped, the shutdown goes on")
            case .shutdownCancelled:
                if shutdown.host.shutdown.isShuttingDown { logger.notice("the shutdown was cancelled: pods are admitted again") }
                shutdown.host.shutdown.set(false)
                try await logind.inhibit()
            }
        }
    }

    /// logind holds a shutdown back at most InhibitDelayMaxSec (5 s by default): raised to the
    /// plan's time when shorter. A value it still refuses is reported; the shutdown then gets that much.
    func ensureInhibitDelay(_ logind: LogindConnection) async throws {
        let wanted = plan.totalSeconds
        var current = try await logind.inhibitDelayMaxSeconds()
        guard current < wanted else { return }
        let path = logindConfigDirectory + "/99-iotkube.conf"
        do {
            try FileTree.makeDirectories(logindConfigDirectory, mode: 0o755)
            let text = "# Written by iotkube-agent: logind waits this long for the agent to stop its pods on shutdown (shutdownGracePeriod).\n[Login]\nInhibitDelayMaxSec=\(wanted)\n"
            try AtomicFile.write(Array(text.utf8), to: path, mode: 0o644)
            var error = [CChar](repeating: 0, count: 512)
            if iotkube_systemd_kill_unit("systemd-logind.service", SIGHUP, &error, error.count) != 0 { throw LogindError(LogindConnection.text(error)) }
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

    /// Stops every running pod, lowest priority group first, and waits (within the plan's
    /// time) for their final statuses to reach the API; those written are checkpointed as
    /// ended, so a reboot does not start them again. The node stays "shutting down".
    func stopPods() async {
        host.shutdown.set(true)
        let end = ContinuousClock.now + .seconds(plan.totalSeconds)
        var running: [(pod: Pod, worker: PodWorker)] = []
        for (pod, worker) in pods.admittedPods() where await worker.isActive { running.append((pod, worker)) }
        logger.notice("the node is shutting down: stopping \(running.count) pods within \(plan.totalSeconds) s")
        var stopped: [(pod: Pod, worker: PodWorker)] = []
        for (index, group) in plan.groups.enumerated() {
            let members = running.filter { plan.groupIndex(priority: $0.pod.spec?.priority ?? 0) == index }
            guard !members.isEmpty else { continue }
            logger.info("stopping \(members.count) pods of priority ≥ \(group.priority) within \(group.gracePeriodSeconds) s")
            for member in members { await member.worker.terminateForNodeShutdown(gracePeriod: group.gracePeriodSeconds) }
            let deadline = ContinuousClock.now + .seconds(group.gracePeriodSeconds)
            while ContinuousClock.now < deadline {
                var done = true
                for member in members where !(await member.worker.isKillDone) { done = false }
                if done { break }
                try? await Task.sleep(for: .milliseconds(100))
            }
            stopped += members
        }
        // The final statuses: the status service writes them; waited for within the time left.
        let statusDeadline = max(end, ContinuousClock.now + .seconds(2))
        var written: [String: PodStatus] = [:]
        while true {
            written = [:]
            for member in stopped {
                guard let uid = member.pod.metadata.uid, await member.worker.isKillDone, let status = await host.status.writtenStatus(uid: uid),
                      status.phase == .failed else { continue }
                written[uid] = status
            }
            if written.count == stopped.count || ContinuousClock.now >= statusDeadline { break }
            try? await Task.sleep(for: .milliseconds(100))
        }
        if written.count < stopped.count {
            logger.warning("\(stopped.count - written.count) of \(stopped.count) pods' final statuses did not reach the API before the shutdown; they run again after the boot")
        }
        await pods.recordEnded(written)
    }
}
