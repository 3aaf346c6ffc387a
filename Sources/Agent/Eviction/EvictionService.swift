import ImageStore
import KubeModel
import Logging
import ServiceLifecycle

/// The kubelet's eviction manager: every housekeeping interval it observes memory, the state
/// and image filesystems and the task count, sets the node's pressure conditions, and when a
/// threshold is met first reclaims what the node itself holds (unused images for disk
/// signals) and then evicts one pod at a time in the kubelet's order until the threshold is
/// released. Static and system-critical pods are never evicted.
public struct EvictionService: Service {
    let settings: EvictionSettings
    let host: HostReader
    let pods: PodWorkers
    let podHost: PodHost
    let images: ImageStore?
    let interval: Duration
    let logger: Logger

    public init(settings: EvictionSettings, host: HostReader = HostReader(), pods: PodWorkers, podHost: PodHost, images: ImageStore?,
                interval: Duration = .seconds(10), logger: Logger) {
        self.settings = settings
        self.host = host
        self.pods = pods
        self.podHost = podHost
        self.images = images
        self.interval = interval
        self.logger = logger
    }

    var nodefsPath: String { podHost.configuration.stateDir }
    var imagefsPath: String { images?.root ?? podHost.configuration.stateDir }

    func observe() -> NodeResourceObservation {
        var observation = NodeResourceObservation.observe(host: host, nodefsPath: nodefsPath, imagefsPath: imagefsPath)
        // A pod thrashing within its own limit stalls the board too: that part is not the
        // board's shortage, and must not get other pods evicted.
        if let reading = observation[.memoryPressure], reading.available < reading.capacity, let cgroups = podHost.cgroups {
            let confined = Int64((cgroups.selfLimitedMemoryStall() * 100).rounded())
            observation.readings[.memoryPressure]?.available = min(reading.capacity, reading.available + confined)
        }
        return observation
    }

    public func run() async throws {
        guard !settings.thresholds.isEmpty else {
            logger.info("eviction: no thresholds configured; pods are never evicted")
            // Returning would end the agent's service group.
            try? await gracefulShutdown()
            return
        }
        logger.debug("eviction thresholds: \(settings.thresholds.map(\.description).joined(separator: ", "))")
        var tracker = EvictionThresholdTracker(settings: settings)
        var reported: Set<String> = []
        // PSI's avg10 takes its 10 s to show an eviction's effect: no second one for the stall before then.
        var stallEvictionAfter = ContinuousClock.now
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let observation = observe()
            let evaluation = tracker.update(observation, now: .now)
            podHost.pressure.set(evaluation.conditions)
            if evaluation.conditions != reported {
                for condition in evaluation.conditions.subtracting(reported).sorted() { logger.warning("node condition \(condition) is now true") }
                for condition in reported.subtracting(evaluation.conditions).sorted() { logger.notice("node condition \(condition) is now false") }
                reported = evaluation.conditions
            }
            if let threshold = evaluation.actionable.first(where: { $0.signal != .memoryPressure || ContinuousClock.now >= stallEvictionAfter }) {
                await act(on: threshold, observation: observation, tracker: tracker)
                if threshold.signal == .memoryPressure { stallEvictionAfter = .now + .seconds(30) }
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }

    /// Reclaims node-level resources, then evicts one pod if the threshold still holds.
    func act(on threshold: EvictionThreshold, observation: NodeResourceObservation, tracker: EvictionThresholdTracker) async {
        guard let reading = observation[threshold.signal] else { return }
        if threshold.signal == .memoryPressure {
            logger.warning("eviction threshold met: memory fully stalled \(EvictionRanking.stalledPercent(reading))% of the last 10 s (threshold \(EvictionRanking.stallThreshold(threshold))%)")
        } else {
            logger.warning("eviction threshold met: \(threshold.signal.rawValue) available \(reading.available) < \(threshold.displayed(capacity: reading.capacity))")
        }
        var current = reading
        if !threshold.signal.isMemory && threshold.signal != .pidAvailable, let images {
            do {
                let report = try images.prune(all: true, waiting: false)
                if !report.removedImages.isEmpty || report.freedBytes > 0 {
                    logger.notice("eviction: removed \(report.removedImages.count) unused images (\(report.freedBytes) bytes) to reclaim \(threshold.signal.resource)")
                }
            } catch {
                logger.warning("eviction: removing unused images failed: \(error)")
            }
            let after = observe()
            guard tracker.crossed(after).contains(threshold) else {
                logger.notice("eviction: \(threshold.signal.rawValue) reclaimed without evicting pods")
                return
            }
            current = after[threshold.signal] ?? reading
        }
        var candidates: [(usage: PodResourceUsage, worker: PodWorker)] = []
        let storage = !threshold.signal.isMemory && threshold.signal != .pidAvailable
        for (pod, worker) in pods.admittedPods() where !EvictionRanking.isCritical(pod) {
            guard await worker.isActive else { continue }
            candidates.append((PodResourceUsage.measure(pod, host: podHost, withStorage: storage), worker))
        }
        let ranked = EvictionRanking.rank(candidates.map(\.usage), for: threshold.signal)
        guard let victim = ranked.first, let worker = candidates.first(where: { $0.usage.pod.metadata.uid == victim.pod.metadata.uid })?.worker else {
            logger.error("eviction: \(threshold.signal.rawValue) is below its threshold and no pod can be evicted")
            return
        }
        let message = EvictionRanking.message(for: victim, threshold: threshold, reading: current)
        // Hard thresholds give pods a second; soft ones the pod's grace period, capped.
        let grace = threshold.isHard ? 1 : (settings.maximumPodGracePeriod ?? Int64.max)
        logger.warning("evicting pod \(victim.pod.metadata.namespace ?? "default")/\(victim.pod.metadata.name ?? ""): \(message)")
        await worker.evict(message: message, gracePeriod: grace)
        // Wait for it to be stopped and its storage released before looking again (30 s at most).
        for _ in 0..<150 {
            if await worker.isKillDone { break }
            try? await Task.sleep(for: .milliseconds(200))
        }
    }
}
