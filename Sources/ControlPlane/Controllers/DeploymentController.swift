import KubeModel
import Logging
import ServiceLifecycle

/// The deployment controller: one replica set per template revision (named by the template's
/// hash), rolled out by `RollingUpdate` within `maxSurge`/`maxUnavailable` or by `Recreate`,
/// with the revision annotations `kubectl rollout history|undo` read, old replica sets kept
/// up to `revisionHistoryLimit`, and the Available and Progressing conditions.
public final class DeploymentController: Service, Sendable {
    let store: ObjectStore
    let logger: Logger
    let resync: Duration
    let writes: ControllerWrites

    public init(store: ObjectStore, logger: Logger, resync: Duration = .seconds(5)) {
        self.store = store
        self.logger = logger
        self.resync = resync
        writes = ControllerWrites(store: store, component: "deployment-controller")
    }

    public func run() async throws {
        try await ControllerLoop(store: store, resources: [.deployments, .replicaSets], resync: resync).run(isRelevant: { _ in true }) { [self] in
            syncAll()
            return nil
        }
    }

    /// One pass over every deployment.
    func syncAll() {
        do {
            let deployments = try store.list(.deployments, namespace: nil).items.compactMap { try? KubeJSON.decode(Deployment.self, from: $0) }
            guard !deployments.isEmpty else { return }
            var replicaSetsByNamespace: [String: [ReplicaSet]] = [:]
            for tree in try store.list(.replicaSets, namespace: nil).items {
                guard let replicaSet = try? KubeJSON.decode(ReplicaSet.self, from: tree) else { continue }
                replicaSetsByNamespace[replicaSet.metadata.namespace ?? "", default: []].append(replicaSet)
            }
            for deployment in deployments {
                do {
                    try sync(deployment, replicaSets: replicaSetsByNamespace[deployment.metadata.namespace ?? ""] ?? [])
                } catch {
                    logger.warning("deployment \(deployment.qualifiedName): \(error)")
                }
            }
        } catch {
            logger.warning("deployment pass failed: \(error)")
        }
    }

    func sync(_ deployment: Deployment, replicaSets: [ReplicaSet]) throws {
        guard let namespace = deployment.metadata.namespace, let uid = deployment.metadata.uid, let spec = deployment.spec,
              let selector = spec.selector, !selector.isEmpty else { return }
        let deleting = deployment.metadata.deletionTimestamp != nil
        var owned: [ReplicaSet] = []
        var adoptionAllowed: Bool?
        func mayAdopt() throws -> Bool {
            if let adoptionAllowed { return adoptionAllowed }
            let live = try store.get(.deployments, namespace: namespace, name: deployment.metadata.name ?? "")
            let allowed = live?.string(at: ["metadata", "uid"]) == uid && live?[path: ["metadata", "deletionTimestamp"]] == nil
            adoptionAllowed = allowed
            return allowed
        }
        for replicaSet in replicaSets {
            let labels = replicaSet.metadata.labels ?? [:]
            if let reference = replicaSet.metadata.controllerReference {
                guard reference.uid == uid else { continue }
                if selector.matches(labels) || deleting {
                    owned.append(replicaSet)
                } else {
                    try setControllerReference(of: replicaSet, to: nil, releasing: uid)
                }
            } else if !deleting, selector.matches(labels), replicaSet.metadata.deletionTimestamp == nil, try mayAdopt(),
                      let adopted = try setControllerReference(of: replicaSet, to: deployment, releasing: nil) {
                owned.append(adopted)
            }
        }
        owned.sort { ($0.metadata.creationTimestamp?.seconds ?? 0, $0.metadata.name ?? "") < ($1.metadata.creationTimestamp?.seconds ?? 0, $1.metadata.name ?? "") }
        var newReplicaSet = owned.first { DeploymentRollout.sameIgnoringHash($0.spec?.template, spec.template) }
        let hadNewReplicaSet = newReplicaSet != nil
        var createFailure: String?
        var old = owned.filter { $0.metadata.uid != newReplicaSet?.metadata.uid }
        if !deleting {
            if spec.paused == true {
                // Paused: no new revision; a scale goes to the only replica set with pods.
                if let current = newReplicaSet, old.allSatisfy({ DeploymentRollout.specReplicas($0) == 0 }) {
                    newReplicaSet = try scale(current, to: Int64(spec.replicas ?? 1), for: deployment)
                }
            } else if spec.strategy?.type == "Recreate" {
                for (index, replicaSet) in old.enumerated() where DeploymentRollout.specReplicas(replicaSet) > 0 {
                    old[index] = try scale(replicaSet, to: 0, for: deployment)
                }
                // The new pods start only when every old pod has stopped.
                if try !oldPodsRemain(old, namespace: namespace) {
                    if newReplicaSet == nil {
                        newReplicaSet = try createReplicaSet(for: deployment, old: old, replicas: Int64(spec.replicas ?? 1), failure: &createFailure)
                    } else if let current = newReplicaSet {
                        newReplicaSet = try scale(try annotate(current, for: deployment, old: old), to: Int64(spec.replicas ?? 1), for: deployment)
                    }
                }
            } else {
                if let current = newReplicaSet {
                    let annotated = try annotate(current, for: deployment, old: old)
                    let count = DeploymentRollout.newReplicaCount(spec, all: old + [annotated], newReplicas: DeploymentRollout.specReplicas(annotated))
                    newReplicaSet = try scale(annotated, to: count, for: deployment)
                } else {
                    let count = DeploymentRollout.newReplicaCount(spec, all: old, newReplicas: 0)
                    newReplicaSet = try createReplicaSet(for: deployment, old: old, replicas: count, failure: &createFailure)
                }
                let counts = DeploymentRollout.oldReplicaCounts(spec, new: newReplicaSet, old: old)
                for (index, replicaSet) in old.enumerated() {
                    if let count = counts[replicaSet.metadata.name ?? ""], count != DeploymentRollout.specReplicas(replicaSet) {
                        old[index] = try scale(replicaSet, to: count, for: deployment)
                    }
                }
            }
            try cleanUp(old, limit: spec.revisionHistoryLimit)
        }
        var event: RolloutEvent?
        if let failure = createFailure { event = .createFailed(failure) } else if !hadNewReplicaSet, newReplicaSet != nil { event = .created }
        try writeStatus(deployment, new: newReplicaSet, all: old + (newReplicaSet.map { [$0] } ?? []), event: event)
    }

