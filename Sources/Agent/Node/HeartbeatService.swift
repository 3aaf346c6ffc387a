import KubeClient
import KubeModel
import Logging
import ServiceLifecycle
import SystemSupport

/// Registers this board's Node and keeps it alive: renews the node Lease every beat (10 s,
/// duration 40 s), writes NodeStatus when something changed or every 5 minutes, and pushes
/// node metrics for `kubectl top` where the server accepts them. Writes nothing locally on a
/// beat (SD cards). When the server is unreachable it retries with capped, jittered backoff.
public struct HeartbeatService: Service {
    public static let leaseNamespace = "kube-node-lease"
    public static let leaseDurationSeconds: Int32 = 40

    let credentials: CertificateRotation
    var client: KubeAPIClient { credentials.client }
    let configuration: AgentConfiguration
    let builder: NodeStatusBuilder
    let interval: Duration
    let statusInterval: Duration
    let logger: Logger
    let counters: HeartbeatCounters
    /// Updated with the Node's labels whenever the API returns the Node.
    let labels: NodeLabels
    /// The pods' usage, pushed as PodMetrics with the node's.
    let podMetrics: PodMetricsSampler?
    /// A node shutdown is reported at once, not at the next beat.
    let shutdown: NodeShutdownState

    public init(
        credentials: CertificateRotation, configuration: AgentConfiguration, host: HostReader = HostReader(),
        interval: Duration = .seconds(10), statusInterval: Duration = .seconds(300), logger: Logger,
        counters: HeartbeatCounters = HeartbeatCounters(), pressure: NodePressure = NodePressure(), labels: NodeLabels = NodeLabels(),
        podMetrics: PodMetricsSampler? = nil, devices: DeviceManager? = nil, shutdown: NodeShutdownState = NodeShutdownState()
    ) {
        self.shutdown = shutdown
        self.podMetrics = podMetrics
        self.credentials = credentials
        self.counters = counters
        self.configuration = configuration
        self.labels = labels
        builder = NodeStatusBuilder(configuration: configuration, host: host, pressure: pressure, devices: devices, shutdown: shutdown)
        self.interval = interval
        self.statusInterval = statusInterval
        var logger = logger
        logger[metadataKey: "node"] = "\(configuration.nodeName)"
        self.logger = logger
    }

