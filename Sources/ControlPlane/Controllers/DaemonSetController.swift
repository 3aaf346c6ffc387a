import KubeModel
import Logging
import ServiceLifecycle
import Synchronization

/// The daemon set controller: one pod per node the daemon set selects (a node that joins
/// later gets one, a node that stops matching loses its pod), bound straight to its node;
/// template revisions as ControllerRevisions; `RollingUpdate` node by node within
/// `maxUnavailable` (or `maxSurge`), or `OnDelete`. A node that goes offline keeps its pod:
/// daemon pods tolerate unreachable nodes and are never placed elsewhere.
public final class DaemonSetController: Service, Sendable {
    let store: ObjectStore
    let logger: Logger
    let resync: Duration
    let writes: ControllerWrites
    /// Back-off of pod creation per daemon set and node after its pod failed (kube's
    /// failedPodsBackoff): 1 s doubling to 5 min. Lost at restart, which only retries sooner.
    private let backoff = Mutex<[String: (failures: Int, until: ContinuousClock.Instant)]>([:])

    public init(store: ObjectStore, logger: Logger, resync: Duration = .seconds(10)) {
        self.store = store
        self.logger = logger
        self.resync = resync
        writes = ControllerWrites(store: store, component: "daemonset-controller")
    }

    public func run() async throws {
        let resources: [ResourceType] = [.daemonSets, .pods, .nodes, .controllerRevisions]
        try await ControllerLoop(store: store, resources: resources, resync: resync).run(isRelevant: Self.isRelevant) { [self] in
            syncAll()
        }
    }

    /// Node changes that move daemons (labels, taints, schedulability, arrival, departure),
    /// not heartbeats; pod changes as for replica sets; every daemon set and revision change.
    static func isRelevant(_ change: Change) -> Bool {
        if change.resource == ResourceType.nodes.storageKey {
            guard change.type == .modified else { return true }
            return change.object[path: ["metadata", "labels"]] != change.previous?[path: ["metadata", "labels"]]
                || change.object["spec"] != change.previous?["spec"]
        }
        if change.resource == ResourceType.pods.storageKey { return ReplicaSetController.isRelevant(change) }
        return true
    }

    /// One pass over every daemon set; returns when the next is due (availability, back-off).
    func syncAll() -> Duration? {
        do {
            let daemonSets = try store.list(.daemonSets, namespace: nil).items.compactMap { try? KubeJSON.decode(DaemonSet.self, from: $0) }
            guard !daemonSets.isEmpty else {
                backoff.withLock { $0 = [:] }
                return nil
            }
            let nodes = try store.list(.nodes, namespace: nil).items.compactMap { try? KubeJSON.decode(Node.self, from: $0) }
            var nextDue: Duration?
            // Each namespace's pods and revisions are read once per pass, whatever the number of daemon sets.
            var podsByNamespace: [String: [Pod]] = [:]
            var revisionsByNamespace: [String: [ControllerRevision]] = [:]
            for daemonSet in daemonSets {
                let namespace = daemonSet.metadata.namespace ?? ""
                do {
                    if podsByNamespace[namespace] == nil {
                        podsByNamespace[namespace] = try store.list(.pods, namespace: namespace).items.filter { $0.controlledBy(kindOrNone: DaemonSet.kind) }
                            .compactMap { try? KubeJSON.decode(Pod.self, from: $0) }
                        revisionsByNamespace[namespace] = try store.list(.controllerRevisions, namespace: namespace).items.compactMap {
                            try? KubeJSON.decode(ControllerRevision.self, from: $0)
                        }
                    }
                    let pods = podsByNamespace[namespace] ?? []
                    let revisions = revisionsByNamespace[namespace] ?? []
                    if let due = try sync(daemonSet, nodes: nodes, pods: pods, revisions: revisions) { nextDue = min(nextDue ?? due, due) }
                } catch {
                    logger.warning("daemon set \(daemonSet.qualifiedName): \(error)")
                }
            }
            // Back-offs of daemon sets that are gone, or quiet for 5 minutes, are forgotten.
            let keys = Set(daemonSets.map { "\($0.metadata.namespace ?? "")/\($0.metadata.name ?? "")/" })
            let now = ContinuousClock.now
            backoff.withLock { table in
                table = table.filter { entry in
                    keys.contains { entry.key.hasPrefix($0) } && now - entry.value.until < .seconds(300)
                }
            }
            return nextDue
        } catch {
            logger.warning("daemon set pass failed: \(error)")
            return nil
        }
    }