    /// What happened to the new replica set in this pass, for the Progressing condition.
    enum RolloutEvent {
        case created
        case createFailed(String)
    }

    /// Whether pods of the old replica sets still exist and have not ended (terminating ones count).
    private func oldPodsRemain(_ old: [ReplicaSet], namespace: String) throws -> Bool {
        let uids = Set(old.compactMap(\.metadata.uid))
        guard !uids.isEmpty else { return false }
        for tree in try store.list(.pods, namespace: namespace).items {
            guard let pod = try? KubeJSON.decode(Pod.self, from: tree), let owner = pod.metadata.controllerReference?.uid, uids.contains(owner) else { continue }
            if !PodAvailability.hasEnded(pod) { return true }
        }
        return false
    }

    /// Creates the replica set of the deployment's current template; a name taken by another
    /// template raises the collision count (the next pass hashes differently).
    /// Creates the new replica set; a refusal of the API is returned as the Progressing message.
    private func createReplicaSet(for deployment: Deployment, old: [ReplicaSet], replicas: Int64, failure: inout String?) throws -> ReplicaSet? {
        do {
            return try createReplicaSetOrCountCollision(for: deployment, old: old, replicas: replicas)
        } catch let error as APIError where error.code != 409 {
            failure = "Failed to create new replica set for \"\(deployment.metadata.name ?? "")\": \(error.message)"
            return nil
        }
    }

    private func createReplicaSetOrCountCollision(for deployment: Deployment, old: [ReplicaSet], replicas: Int64) throws -> ReplicaSet? {
        guard let spec = deployment.spec, var template = spec.template, var selector = spec.selector, let name = deployment.metadata.name,
              let namespace = deployment.metadata.namespace else { return nil }
        let hash = DeploymentRollout.templateHash(template, collisionCount: deployment.status?.collisionCount)
        var templateMetadata = template.metadata ?? ObjectMeta()
        templateMetadata.labels = (templateMetadata.labels ?? [:]).merging([DeploymentRollout.templateHashLabel: hash]) { $1 }
        template.metadata = templateMetadata
        selector.matchLabels = (selector.matchLabels ?? [:]).merging([DeploymentRollout.templateHashLabel: hash]) { $1 }
        var metadata = ObjectMeta(name: "\(name)-\(hash)", namespace: namespace, labels: templateMetadata.labels)
        metadata.annotations = replicaSetAnnotations(deployment, existing: [:], old: old)
        metadata.ownerReferences = [ControllerWrites.controllerReference(to: deployment)]
        var replicaSetSpec = ReplicaSetSpec(replicas: Int32(clamping: replicas), selector: selector, template: template)
        replicaSetSpec.minReadySeconds = spec.minReadySeconds
        var replicaSet = ReplicaSet(metadata: metadata, spec: replicaSetSpec)
        replicaSet.setTypeMeta()
        do {
            let stored = try KubeJSON.decode(ReplicaSet.self, from: try writes.create(.replicaSets, namespace: namespace, object: try KubeJSON.tree(replicaSet)))
            writes.event(about: ControllerWrites.reference(deployment), type: "Normal", reason: "ScalingReplicaSet",
                         message: "Scaled up replica set \(metadata.name ?? "") to \(replicas) from 0")
            return stored
        } catch let error as APIError where error.code == 409 {
            let collisions = deployment.status?.collisionCount ?? 0
            guard collisions < Int32.max else { throw error }
            try store.update(.deployments, namespace: namespace, name: name) { object in
                guard object.string(at: ["metadata", "uid"]) == deployment.metadata.uid else { return nil }
                var next = object
                next.set(["status", "collisionCount"], .integer(collisions + 1))
                return next
            }
            return nil
        }
    }

