import KubeModel
import Logging
import ServiceLifecycle

/// Watches node heartbeats: a node whose Lease has not been renewed within the grace period
/// gets its conditions set to Unknown and the `node.kubernetes.io/unreachable` taints; when it
/// reports Ready again the taints go. Pods are NOT evicted unless eviction is configured: edge
/// boards go offline and keep running their pods.
public struct NodeLifecycleService: Service {
    public static let unreachableTaintKey = "node.kubernetes.io/unreachable"

    let store: ObjectStore
    let logger: Logger
    let gracePeriod: Int64
    let checkInterval: Duration
    /// Seconds after which pods of an unreachable node are deleted; nil disables eviction.
    let evictAfter: Int64?

    public init(store: ObjectStore, logger: Logger, gracePeriodSeconds: Int64 = 40, checkInterval: Duration = .seconds(5), evictAfterSeconds: Int64? = nil) {
        self.store = store
        self.logger = logger
        gracePeriod = gracePeriodSeconds
        self.checkInterval = checkInterval
        evictAfter = evictAfterSeconds
    }

    /// The last heartbeat seen of a node (its Lease's renewTime and Ready's lastHeartbeatTime,
    /// as the agent wrote them) and when this server saw it change, on its own monotonic
    /// clock: as in kube-controller-manager, a node's clock is never compared with the
    /// server's (a board without a real-time clock may be a year off after boot).
    struct ObservedHeartbeat {
        var stamp: [Timestamp?]
        var seenAt: ContinuousClock.Instant
    }

    public func run() async throws {
        var observed: [String: ObservedHeartbeat] = [:]
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                try check(now: .now(), at: .now, observed: &observed)
            } catch {
                logger.warning("node lifecycle check failed: \(error)")
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: checkInterval) }
        }
    }

    /// One pass over all nodes: `now` stamps what is written, `instant` measures silence.
    /// A node first seen here (after a server start) gets a whole grace period.
    func check(now: Timestamp, at instant: ContinuousClock.Instant, observed: inout [String: ObservedHeartbeat]) throws {
        var present: Set<String> = []
        for tree in try store.list(.nodes, namespace: nil).items {
            guard let node = try? KubeJSON.decode(Node.self, from: tree), let name = node.metadata.name else { continue }
            present.insert(name)
            let lease = try store.get(.leases, namespace: "kube-node-lease", name: name).flatMap { try? KubeJSON.decode(Lease.self, from: $0) }
            let ready = node.status?.conditions?.first { $0.type == "Ready" }
            let stamp = [lease?.spec?.renewTime?.timestamp, ready?.lastHeartbeatTime]
            if observed[name]?.stamp != stamp { observed[name] = ObservedHeartbeat(stamp: stamp, seenAt: instant) }
            let silence = instant - (observed[name]?.seenAt ?? instant)
            let silent = silence.components.seconds
            if silent > gracePeriod {
                if ready?.status != .unknown || !hasUnreachableTaint(node) { try markUnreachable(name, now: now) }
                if let evictAfter, silent > gracePeriod.addingSaturated(evictAfter) {
                    try evictPods(of: name, unreachableFor: silent.subtractingSaturated(gracePeriod))
                }
            } else if ready?.status == .true, hasUnreachableTaint(node) {
                try clearUnreachable(name)
            }
        }
        observed = observed.filter { present.contains($0.key) }
    }

    private func hasUnreachableTaint(_ node: Node) -> Bool {
        node.spec?.taints?.contains { $0.key == Self.unreachableTaintKey } ?? false
    }

    private func markUnreachable(_ name: String, now: Timestamp) throws {
        try store.update(.nodes, namespace: "", name: name) { current in
            guard var node = try? KubeJSON.decode(Node.self, from: current) else { return nil }
            var status = node.status ?? NodeStatus()
            var conditions = status.conditions ?? []
            if conditions.isEmpty { conditions = [NodeCondition(type: "Ready", status: .unknown)] }
            for index in conditions.indices where conditions[index].status != .unknown {
                conditions[index].status = .unknown
                conditions[index].reason = "NodeStatusUnknown"
                conditions[index].message = "Kubelet stopped posting node status."
                conditions[index].lastTransitionTime = now
            }
            status.conditions = conditions
            node.status = status
            var spec = node.spec ?? NodeSpec()
            var taints = (spec.taints ?? []).filter { $0.key != Self.unreachableTaintKey }
            for effect in [TaintEffect.noSchedule, .noExecute] {
                var taint = Taint(key: Self.unreachableTaintKey, effect: effect)
                taint.timeAdded = now
                taints.append(taint)
            }
            spec.taints = taints
            node.spec = spec
            return try KubeJSON.tree(node)
        }
        logger.warning("node \(name) stopped renewing its lease: marked unreachable (pods keep running)")
    }

    private func clearUnreachable(_ name: String) throws {
        try store.update(.nodes, namespace: "", name: name) { current in
            guard var node = try? KubeJSON.decode(Node.self, from: current) else { return nil }
            let remaining = (node.spec?.taints ?? []).filter { $0.key != Self.unreachableTaintKey }
            node.spec?.taints = remaining.isEmpty ? nil : remaining
            return try KubeJSON.tree(node)
        }
        logger.info("node \(name) is reachable again")
    }

    /// Deletes the pods of an unreachable node as kube's taint manager does: a pod that
    /// tolerates the unreachable NoExecute taint stays (for its `tolerationSeconds`, or for good:
    /// daemon pods), mirror pods stay (their board runs them anyway). The deletion is graceful,
    /// so the pods show Terminating until their board confirms, and their controllers replace
    /// them elsewhere meanwhile.
    private func evictPods(of node: String, unreachableFor seconds: Int64) throws {
        let taint = Taint(key: Self.unreachableTaintKey, effect: .noExecute)
        let writes = ControllerWrites(store: store, component: "node-controller")
        for tree in try store.list(.pods, namespace: nil).items where tree.string(at: ["spec", "nodeName"]) == node {
            guard tree[path: ["metadata", "deletionTimestamp"]] == nil, tree[path: ["metadata", "annotations", NodeRestriction.mirrorAnnotation]] == nil,
                  let pod = try? KubeJSON.decode(Pod.self, from: tree), let name = pod.metadata.name, let namespace = pod.metadata.namespace else { continue }
            if let toleration = (pod.spec?.tolerations ?? []).first(where: { Scheduler.tolerates($0, taint) }),
               toleration.tolerationSeconds.map({ seconds <= max(0, $0) }) ?? true {
                continue
            }
            try writes.deletePod(namespace: namespace, name: name, uid: pod.metadata.uid)
            writes.event(about: ObjectReference(kind: "Pod", namespace: namespace, name: name, uid: pod.metadata.uid, apiVersion: "v1"),
                         type: "Normal", reason: "TaintManagerEviction", message: "Marking for deletion Pod \(namespace)/\(name)")
            logger.warning("evicted pod \(namespace)/\(name) from unreachable node \(node)")
        }
    }
}