    /// What one node has of a daemon set.
    struct NodeState {
        /// Whether a daemon pod is wanted here.
        var shouldRun: Bool
        /// Whether a daemon pod already here stays (a not-ready or unreachable node keeps it).
        var shouldContinueRunning: Bool
        /// Pods not being deleted and not ended, oldest first.
        var running: [Pod] = []
        var terminating = 0
        var ended: [Pod] = []
    }

    func sync(_ daemonSet: DaemonSet, nodes: [Node], pods: [Pod], revisions: [ControllerRevision]) throws -> Duration? {
        guard let uid = daemonSet.metadata.uid, let namespace = daemonSet.metadata.namespace, let spec = daemonSet.spec,
              let selector = spec.selector, !selector.isEmpty else { return nil }
        let deleting = daemonSet.metadata.deletionTimestamp != nil
        let owned = try claim(pods, for: daemonSet, selector: selector)
        let hash = try currentRevision(of: daemonSet, revisions: revisions.filter { $0.metadata.controllerReference?.uid == uid })
        var states: [String: NodeState] = [:]
        for node in nodes {
            guard let name = node.metadata.name else { continue }
            let placement = DaemonSetPlacement.placement(spec.template, on: node)
            states[name] = NodeState(shouldRun: placement.shouldRun, shouldContinueRunning: placement.shouldContinueRunning)
        }
        let oldestFirst = owned.sorted { ($0.metadata.creationTimestamp?.seconds ?? 0, $0.metadata.name ?? "") < ($1.metadata.creationTimestamp?.seconds ?? 0, $1.metadata.name ?? "") }
        for pod in oldestFirst {
            guard let node = pod.spec?.nodeName else { continue }
            guard states[node] != nil else {
                // Its node is gone: no agent will ever confirm its end (kube's pod GC).
                _ = try? store.delete(.pods, namespace: namespace, name: pod.metadata.name ?? "", expectedUID: pod.metadata.uid)
                continue
            }
            if pod.metadata.deletionTimestamp != nil { states[node]?.terminating += 1 }
            else if PodAvailability.hasEnded(pod) { states[node]?.ended.append(pod) }
            else { states[node]?.running.append(pod) }
        }
        var nextDue: Duration?
        if !deleting {
            nextDue = try manage(daemonSet, states: &states, hash: hash ?? "")
        }
        try writeStatus(daemonSet, states: states, hash: hash ?? "")
        return nextDue
    }