    /// The annotations of the deployment's new replica set: the deployment's own (change
    /// causes), the next revision (the previous one moves to the revision history) and the
    /// replica counts.
    private func replicaSetAnnotations(_ deployment: Deployment, existing: [String: String], old: [ReplicaSet]) -> [String: String] {
        var annotations = existing
        for (key, value) in deployment.metadata.annotations ?? [:] where !DeploymentRollout.annotationsNotCopied.contains(key) {
            annotations[key] = value
        }
        let next = (old.map(DeploymentRollout.revision).max() ?? 0) + 1
        let current = DeploymentRollout.readRevision(existing[DeploymentRollout.revisionAnnotation])
        if current < next {
            if current > 0 {
                let history = existing[DeploymentRollout.revisionHistoryAnnotation].map { $0 + "," } ?? ""
                annotations[DeploymentRollout.revisionHistoryAnnotation] = history + String(current)
            }
            annotations[DeploymentRollout.revisionAnnotation] = String(next)
        }
        let replicas = Int64(deployment.spec?.replicas ?? 1)
        annotations[DeploymentRollout.desiredReplicasAnnotation] = String(replicas)
        annotations[DeploymentRollout.maxReplicasAnnotation] = String(replicas + (deployment.spec.map(DeploymentRollout.fenceposts)?.surge ?? 0))
        return annotations
    }

    /// Brings the new replica set's annotations and `minReadySeconds` up to the deployment's.
    private func annotate(_ replicaSet: ReplicaSet, for deployment: Deployment, old: [ReplicaSet]) throws -> ReplicaSet {
        let annotations = replicaSetAnnotations(deployment, existing: replicaSet.metadata.annotations ?? [:], old: old)
        let minReady = deployment.spec?.minReadySeconds
        guard annotations != replicaSet.metadata.annotations ?? [:] || minReady != replicaSet.spec?.minReadySeconds else { return replicaSet }
        return try updateReplicaSet(replicaSet) { next in
            next.metadata.annotations = annotations
            next.spec?.minReadySeconds = minReady
        }
    }

    /// Sets a replica set's count (and the counts it was set for), with an event.
    private func scale(_ replicaSet: ReplicaSet, to count: Int64, for deployment: Deployment) throws -> ReplicaSet {
        let current = DeploymentRollout.specReplicas(replicaSet)
        guard count != current else { return replicaSet }
        let replicas = Int64(deployment.spec?.replicas ?? 1)
        let maximum = replicas + (deployment.spec.map(DeploymentRollout.fenceposts)?.surge ?? 0)
        let updated = try updateReplicaSet(replicaSet) { next in
            next.spec?.replicas = Int32(clamping: count)
            next.metadata.annotations = (next.metadata.annotations ?? [:]).merging([
                DeploymentRollout.desiredReplicasAnnotation: String(replicas), DeploymentRollout.maxReplicasAnnotation: String(maximum),
            ]) { $1 }
        }
        writes.event(about: ControllerWrites.reference(deployment), type: "Normal", reason: "ScalingReplicaSet",
                     message: "Scaled \(count > current ? "up" : "down") replica set \(replicaSet.metadata.name ?? "") to \(count) from \(current)")
        return updated
    }

