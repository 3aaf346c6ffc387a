import Synchronization

/// The probe workers of one pod's container runs, each a child task of ``run()``, and the
/// results they write (the kubelet's prober manager, for one pod). The pod worker starts a
/// run's workers when the run starts, and stops them when it ends.
final class ProbeManager: Sendable {
    let results = ProbeResults()
    private let started: AsyncStream<(ProbeWorker, ProbeStop)>
    private let continuation: AsyncStream<(ProbeWorker, ProbeStop)>.Continuation
    private let stops = Mutex<[String: [ProbeTracker.Kind: ProbeStop]]>([:])

    init() {
        (started, continuation) = AsyncStream.makeStream(of: (ProbeWorker, ProbeStop).self)
    }

    /// Runs the workers until ``finish()`` (or cancellation, which stops them all).
    func run() async {
        await withDiscardingTaskGroup { group in
            for await (worker, stop) in started {
                group.addTask { await stop.run(worker) }
            }
        }
    }

    /// Starts `workers` (replacing any of the same run and kind).
    func start(_ workers: [ProbeWorker]) {
        for worker in workers {
            results.begin(containerID: worker.target.containerID)
            let stop = ProbeStop()
            let replaced = stops.withLock { stops in
                let previous = stops[worker.target.containerID]?[worker.kind]
                stops[worker.target.containerID, default: [:]][worker.kind] = stop
                return previous
            }
            replaced?.stop()
            continuation.yield((worker, stop))
        }
    }

    /// Stops the workers of a run that ended (or is being replaced) and forgets its results.
    func stop(containerID: String) {
        let ended = stops.withLock { $0.removeValue(forKey: containerID) }
        if let ended { for stop in ended.values { stop.stop() } }
        results.remove(containerID: containerID)
    }

    /// A terminating pod is no longer restarted for failed probes; readiness goes on (its
    /// endpoints become not ready as its containers stop), as the kubelet does.
    func stopLivenessAndStartup() {
        let ended = stops.withLock { stops in
            var ended: [ProbeStop] = []
            for containerID in stops.keys {
                for kind in [ProbeTracker.Kind.liveness, .startup] {
                    if let stop = stops[containerID]?.removeValue(forKey: kind) { ended.append(stop) }
                }
            }
            return ended
        }
        for stop in ended { stop.stop() }
    }

    /// The IDs of the runs being probed.
    var probedContainerIDs: Set<String> { stops.withLock { Set($0.filter { !$0.value.isEmpty }.keys) } }

    /// Stops every worker and lets ``run()`` return.
    func finish() {
        continuation.finish()
        let ended = stops.withLock { stops in
            defer { stops = [:] }
            return stops.values.flatMap(\.values)
        }
        for stop in ended { stop.stop() }
    }
}
