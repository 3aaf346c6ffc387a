import KubeModel
import Logging
import PodNetwork
import ServiceLifecycle
import Synchronization
import SystemSupport

/// The desired pods of this node, merged from the pod sources (the API, static manifests),
/// and one ``PodWorker`` per pod UID. The API's set is checkpointed (only when it changes) and
/// read back at start, so a board that reboots without its server runs its pods again. On
/// start, what the agent left behind for pods no longer wanted (containers, network
/// attachments after an unclean stop) is released.
public final class PodWorkers: Service, Sendable {
    enum Command: Sendable {
        case desired(source: String, pods: [Pod])
        case finished(uid: String)
        case ended(statuses: [String: PodStatus], done: CommandDone)
        case settle(done: CommandDone)
    }

    /// Marked once the loop has carried a command out; waited for with a bound, so a loop that
    /// has ended (the agent stops) never holds the waiter.
    final class CommandDone: Sendable {
        private let state = Mutex(false)
        private let signal = WakeSignal()

        func mark() {
            state.withLock { $0 = true }
            signal.signal()
        }

        func wait(upTo limit: Duration) async {
            let end = ContinuousClock.now + limit
            while !state.withLock({ $0 }), ContinuousClock.now < end, !Task.isCancelled {
                await signal.wait(upTo: .milliseconds(100))
            }
        }
    }

    let host: PodHost
    let checkpointPath: String
    let commands: AsyncStream<Command>
    let continuation: AsyncStream<Command>.Continuation
    /// Admitted pods with their workers, for the eviction manager.
    private let admittedWorkers = Mutex<[String: (pod: Pod, worker: PodWorker)]>([:])

    public init(host: PodHost, checkpointPath: String) {
        self.host = host
        self.checkpointPath = checkpointPath
        (commands, continuation) = AsyncStream.makeStream(of: Command.self)
    }

    /// The admitted pods and their workers (finished ones included; ask the worker).
    public func admittedPods() -> [(pod: Pod, worker: PodWorker)] {
        admittedWorkers.withLock { Array($0.values) }
    }

    /// Replaces the pods of one source ("api", "file") with `pods` (those bound to this node).
    public func apply(source: String, pods: [Pod]) {
        continuation.yield(.desired(source: source, pods: pods))
    }

    /// Pods a node shutdown stopped, with the final statuses the API has: checkpointed as ended
    /// (so a reboot without the server does not start them again). Returns once written.
    public func recordEnded(_ statuses: [String: PodStatus]) async {
        guard !statuses.isEmpty else { return }
        let done = CommandDone()
        continuation.yield(.ended(statuses: statuses, done: done))
        await done.wait(upTo: .seconds(2))
    }

    /// Returns once every change given before has been carried out (admission included), or
    /// after `limit`.
    public func settle(upTo limit: Duration = .seconds(2)) async {
        let done = CommandDone()
        continuation.yield(.settle(done: done))
        await done.wait(upTo: limit)
    }

    public func run() async throws {
        let checkpoint = PodCheckpoint(path: checkpointPath)
        var saved: [Pod] = []
        do {
            saved = try checkpoint.load()
            if !saved.isEmpty { host.logger.info("\(saved.count) pods from the local checkpoint until the API answers") }
            // Without a readable checkpoint nothing is known to be unwanted: keep everything.
            await releaseLeftovers(keeping: Set(saved.compactMap(\.metadata.uid)))
            // Pods that ended (their final phase is in the checkpoint) hold no device.
            host.devices?.retain(pods: Set(saved.filter { $0.status?.phase != .succeeded && $0.status?.phase != .failed }.compactMap(\.metadata.uid)))
        } catch {
            host.logger.error("\(error)")
        }
        let initial = saved, kept = checkpoint
        try? await cancelWhenGracefulShutdown { [self] in
            await self.runWorkers(initial: initial, checkpoint: kept)
        }
    }