    /// Creates and deletes pods so each node has what it should, rolling the template out.
    private func manage(_ daemonSet: DaemonSet, states: inout [String: NodeState], hash: String) throws -> Duration? {
        guard let namespace = daemonSet.metadata.namespace, !hash.isEmpty else { return nil }
        let key = "\(namespace)/\(daemonSet.metadata.name ?? "")"
        let minReady = Int64(max(0, daemonSet.spec?.minReadySeconds ?? 0))
        let now = Timestamp.now()
        func available(_ pod: Pod) -> Bool {
            PodAvailability.isReady(pod) && PodAvailability.availability(pod, minReadySeconds: minReady, now: now, readySince: nil) == .available
        }
        func updated(_ pod: Pod) -> Bool { pod.metadata.labels?[DaemonSetPlacement.revisionHashLabel] == hash }
        let strategy = daemonSet.spec?.updateStrategy
        let rolling = strategy?.type != "OnDelete"
        let desired = Int32(clamping: states.values.filter(\.shouldRun).count)
        var maxSurge = rolling ? max(0, strategy?.rollingUpdate?.maxSurge?.scaledValue(total: desired, roundUp: true) ?? 0) : 0
        var maxUnavailable = rolling ? max(0, strategy?.rollingUpdate?.maxUnavailable?.scaledValue(total: desired, roundUp: true) ?? 1) : 0
        if rolling && maxSurge == 0 && maxUnavailable == 0 { maxUnavailable = 1 }
        if !rolling { maxSurge = 0 }
        var toDelete: [Pod] = []
        var toCreate: [String] = []
        var unavailable: Int64 = 0
        var surged: Int64 = 0
        var replaceable: [Pod] = []  // available old pods (surge 0) or nodes to surge onto
        var surgeable: [String] = []
        var nextDue: Duration?
        for (node, state) in states.sorted(by: { $0.key < $1.key }) {
            // Ended pods go (and come back after a back-off), as kube's controller does.
            for pod in state.ended {
                toDelete.append(pod)
                recordFailure(key: "\(key)/\(node)")
            }
            guard state.shouldRun else {
                if !state.shouldContinueRunning { toDelete += state.running }
                continue
            }
            let newPods = state.running.filter(updated)
            let oldPods = state.running.filter { !updated($0) }
            if state.running.isEmpty {
                unavailable += 1
                if state.terminating == 0 {
                    if let wait = backoffWait(key: "\(key)/\(node)") { nextDue = min(nextDue ?? wait, wait) } else { toCreate.append(node) }
                }
                continue
            }
            // At most one pod of each kind; the oldest stays.
            toDelete += newPods.dropFirst() + oldPods.dropFirst()
            let newPod = newPods.first
            let oldPod = oldPods.first
            if let newPod {
                if !available(newPod) {
                    unavailable += 1
                    surged += oldPod == nil ? 0 : 1
                } else if let oldPod {
                    toDelete.append(oldPod)  // surged and available: the old one goes
                }
            } else if let oldPod, rolling {
                if !available(oldPod) {
                    // An old pod that is not available anyway is replaced at once.
                    if maxSurge > 0 { toCreate.append(node) } else { toDelete.append(oldPod) }
                } else if maxSurge > 0 {
                    surgeable.append(node)
                } else {
                    replaceable.append(oldPod)
                }
            }
        }
        if maxSurge > 0 {
            toCreate += surgeable.prefix(Int(max(0, min(Int64(surgeable.count), maxSurge - surged))))
        } else {
            toDelete += replaceable.prefix(Int(max(0, min(Int64(replaceable.count), maxUnavailable - unavailable))))
        }
        for pod in toDelete {
            try writes.deletePod(namespace: namespace, name: pod.metadata.name ?? "", uid: pod.metadata.uid)
            writes.event(about: ControllerWrites.reference(daemonSet), type: "Normal", reason: "SuccessfulDelete", message: "Deleted pod: \(pod.metadata.name ?? "")")
        }
        for node in toCreate {
            do {
                let pod = DaemonSetPlacement.pod(of: daemonSet, node: node, hash: hash)
                let created = try writes.create(.pods, namespace: namespace, object: try KubeJSON.tree(pod))
                writes.event(about: ControllerWrites.reference(daemonSet), type: "Normal", reason: "SuccessfulCreate",
                             message: "Created pod: \(created.string(at: ["metadata", "name"]) ?? "")")
            } catch {
                writes.event(about: ControllerWrites.reference(daemonSet), type: "Warning", reason: "FailedCreate", message: "Error creating pod on node \(node): \(error)")
            }
        }
        return nextDue
    }

