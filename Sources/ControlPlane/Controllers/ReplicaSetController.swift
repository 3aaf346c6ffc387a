import KubeModel
import Logging
import ServiceLifecycle
import Synchronization

/// The replica set controller: keeps each ReplicaSet's count of active pods (not terminating,
/// not ended) at `spec.replicas`, adopting matching orphans and releasing pods that stopped
/// matching, and reports the counts (ready, available after `minReadySeconds`) in its status.
public final class ReplicaSetController: Service, Sendable {
    /// Pods created or deleted per replica set per pass at most (kube-controller-manager's
    /// burstReplicas): a huge `replicas` fills up over passes instead of in one burst.
    static let burstReplicas = 500

    let store: ObjectStore
    let logger: Logger
    let resync: Duration
    let writes: ControllerWrites
    /// When this server first saw each pod Ready, on its own clock: a pod counts as available
    /// after `minReadySeconds` by its Ready condition's time or by this, whichever says so
    /// first (a board's clock may be far off). Lost at restart, which only delays availability.
    private let readySince = Mutex<[String: ContinuousClock.Instant]>([:])
    /// Replica sets (by uid) whose last pod create failed, and when to try again: a template
    /// the API refuses costs one attempt per interval, not a pass per write.
    private let createRetryAt = Mutex<[String: ContinuousClock.Instant]>([:])
    static let createRetryInterval: Duration = .seconds(10)

    public init(store: ObjectStore, logger: Logger, resync: Duration = .seconds(10)) {
        self.store = store
        self.logger = logger
        self.resync = resync
        writes = ControllerWrites(store: store, component: "replicaset-controller")
    }

    public func run() async throws {
        try await ControllerLoop(store: store, resources: [.replicaSets, .pods], resync: resync).run(isRelevant: Self.isRelevant) { [self] in
            syncAll()
        }
    }

    /// Replica set changes, and pod changes that can change a count: creations, deletions,
    /// and updates of pods with a controller or labels (readiness, phase, termination, labels).
    static func isRelevant(_ change: Change) -> Bool {
        if change.resource != ResourceType.pods.storageKey { return true }
        if change.type != .modified { return true }
        let keys: [[String]] = [["metadata", "labels"], ["metadata", "ownerReferences"], ["metadata", "deletionTimestamp"], ["status", "phase"],
                                ["status", "conditions"]]
        return keys.contains { change.object[path: $0] != change.previous?[path: $0] }
    }

    /// One pass over every replica set; returns when the next pass is due, if sooner than the resync.
    func syncAll() -> Duration? {
        do {
            let replicaSets = try store.list(.replicaSets, namespace: nil).items.compactMap { try? KubeJSON.decode(ReplicaSet.self, from: $0) }
            guard !replicaSets.isEmpty else {
                readySince.withLock { $0 = [:] }
                return nil
            }
            var podsByNamespace: [String: [Pod]] = [:]
            for tree in try store.list(.pods, namespace: nil).items where tree.controlledBy(kindOrNone: ReplicaSet.kind) {
                guard let pod = try? KubeJSON.decode(Pod.self, from: tree) else { continue }
                podsByNamespace[pod.metadata.namespace ?? "", default: []].append(pod)
            }
            trackReadiness(podsByNamespace.values.joined())
            var nextDue: Duration?
            for replicaSet in replicaSets {
                do {
                    if let due = try sync(replicaSet, pods: podsByNamespace[replicaSet.metadata.namespace ?? ""] ?? []) {
                        nextDue = min(nextDue ?? due, due)
                    }
                } catch {
                    logger.warning("replica set \(replicaSet.qualifiedName): \(error)")
                }
            }
            return nextDue
        } catch {
            logger.warning("replica set pass failed: \(error)")
            return nil
        }
    }

    private func trackReadiness<Pods: Sequence<Pod>>(_ pods: Pods) {
        let now = ContinuousClock.now
        readySince.withLock { readySince in
            var next: [String: ContinuousClock.Instant] = [:]
            for pod in pods where PodAvailability.isReady(pod) {
                guard let uid = pod.metadata.uid else { continue }
                next[uid] = readySince[uid] ?? now
            }
            readySince = next
        }
    }