    public func run() async throws {
        var backoff = Backoff()
        let state = BeatState()
        var announcedReady = false
        var notifiedReady = false
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let delay: Duration
            do {
                try await beat(state)
                counters.recordBeat()
                if !announcedReady {
                    if !notifiedReady { ServiceNotifier.notify("READY=1") }
                    notifiedReady = true
                    ServiceNotifier.notify("STATUS=node \(configuration.nodeName) registered with \(configuration.server)")
                    logger.info("node \(configuration.nodeName) registered with \(configuration.server)")
                    announcedReady = true
                } else if state.failures > 0 {
                    logger.notice("reconnected to \(configuration.server) after \(state.failures) failed beats")
                }
                state.failures = 0
                backoff.reset()
                ServiceNotifier.notify((ServiceNotifier.watchdogEnabled ? "WATCHDOG=1\n" : "") + "STATUS=last heartbeat \(Timestamp.now())")
                delay = interval
            } catch {
                counters.recordFailure()
                state.failures += 1
                // The server may have marked the node Unknown meanwhile: report in full once back.
                state.lastStatusWrite = nil
                if state.failures == 1 || state.failures % 10 == 0 { logger.warning("heartbeat failed (\(state.failures)): \(error)") }
                // A board that boots without its server runs its pods from the checkpoint: it is
                // up, so systemd is told (else the start would time out and the agent be killed).
                if !notifiedReady, state.failures >= 3 {
                    ServiceNotifier.notify("READY=1")
                    notifiedReady = true
                }
                ServiceNotifier.notify((ServiceNotifier.watchdogEnabled ? "WATCHDOG=1\n" : "") + "STATUS=cannot reach \(configuration.server): retrying (pods run from the local checkpoint)")
                delay = min(backoff.next(), interval)
            }
            let shutdown = self.shutdown
            await cancelWhenGracefulShutdown { await shutdown.changed.wait(upTo: delay) }
        }
    }

    /// What the loop remembers between beats (in memory only).
    final class BeatState {
        var registered = false
        var lease: Lease?
        var lastStatus: NodeStatus?
        var lastStatusWrite: ContinuousClock.Instant?
        var cpuSample: (busy: UInt64, total: UInt64)?
        var metricsSupported = true
        var failures = 0
        var beats = 0
        /// Device resources this node advertised (now or in an earlier configuration): one that is
        /// no longer offered is written as 0, since a merge patch never removes a key.
        var deviceResources: Set<String> = []
    }

    /// Every this many beats the agent reads its Node back, so a status the server changed
    /// behind its back (marked Unknown by the lifecycle controller) is corrected.
    static let verifyEvery = 6

    func beat(_ state: BeatState) async throws {
        let now = Timestamp.now()
        // An expired certificate gets no answer from the server: renew it (with the bootstrap
        // token) before anything else; until then each beat fails with what to do.
        if credentials.isExpired {
            let logger = self.logger
            try await credentials.renewIfDue { logger.notice("\($0)") }
        }
        if !state.registered {
            try await register(now: now, state: state)
            state.registered = true
        }
        try await renewLease(state, now: now)
        state.beats += 1
        if state.beats % Self.verifyEvery == 0 {
            let node = try await client.get(Node.self, name: configuration.nodeName)
            labels.set(node.metadata.labels)
            if node.status?.conditions?.first(where: { $0.type == "Ready" })?.status != .true { state.lastStatusWrite = nil }
        }
        var status = builder.status(previous: state.lastStatus, now: now)
        for resource in state.deviceResources where status.capacity?[resource] == nil {
            status.capacity?[resource] = Quantity(0)
            status.allocatable?[resource] = Quantity(0)
        }
        state.deviceResources.formUnion((status.capacity ?? [:]).keys.filter { $0.hasPrefix(DeviceClass.resourcePrefix) })
        let due = state.lastStatusWrite.map { ContinuousClock.now - $0 >= statusInterval } ?? true
        if due || NodeStatusBuilder.differs(status, state.lastStatus) {
            let patch: JSONValue = ["status": try KubeJSON.tree(status)]
            let node = try await client.mergePatch(Node.self, name: configuration.nodeName, patch: patch, subresource: "status")
            labels.set(node.metadata.labels)
            state.lastStatus = status
            state.lastStatusWrite = .now
        }
        if state.metricsSupported { try await pushMetrics(state, now: now) }
        do {
            let logger = self.logger
            try await credentials.renewIfDue { logger.notice("\($0)") }
        } catch {
            logger.warning("could not renew the client certificate (will retry): \(error)")
        }
    }

    /// Creates the Node, or makes sure an existing one carries this board's labels.
    func register(now: Timestamp, state: BeatState) async throws {
        do {
            let existing = try await client.get(Node.self, name: configuration.nodeName)
            state.deviceResources.formUnion((existing.status?.capacity ?? [:]).keys.filter { $0.hasPrefix(DeviceClass.resourcePrefix) })
            let labels = builder.labels()
            if labels.contains(where: { existing.metadata.labels?[$0.key] != $0.value }) {
                let patch: JSONValue = ["metadata": ["labels": try KubeJSON.tree(labels)]]
                _ = try await client.mergePatch(Node.self, name: configuration.nodeName, patch: patch)
            }
        } catch {
            guard (error as? KubeClientError)?.statusCode == 404 else { throw error }
            var node = Node(metadata: ObjectMeta(name: configuration.nodeName, labels: builder.labels()))
            let annotations = builder.annotations()
            node.metadata.annotations = annotations.isEmpty ? nil : annotations
            node.status = builder.status(previous: nil, now: now)
            _ = try await client.create(node)
        }
    }

    func renewLease(_ state: BeatState, now: Timestamp) async throws {
        if var lease = state.lease {
            lease.spec?.renewTime = MicroTimestamp(now)
            do {
                state.lease = try await client.update(lease)
                return
            } catch {
                let code = error.statusCode
                guard code == 409 || code == 404 else { throw error }
                state.lease = nil  // someone else wrote it, or it was deleted: read it again
            }
        }
        do {
            var lease = try await client.get(Lease.self, namespace: Self.leaseNamespace, name: configuration.nodeName)
            var spec = lease.spec ?? LeaseSpec()
            spec.holderIdentity = configuration.nodeName
            spec.leaseDurationSeconds = Self.leaseDurationSeconds
            spec.renewTime = MicroTimestamp(now)
            lease.spec = spec
            state.lease = try await client.update(lease)
        } catch {
            guard error.statusCode == 404 else { throw error }
            var lease = Lease(
                metadata: ObjectMeta(name: configuration.nodeName, namespace: Self.leaseNamespace),
                spec: LeaseSpec(holderIdentity: configuration.nodeName, leaseDurationSeconds: Self.leaseDurationSeconds, renewTime: MicroTimestamp(now)))
            if let uid = try? await client.get(Node.self, name: configuration.nodeName).metadata.uid {
                lease.metadata.ownerReferences = [OwnerReference(apiVersion: "v1", kind: "Node", name: configuration.nodeName, uid: uid)]
            }
            state.lease = try await client.create(lease)
        }
    }

    /// CPU use since the last beat and the memory working set, as NodeMetrics, and the pods'
    /// as PodMetrics.
    func pushMetrics(_ state: BeatState, now: Timestamp) async throws {
        let host = builder.host
        guard let sample = host.cpuTimes() else { return }
        let previousSample = state.cpuSample
        state.cpuSample = sample
        guard let previous = previousSample, sample.total > previous.total else { return }
        let fraction = Double(sample.busy - previous.busy) / Double(sample.total - previous.total)
        let milliCores = Int64((fraction * Double(host.cpuCount()) * 1000).rounded())
        let memory = host.memory()
        let metrics = NodeMetrics(
            name: configuration.nodeName, timestamp: now, window: "\(interval.components.seconds)s",
            usage: ["cpu": Quantity(milli: milliCores), "memory": .bytes(memory.total - memory.available)])
        do {
            _ = try await client.update(metrics)
        } catch {
            guard [403, 404, 405].contains(error.statusCode ?? 0) else { throw error }
            // A server without pushed metrics (a real cluster uses metrics-server scraping the agent).
            state.metricsSupported = false
            logger.notice("the server does not accept pushed node metrics (\(error)); not sending them")
            return
        }
        for pod in podMetrics?.podMetrics(now: now) ?? [] {
            do {
                _ = try await client.update(pod)
            } catch {
                // A pod deleted meanwhile is refused: the next beat no longer has it.
                logger.debug("pod metrics of \(pod.metadata.namespace ?? "")/\(pod.metadata.name ?? ""): \(error)")
            }
        }
    }
}