    private func recordFailure(key: String) {
        backoff.withLock { table in
            let failures = min((table[key]?.failures ?? 0) + 1, 10)
            let delay = min(Duration.seconds(1 << (failures - 1)), .seconds(300))
            table[key] = (failures, ContinuousClock.now + delay)
        }
    }

    private func backoffWait(key: String) -> Duration? {
        backoff.withLock { table in
            guard let entry = table[key] else { return nil }
            let now = ContinuousClock.now
            return entry.until > now ? entry.until - now : nil
        }
    }

    /// The pods the daemon set controls: its own, and orphans its selector matches (adopted).
    private func claim(_ pods: [Pod], for daemonSet: DaemonSet, selector: LabelSelector) throws -> [Pod] {
        var owned: [Pod] = []
        for pod in pods {
            if let reference = pod.metadata.controllerReference {
                if reference.uid == daemonSet.metadata.uid { owned.append(pod) }
            } else if daemonSet.metadata.deletionTimestamp == nil, selector.matches(pod.metadata.labels ?? [:]), pod.metadata.deletionTimestamp == nil,
                      !PodAvailability.hasEnded(pod), let name = pod.metadata.name, let namespace = pod.metadata.namespace {
                let reference = try KubeJSON.tree(ControllerWrites.controllerReference(to: daemonSet))
                let stored = try store.update(.pods, namespace: namespace, name: name) { object in
                    guard object.string(at: ["metadata", "uid"]) == pod.metadata.uid,
                          !(object[path: ["metadata", "ownerReferences"]]?.arrayValue ?? []).contains(where: { $0["controller"] == .bool(true) }) else { return nil }
                    var next = object
                    next.set(["metadata", "ownerReferences"], .array((object[path: ["metadata", "ownerReferences"]]?.arrayValue ?? []) + [reference]))
                    return next
                }
                if let adopted = try? KubeJSON.decode(Pod.self, from: stored), adopted.metadata.controllerReference?.uid == daemonSet.metadata.uid { owned.append(adopted) }
            }
        }
        return owned
    }

    /// The hash of the revision holding the current template: an existing revision with the
    /// same template becomes the newest (a rollback), or a new one is stored. Old revisions
    /// beyond `revisionHistoryLimit` go.
    private func currentRevision(of daemonSet: DaemonSet, revisions: [ControllerRevision]) throws -> String? {
        guard let name = daemonSet.metadata.name, let namespace = daemonSet.metadata.namespace, let template = daemonSet.spec?.template else { return nil }
        // Revisions are client-writable: one beyond any real count is ignored, never overflowed.
        let newest = revisions.map(\.revision).filter { $0 <= DeploymentRollout.largestRevision }.max() ?? 0
        let matching = revisions.filter { DeploymentRollout.sameIgnoringHash(DaemonSetPlacement.template(of: $0), template) }
        var current: ControllerRevision
        if let existing = matching.max(by: { $0.revision < $1.revision }) {
            current = existing
            if existing.revision < newest, let revisionName = existing.metadata.name {
                let stored = try store.update(.controllerRevisions, namespace: namespace, name: revisionName) { object in
                    guard object.string(at: ["metadata", "uid"]) == existing.metadata.uid else { return nil }
                    var next = object
                    next.set(["revision"], .integer(newest &+ 1))
                    return next
                }
                current = (try? KubeJSON.decode(ControllerRevision.self, from: stored)) ?? existing
            }
        } else {
            let hash = DeploymentRollout.templateHash(template, collisionCount: daemonSet.status?.collisionCount)
            // The prefix is cut so the name stays within 253 characters (as kube's controller does).
            var revision = ControllerRevision(metadata: ObjectMeta(name: "\(name.prefix(223))-\(hash)", namespace: namespace,
                                                                   labels: (template.metadata?.labels ?? [:]).merging([DaemonSetPlacement.revisionHashLabel: hash]) { $1 }),
                                              data: DaemonSetPlacement.revisionData(template), revision: newest &+ 1)
            revision.metadata.annotations = daemonSet.metadata.annotations?.filter { $0.key == "kubernetes.io/change-cause" }
            revision.metadata.ownerReferences = [ControllerWrites.controllerReference(to: daemonSet)]
            revision.setTypeMeta()
            do {
                current = try KubeJSON.decode(ControllerRevision.self, from: try writes.create(.controllerRevisions, namespace: namespace, object: try KubeJSON.tree(revision)))
            } catch let error as APIError where error.code == 409 {
                // The name is another template's: count the collision, hash differently next pass.
                let collisions = daemonSet.status?.collisionCount ?? 0
                guard collisions < Int32.max else { throw error }
                try store.update(.daemonSets, namespace: namespace, name: name) { object in
                    guard object.string(at: ["metadata", "uid"]) == daemonSet.metadata.uid else { return nil }
                    var next = object
                    next.set(["status", "collisionCount"], .integer(collisions + 1))
                    return next
                }
                return nil
            }
        }
        try cleanUpRevisions(revisions, keeping: current, limit: daemonSet.spec?.revisionHistoryLimit ?? 10, namespace: namespace)
        return current.metadata.labels?[DaemonSetPlacement.revisionHashLabel] ?? current.metadata.name.map { String($0.dropFirst(min(name.count, 223) + 1)) }
    }