    /// Brings one replica set's pods to its count and writes its status; returns when a pod
    /// becomes available (for `minReadySeconds`).
    func sync(_ replicaSet: ReplicaSet, pods: [Pod]) throws -> Duration? {
        guard let name = replicaSet.metadata.name, let namespace = replicaSet.metadata.namespace, let uid = replicaSet.metadata.uid,
              let spec = replicaSet.spec, let selector = spec.selector else { return nil }
        let deleting = replicaSet.metadata.deletionTimestamp != nil
        var owned: [Pod] = []
        // Adoption only by a replica set that is still there and not being deleted (read again:
        // an orphaning delete may have come since the list).
        var adoptionAllowed: Bool?
        func mayAdopt() throws -> Bool {
            if let adoptionAllowed { return adoptionAllowed }
            let live = try store.get(.replicaSets, namespace: namespace, name: name)
            let allowed = live?.string(at: ["metadata", "uid"]) == uid && live?[path: ["metadata", "deletionTimestamp"]] == nil
            adoptionAllowed = allowed
            return allowed
        }
        for pod in pods {
            let labels = pod.metadata.labels ?? [:]
            if let reference = pod.metadata.controllerReference {
                guard reference.uid == uid else { continue }
                if selector.isEmpty || selector.matches(labels) || deleting {
                    owned.append(pod)
                } else {
                    try release(pod, from: uid)
                }
            } else if !deleting, !selector.isEmpty, selector.matches(labels), pod.metadata.deletionTimestamp == nil, !PodAvailability.hasEnded(pod), try mayAdopt() {
                if let adopted = try adopt(pod, by: replicaSet) { owned.append(adopted) }
            }
        }
        let active = owned.filter { $0.metadata.deletionTimestamp == nil && !PodAvailability.hasEnded($0) }
        let desired = Int(spec.replicas ?? 1)
        var failure: String?
        var retryWait: Duration?
        if !deleting {
            let wait = createRetryAt.withLock { table -> Duration? in
                guard let at = table[uid] else { return nil }
                let left = at - ContinuousClock.now
                if left <= .zero { table[uid] = nil }
                return left > .zero ? left : nil
            }
            if active.count < desired, let wait {
                retryWait = wait
                failure = replicaSet.status?.conditions?.first { $0.type == "ReplicaFailure" }?.message
            } else if active.count < desired {
                let count = min(desired - active.count, Self.burstReplicas)
                for _ in 0..<count {
                    let pod = podFromTemplate(replicaSet)
                    do {
                        try writes.create(.pods, namespace: namespace, object: try KubeJSON.tree(pod))
                        writes.event(about: ControllerWrites.reference(replicaSet), type: "Normal", reason: "SuccessfulCreate",
                                     message: "Created pod: \(pod.metadata.name ?? "")")
                    } catch {
                        // The same words each time (not the pod's random name): the condition
                        // is rewritten only when the reason changes.
                        failure = "\(error)".replacing(pod.metadata.name ?? "", with: "\(pod.metadata.generateName ?? "")*")
                        writes.event(about: ControllerWrites.reference(replicaSet), type: "Warning", reason: "FailedCreate", message: "Error creating: \(failure ?? "")")
                        createRetryAt.withLock { $0[uid] = ContinuousClock.now + Self.createRetryInterval }
                        retryWait = Self.createRetryInterval
                        break
                    }
                }
            } else if active.count > desired {
                let surplus = min(active.count - desired, Self.burstReplicas)
                for pod in PodAvailability.deletionOrder(active).prefix(surplus) {
                    try writes.deletePod(namespace: namespace, name: pod.metadata.name ?? "", uid: pod.metadata.uid)
                    writes.event(about: ControllerWrites.reference(replicaSet), type: "Normal", reason: "SuccessfulDelete",
                                 message: "Deleted pod: \(pod.metadata.name ?? "")")
                }
            }
        }
        let due = try writeStatus(replicaSet, active: active, failure: failure)
        guard let retryWait else { return due }
        return min(due ?? retryWait, retryWait)
    }