    /// Writes a change to a replica set (only the one with the same uid), raising its
    /// generation when its spec changed.
    private func updateReplicaSet(_ replicaSet: ReplicaSet, change: @escaping (inout ReplicaSet) -> Void) throws -> ReplicaSet {
        guard let name = replicaSet.metadata.name, let namespace = replicaSet.metadata.namespace else { return replicaSet }
        let stored = try store.update(.replicaSets, namespace: namespace, name: name) { object in
            guard var current = try? KubeJSON.decode(ReplicaSet.self, from: object), current.metadata.uid == replicaSet.metadata.uid else { return nil }
            let spec = current.spec
            change(&current)
            if current.spec != spec { current.metadata.generation = (current.metadata.generation ?? 1) + 1 }
            return try KubeJSON.tree(current)
        }
        return try KubeJSON.decode(ReplicaSet.self, from: stored)
    }

    /// Adopts (`owner`) or releases (`releasing` its uid) a replica set; returns the adopted one.
    @discardableResult
    private func setControllerReference(of replicaSet: ReplicaSet, to owner: Deployment?, releasing: String?) throws -> ReplicaSet? {
        let updated = try updateReplicaSet(replicaSet) { next in
            var references = next.metadata.ownerReferences ?? []
            if let releasing {
                references.removeAll { $0.uid == releasing }
            } else if let owner, !references.contains(where: { $0.controller == true }) {
                references.append(ControllerWrites.controllerReference(to: owner))
            }
            next.metadata.ownerReferences = references.isEmpty ? nil : references
        }
        guard let owner else { return nil }
        return updated.metadata.controllerReference?.uid == owner.metadata.uid ? updated : nil
    }

    /// Deletes the oldest scaled-down replica sets beyond `revisionHistoryLimit`.
    private func cleanUp(_ old: [ReplicaSet], limit: Int32?) throws {
        guard let limit else { return }
        let cleanable = old.filter {
            DeploymentRollout.specReplicas($0) == 0 && ($0.status?.replicas ?? 0) == 0 && $0.metadata.deletionTimestamp == nil
                && ($0.metadata.generation ?? 0) <= ($0.status?.observedGeneration ?? 0)
        }
        let surplus = cleanable.count - Int(max(0, limit))
        guard surplus > 0 else { return }
        for replicaSet in cleanable.sorted(by: { DeploymentRollout.revision($0) < DeploymentRollout.revision($1) }).prefix(surplus) {
            guard let name = replicaSet.metadata.name, let namespace = replicaSet.metadata.namespace else { continue }
            try? writes.delete(.replicaSets, namespace: namespace, name: name, uid: replicaSet.metadata.uid)
        }
    }

    /// Writes the deployment's status and its revision annotation, when they changed.
    private func writeStatus(_ deployment: Deployment, new newReplicaSet: ReplicaSet?, all: [ReplicaSet], event: RolloutEvent?) throws {
        guard let name = deployment.metadata.name, let namespace = deployment.metadata.namespace else { return }
        var status = DeploymentRollout.status(of: deployment, new: newReplicaSet, all: all, now: .now())
        var conditions = status.conditions ?? []
        switch event {
        case .created?:
            // A new rollout starts its progress deadline now.
            DeploymentRollout.set(&conditions, DeploymentCondition(type: "Progressing", status: .true, reason: "NewReplicaSetCreated",
                                                                   message: "Created new replica set \"\(newReplicaSet?.metadata.name ?? "")\"", at: .now()))
        case .createFailed(let message)?:
            DeploymentRollout.set(&conditions, DeploymentCondition(type: "Progressing", status: .false, reason: "ReplicaSetCreateError",
                                                                   message: String(message.prefix(1024)), at: .now()))
        case nil:
            break
        }
        status.conditions = conditions
        let revision = newReplicaSet?.metadata.annotations?[DeploymentRollout.revisionAnnotation]
        let revisionChanged = revision != nil && revision != deployment.metadata.annotations?[DeploymentRollout.revisionAnnotation]
        guard status != deployment.status || revisionChanged else { return }
        let tree = try KubeJSON.tree(status)
        try store.update(.deployments, namespace: namespace, name: name) { object in
            guard object.string(at: ["metadata", "uid"]) == deployment.metadata.uid else { return nil }
            var next = object
            // Counts observed for a generation older than the stored one say nothing about it.
            if object.int64(at: ["metadata", "generation"]) != deployment.metadata.generation { return nil }
            next.set(["status"], tree)
            // A collision counted since this pass read the deployment stays counted.
            if let stored = object.int64(at: ["status", "collisionCount"]), stored > Int64(status.collisionCount ?? 0) {
                next.set(["status", "collisionCount"], .integer(stored))
            }
            if let revision { next.set(["metadata", "annotations", DeploymentRollout.revisionAnnotation], .string(revision)) }
            return next
        }
    }
}