    private func cleanUpRevisions(_ revisions: [ControllerRevision], keeping current: ControllerRevision, limit: Int32, namespace: String) throws {
        let old = revisions.filter { $0.metadata.uid != current.metadata.uid }.sorted { $0.revision < $1.revision }
        let surplus = old.count - Int(max(0, limit))
        guard surplus > 0 else { return }
        for revision in old.prefix(surplus) {
            guard let name = revision.metadata.name else { continue }
            try? writes.delete(.controllerRevisions, namespace: namespace, name: name, uid: revision.metadata.uid)
        }
    }

    private func writeStatus(_ daemonSet: DaemonSet, states: [String: NodeState], hash: String) throws {
        guard let name = daemonSet.metadata.name, let namespace = daemonSet.metadata.namespace else { return }
        let minReady = Int64(max(0, daemonSet.spec?.minReadySeconds ?? 0))
        let now = Timestamp.now()
        var status = DaemonSetStatus()
        var updated = 0
        var available = 0
        for state in states.values {
            guard let pod = state.running.first else { continue }
            guard state.shouldRun else {
                status.numberMisscheduled += 1
                continue
            }
            status.currentNumberScheduled += 1
            let current = state.running.first { $0.metadata.labels?[DaemonSetPlacement.revisionHashLabel] == hash }
            if current != nil { updated += 1 }
            let shown = current ?? pod
            if PodAvailability.isReady(shown) {
                status.numberReady += 1
                if PodAvailability.availability(shown, minReadySeconds: minReady, now: now, readySince: nil) == .available { available += 1 }
            }
        }
        status.desiredNumberScheduled = Int32(clamping: states.values.filter(\.shouldRun).count)
        status.updatedNumberScheduled = Int32(clamping: updated)
        status.numberAvailable = Int32(clamping: available)
        status.numberUnavailable = max(0, status.desiredNumberScheduled - Int32(clamping: available))
        status.observedGeneration = daemonSet.metadata.generation
        status.collisionCount = daemonSet.status?.collisionCount
        guard status != daemonSet.status else { return }
        let tree = try KubeJSON.tree(status)
        try store.update(.daemonSets, namespace: namespace, name: name) { object in
            guard object.string(at: ["metadata", "uid"]) == daemonSet.metadata.uid,
                  object.int64(at: ["metadata", "generation"]) == daemonSet.metadata.generation else { return nil }
            var next = object
            next.set(["status"], tree)
            if let stored = object.int64(at: ["status", "collisionCount"]), stored > Int64(status.collisionCount ?? 0) {
                next.set(["status", "collisionCount"], .integer(stored))
            }
            return next
        }
    }
}