    /// Counts the active pods into the status (written only when it changed).
    private func writeStatus(_ replicaSet: ReplicaSet, active: [Pod], failure: String?) throws -> Duration? {
        let minReady = Int64(max(0, replicaSet.spec?.minReadySeconds ?? 0))
        let templateLabels = replicaSet.spec?.template?.metadata?.labels ?? [:]
        var status = ReplicaSetStatus(replicas: Int32(clamping: active.count))
        status.fullyLabeledReplicas = Int32(clamping: active.filter { pod in templateLabels.allSatisfy { pod.metadata.labels?[$0.key] == $0.value } }.count)
        var ready = 0
        var available = 0
        var nextDue: Duration?
        let now = Timestamp.now()
        let seen = readySince.withLock { $0 }
        for pod in active where PodAvailability.isReady(pod) {
            ready += 1
            switch PodAvailability.availability(pod, minReadySeconds: minReady, now: now, readySince: pod.metadata.uid.flatMap { seen[$0] }) {
            case .available: available += 1
            case .after(let wait): nextDue = min(nextDue ?? wait, wait)
            }
        }
        status.readyReplicas = Int32(clamping: ready)
        status.availableReplicas = Int32(clamping: available)
        status.observedGeneration = replicaSet.metadata.generation
        let previous = replicaSet.status?.conditions?.first { $0.type == "ReplicaFailure" }
        if let failure {
            status.conditions = [ReplicaSetCondition(type: "ReplicaFailure", status: .true,
                                                     lastTransitionTime: previous?.status == .true ? previous?.lastTransitionTime : .now(),
                                                     reason: "FailedCreate", message: String(failure.prefix(1024)))]
        }
        guard status != replicaSet.status, let name = replicaSet.metadata.name, let namespace = replicaSet.metadata.namespace else { return nextDue }
        let uid = replicaSet.metadata.uid
        let tree = try KubeJSON.tree(status)
        try store.update(.replicaSets, namespace: namespace, name: name) { object in
            guard object.string(at: ["metadata", "uid"]) == uid else { return nil }
            var next = object
            next.set(["status"], tree)
            return next
        }
        return nextDue
    }

    /// A new pod of the replica set's template, owned by it.
    private func podFromTemplate(_ replicaSet: ReplicaSet) -> Pod {
        let template = replicaSet.spec?.template
        var metadata = ObjectMeta(labels: template?.metadata?.labels, annotations: template?.metadata?.annotations)
        // As kube's name generator: the prefix is cut so the name stays a DNS label (63).
        metadata.generateName = String((replicaSet.metadata.name ?? "").prefix(57)) + "-"
        metadata.name = metadata.generateName! + APIServer.randomSuffix()
        metadata.finalizers = template?.metadata?.finalizers
        metadata.ownerReferences = [ControllerWrites.controllerReference(to: replicaSet)]
        var pod = Pod(metadata: metadata, spec: template?.spec)
        pod.setTypeMeta()
        return pod
    }

    /// Makes the replica set the controller of an orphan pod its selector matches.
    private func adopt(_ pod: Pod, by replicaSet: ReplicaSet) throws -> Pod? {
        guard let name = pod.metadata.name, let namespace = pod.metadata.namespace else { return nil }
        let reference = try KubeJSON.tree(ControllerWrites.controllerReference(to: replicaSet))
        let stored = try store.update(.pods, namespace: namespace, name: name) { object in
            guard object.string(at: ["metadata", "uid"]) == pod.metadata.uid, object[path: ["metadata", "deletionTimestamp"]] == nil,
                  !(object[path: ["metadata", "ownerReferences"]]?.arrayValue ?? []).contains(where: { $0["controller"] == .bool(true) }) else { return nil }
            var next = object
            next.set(["metadata", "ownerReferences"], .array((object[path: ["metadata", "ownerReferences"]]?.arrayValue ?? []) + [reference]))
            return next
        }
        let adopted = try KubeJSON.decode(Pod.self, from: stored)
        return adopted.metadata.controllerReference?.uid == replicaSet.metadata.uid ? adopted : nil
    }

    /// Drops the replica set's controller reference from a pod that no longer matches it.
    private func release(_ pod: Pod, from uid: String) throws {
        guard let name = pod.metadata.name, let namespace = pod.metadata.namespace else { return }
        try store.update(.pods, namespace: namespace, name: name) { object in
            guard let references = object[path: ["metadata", "ownerReferences"]]?.arrayValue else { return nil }
            let kept = references.filter { $0.string(at: ["uid"]) != uid }
            guard kept.count != references.count else { return nil }
            var next = object
            next.set(["metadata", "ownerReferences"], kept.isEmpty ? nil : .array(kept))
            return next
        }
    }
}