    /// The loop that owns the desired set and the workers' tasks.
    private func runWorkers(initial: [Pod], checkpoint: PodCheckpoint) async {
        var checkpoint = checkpoint
        var sources: [String: [Pod]] = initial.isEmpty ? [:] : ["api": initial]
        var workers: [String: PodWorker] = [:]
        var admitted: [String: Pod] = [:]
        var given: [String: Pod] = [:]
        var finished: Set<String> = []
        let continuation = self.continuation
        let host = self.host
        await withDiscardingTaskGroup { group in
            func reconcile() async {
                var desired: [String: Pod] = [:]
                for source in sources.keys.sorted() {
                    for pod in sources[source] ?? [] {
                        guard let uid = pod.metadata.uid, !uid.isEmpty, pod.spec != nil else { continue }
                        desired[uid] = pod
                    }
                }
                finished.formIntersection(desired.keys)
                // Older pods first, as the kubelet admits them.
                let ordered = desired.sorted { ($0.value.metadata.creationTimestamp ?? .now(), $0.key) < ($1.value.metadata.creationTimestamp ?? .now(), $1.key) }
                for (uid, pod) in ordered where !finished.contains(uid) {
                    if let worker = workers[uid] {
                        // Only a pod that changed wakes its worker (a watch event carries the whole set).
                        guard given[uid] != pod else { continue }
                        given[uid] = pod
                        await worker.update(pod)
                        if admitted[uid] != nil { admitted[uid] = pod }
                    } else {
                        // Admission against the pods already running here (none of them finished).
                        let running = admitted.values.filter { $0.status?.phase != .succeeded && $0.status?.phase != .failed }
                        var allocatable = host.nodeAllocatable
                        for (resource, amounts) in host.devices?.resources() ?? [:] { allocatable[resource] = Quantity(amounts.allocatable) }
                        let ended = pod.status?.phase == .succeeded || pod.status?.phase == .failed
                        // No new pod while the node shuts down (the kubelet's shutdown manager).
                        var rejection = host.shutdown.isShuttingDown && !ended ? NodeShutdownState.rejection : PodAdmission.check(pod, admitted: Array(running), allocatable: allocatable,
                                                           conditions: host.pressure.conditions, nodeLabels: host.nodeLabels.current,
                                                           allowedHostPaths: host.configuration.allowedHostPaths,
                                                           holdsDevices: host.devices?.holders.contains(uid) == true)
                        // The device manager picks the devices of an admitted pod that will run.
                        if rejection == nil, !ended, let devices = host.devices { rejection = await devices.allocate(pod) }
                        if rejection == nil { admitted[uid] = pod }
                        if let rejection { await host.events?.record(pod, type: "Warning", reason: rejection.reason, message: rejection.message) }
                        let worker = PodWorker(pod: pod, host: host, rejection: rejection)
                        workers[uid] = worker
                        given[uid] = pod
                        group.addTask {
                            await worker.run()
                            if !Task.isCancelled { continuation.yield(.finished(uid: uid)) }
                        }
                    }
                }
                for (uid, worker) in workers where desired[uid] == nil { await worker.remove() }
                let published = admitted.compactMap { uid, pod in workers[uid].map { (uid, (pod: pod, worker: $0)) } }
                admittedWorkers.withLock { $0 = Dictionary(uniqueKeysWithValues: published) }
            }
            await reconcile()
            for await command in commands {
                switch command {
                case .desired(let source, let pods):
                    sources[source] = pods
                    if source == "api" {
                        do {
                            if try checkpoint.save(pods) { host.logger.debug("pod checkpoint written (\(pods.count) pods)") }
                        } catch {
                            host.logger.warning("pod checkpoint not written: \(error)")
                        }
                    }
                case .settle(let done):
                    done.mark()
                    continue
                case .ended(let statuses, let done):
                    let pods = (sources["api"] ?? []).map { pod in
                        var ended = pod
                        if let uid = pod.metadata.uid, let status = statuses[uid] { ended.status = status }
                        return ended
                    }
                    do {
                        if try checkpoint.save(pods) { host.logger.info("pod checkpoint written: \(statuses.count) pods ended by the node shutdown") }
                    } catch {
                        host.logger.warning("pod checkpoint not written: \(error)")
                    }
                    done.mark()
                    continue
                case .finished(let uid):
                    host.devices?.release(pod: uid)
                    workers[uid] = nil
                    given[uid] = nil
                    admitted[uid] = nil
                    finished.insert(uid)
                }
                await reconcile()
            }
            group.cancelAll()
        }
    }

    /// Containers and network attachments of pods that are no longer wanted (the agent was
    /// stopped while they were being deleted, or crashed): removed before workers start.
    func releaseLeftovers(keeping live: Set<String>) async {
        let runtime = host.runtime
        for state in runtime.list() {
            guard let uid = state.annotations?["io.kubernetes.pod.uid"], !live.contains(uid) else { continue }
            do {
                try runtime.delete(id: state.id, force: true)
                host.logger.info("removed container \(state.id) of a pod that is no longer here")
            } catch {
                host.logger.warning("container \(state.id): \(error)")
            }
        }
        if let cgroups = host.cgroups {
            for uid in cgroups.podUIDs() where !live.contains(uid) {
                cgroups.remove(uid: uid)
                host.logger.info("removed the cgroup of pod \(uid), which is no longer here")
            }
        }
        defer { removeLeftoverFiles(keeping: live) }
        var known = await host.network.cached()
        if known == nil { known = try? await host.network.network() }
        guard let network = known else { return }
        let released = network.releaseStale(keeping: live)
        for id in released.released { host.logger.info("released the network of pod \(id), which is no longer here") }
        for (id, error) in released.failures { host.logger.warning("releasing the network of pod \(id): \(error)") }
    }

    /// Mounts and files of pods that are no longer wanted.
    func removeLeftoverFiles(keeping live: Set<String>) {
        let runtime = host.runtime
        for uid in FileTree.list(host.configuration.stateDir + "/pods") where !live.contains(uid) {
            let directory = host.podDirectory(uid: uid)
            for run in FileTree.list(directory + "/runs") {
                ContainerBundle.remove(runtimeRoot: runtime.root, id: run)
                try? ContainerRootfs.remove(containerDirectory: directory + "/runs/" + run)
            }
            try? PodVolumes(podDirectory: directory).tearDown()
            let sandbox = PodSandbox(directory: directory + "/sandbox")
            if sandbox.exists { try? sandbox.remove() }
            do {
                try FileTree.remove(directory)
                host.logger.info("removed the files of pod \(uid), which is no longer here")
            } catch {
                host.logger.warning("pod \(uid): \(error)")
            }
        }
    }
}
