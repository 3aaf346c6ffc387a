import KubeModel

/// The deployment controller's arithmetic, free of the store: template hashes, how far a
/// rolling update may go, and the status and conditions a deployment reports.
enum DeploymentRollout {
    static let templateHashLabel = "pod-template-hash"
    static let revisionAnnotation = "deployment.kubernetes.io/revision"
    static let revisionHistoryAnnotation = "deployment.kubernetes.io/revision-history"
    static let desiredReplicasAnnotation = "deployment.kubernetes.io/desired-replicas"
    static let maxReplicasAnnotation = "deployment.kubernetes.io/max-replicas"
    /// Deployment annotations not copied to its replica sets (as kube's annotationsToSkip).
    static let annotationsNotCopied: Set<String> = [
        "kubectl.kubernetes.io/last-applied-configuration", revisionAnnotation, revisionHistoryAnnotation,
        desiredReplicasAnnotation, maxReplicasAnnotation, "deprecated.deployment.rollback.to",
    ]

    /// The `pod-template-hash` of a template: FNV-1a over its canonical JSON (keys sorted, so
    /// the same template hashes the same in every process) and the collision count, written
    /// with kube's safe alphabet (no vowels, no look-alike digits).
    static func templateHash(_ template: PodTemplateSpec?, collisionCount: Int32?) -> String {
        var hash: UInt32 = 2_166_136_261
        func mix(_ bytes: some Sequence<UInt8>) {
            for byte in bytes {
                hash ^= UInt32(byte)
                hash = hash &* 16_777_619
            }
        }
        mix(KubeJSON.serialize(canonical((try? KubeJSON.tree(template)) ?? .null)))
        if let collisionCount {
            withUnsafeBytes(of: collisionCount.littleEndian) { mix($0) }
        }
        let alphabet = Array("bcdfghjklmnpqrstvwxz2456789")
        return String(String(hash).unicodeScalars.map { alphabet[Int($0.value) % alphabet.count] })
    }

    /// A tree with every object's members sorted by key.
    static func canonical(_ value: JSONValue) -> JSONValue {
        switch value {
        case .object(let object):
            var sorted = JSONObject()
            for member in object.sorted(by: { $0.key < $1.key }) { sorted[member.key] = canonical(member.value) }
            return .object(sorted)
        case .array(let items): return .array(items.map(canonical))
        default: return value
        }
    }

    /// Whether two templates are the same apart from the `pod-template-hash` label.
    static func sameIgnoringHash(_ left: PodTemplateSpec?, _ right: PodTemplateSpec?) -> Bool {
        func stripped(_ template: PodTemplateSpec?) -> PodTemplateSpec? {
            guard var result = template else { return nil }
            result.metadata?.labels?[templateHashLabel] = nil
            if result.metadata?.labels?.isEmpty == true { result.metadata?.labels = nil }
            if result.metadata?.annotations?.isEmpty == true { result.metadata?.annotations = nil }
            // No metadata and empty metadata are the same template.
            if result.metadata == ObjectMeta() { result.metadata = nil }
            return result
        }
        return stripped(left) == stripped(right)
    }

    /// Revisions above this are ignored as unreadable (anyone who can write a replica set can
    /// write its annotation; the next revision must never overflow).
    static let largestRevision: Int64 = 1 << 40

    /// The revision a replica set records, 0 when absent or unreadable.
    static func revision(_ replicaSet: ReplicaSet) -> Int64 {
        readRevision(replicaSet.metadata.annotations?[revisionAnnotation])
    }

    static func readRevision(_ text: String?) -> Int64 {
        guard let value = text.flatMap({ Int64($0) }), value > 0, value <= largestRevision else { return 0 }
        return value
    }

    /// `maxSurge` and `maxUnavailable` against the replica count (surge rounds up, unavailable
    /// down; both 0 would never move, so unavailable becomes 1; unavailable at most the count).
    static func fenceposts(_ spec: DeploymentSpec) -> (surge: Int64, unavailable: Int64) {
        let replicas = spec.replicas ?? 1
        let rolling = spec.strategy?.rollingUpdate
        let surge = max(0, rolling?.maxSurge?.scaledValue(total: replicas, roundUp: true) ?? 0)
        var unavailable = max(0, rolling?.maxUnavailable?.scaledValue(total: replicas, roundUp: false) ?? 0)
        if surge == 0 && unavailable == 0 { unavailable = 1 }
        return (surge, min(unavailable, Int64(replicas)))
    }

    static func specReplicas(_ replicaSet: ReplicaSet) -> Int64 { Int64(replicaSet.spec?.replicas ?? 0) }
    static func availableReplicas(_ replicaSet: ReplicaSet) -> Int64 { Int64(replicaSet.status?.availableReplicas ?? 0) }

    /// The new replica set's count in a rolling update: up to the desired count, while all
    /// replica sets together stay within the count plus the surge.
    static func newReplicaCount(_ spec: DeploymentSpec, all: [ReplicaSet], newReplicas current: Int64) -> Int64 {
        let desired = Int64(spec.replicas ?? 1)
        if current >= desired { return desired }
        let total = all.reduce(0) { $0 + specReplicas($1) }
        let allowed = desired + fenceposts(spec).surge
        if total >= allowed { return current }
        return current + min(allowed - total, desired - current)
    }

    /// How the old replica sets shrink in a rolling update (oldest first): first their pods
    /// that are not available, then as many as keep `replicas - maxUnavailable` available.
    /// Returns the new counts by replica set name.
    static func oldReplicaCounts(_ spec: DeploymentSpec, new newReplicaSet: ReplicaSet?, old: [ReplicaSet]) -> [String: Int64] {
        var counts: [String: Int64] = [:]
        for replicaSet in old { counts[replicaSet.metadata.name ?? ""] = specReplicas(replicaSet) }
        let oldTotal = counts.values.reduce(0, +)
        guard oldTotal > 0 else { return counts }
        let desired = Int64(spec.replicas ?? 1)
        let minAvailable = desired - fenceposts(spec).unavailable
        let newCount = newReplicaSet.map(specReplicas) ?? 0
        let newUnavailable = max(0, newCount - (newReplicaSet.map(availableReplicas) ?? 0))
        let maxScaledDown = oldTotal + newCount - minAvailable - newUnavailable
        guard maxScaledDown > 0 else { return counts }
        let ordered = old.sorted { ($0.metadata.creationTimestamp?.seconds ?? 0, $0.metadata.name ?? "") < ($1.metadata.creationTimestamp?.seconds ?? 0, $1.metadata.name ?? "") }
        var scaledDown: Int64 = 0
        for replicaSet in ordered {
            guard scaledDown < maxScaledDown else { break }
            let name = replicaSet.metadata.name ?? ""
            let count = counts[name] ?? 0
            let unhealthy = count - min(count, availableReplicas(replicaSet))
            guard count > 0, unhealthy > 0 else { continue }
            let step = min(maxScaledDown - scaledDown, unhealthy)
            counts[name] = count - step
            scaledDown += step
        }
        // Then available pods, as long as enough stay available.
        let available = old.reduce(0) { $0 + min(availableReplicas($1), counts[$1.metadata.name ?? ""] ?? 0) } + (newReplicaSet.map(availableReplicas) ?? 0)
        guard available > minAvailable else { return counts }
        var budget = available - minAvailable
        for replicaSet in ordered where budget > 0 {
            let name = replicaSet.metadata.name ?? ""
            let count = counts[name] ?? 0
            guard count > 0 else { continue }
            let step = min(count, budget)
            counts[name] = count - step
            budget -= step
        }
        return counts
    }

    /// The deployment's status from its replica sets, with its Available and Progressing conditions.
    static func status(of deployment: Deployment, new newReplicaSet: ReplicaSet?, all: [ReplicaSet], now: Timestamp) -> DeploymentStatus {
        let spec = deployment.spec ?? DeploymentSpec()
        let previous = deployment.status ?? DeploymentStatus()
        var status = DeploymentStatus()
        status.observedGeneration = deployment.metadata.generation
        status.replicas = Int32(clamping: all.reduce(0) { $0 + Int64($1.status?.replicas ?? 0) })
        status.updatedReplicas = Int32(clamping: Int64(newReplicaSet?.status?.replicas ?? 0))
        status.readyReplicas = Int32(clamping: all.reduce(0) { $0 + Int64($1.status?.readyReplicas ?? 0) })
        status.availableReplicas = Int32(clamping: all.reduce(0) { $0 + availableReplicas($1) })
        status.unavailableReplicas = Int32(clamping: max(0, all.reduce(0) { $0 + specReplicas($1) } - Int64(status.availableReplicas ?? 0)))
        status.collisionCount = previous.collisionCount
        var conditions = previous.conditions ?? []
        let desired = Int64(spec.replicas ?? 1)
        let minAvailable = desired - (spec.strategy?.type == "Recreate" ? 0 : fenceposts(spec).unavailable)
        if Int64(status.availableReplicas ?? 0) >= minAvailable {
            set(&conditions, DeploymentCondition(type: "Available", status: .true, reason: "MinimumReplicasAvailable", message: "Deployment has minimum availability.", at: now))
        } else {
            set(&conditions, DeploymentCondition(type: "Available", status: .false, reason: "MinimumReplicasUnavailable", message: "Deployment does not have minimum availability.", at: now))
        }
        let name = newReplicaSet?.metadata.name ?? ""
        let progressing = conditions.first { $0.type == "Progressing" }
        if spec.paused == true {
            set(&conditions, DeploymentCondition(type: "Progressing", status: .unknown, reason: "DeploymentPaused", message: "Deployment is paused", at: now))
        } else if progressing?.reason == "DeploymentPaused" {
            set(&conditions, DeploymentCondition(type: "Progressing", status: .unknown, reason: "DeploymentResumed", message: "Deployment is resumed", at: now))
        } else if newReplicaSet != nil, Int64(status.updatedReplicas ?? 0) == desired, Int64(status.replicas ?? 0) == desired,
                  Int64(status.availableReplicas ?? 0) == desired {
            set(&conditions, DeploymentCondition(type: "Progressing", status: .true, reason: "NewReplicaSetAvailable",
                                                 message: "ReplicaSet \"\(name)\" has successfully progressed.", at: now))
        } else if newReplicaSet != nil, progressing == nil {
            set(&conditions, DeploymentCondition(type: "Progressing", status: .true, reason: "FoundNewReplicaSet", message: "Found new replica set \"\(name)\"", at: now))
        } else if newReplicaSet != nil, madeProgress(previous, status) {
            set(&conditions, DeploymentCondition(type: "Progressing", status: .true, reason: "ReplicaSetUpdated", message: "ReplicaSet \"\(name)\" is progressing.", at: now),
                refresh: true)
        } else if let progressing, progressing.reason != "NewReplicaSetAvailable", progressing.reason != "ProgressDeadlineExceeded",
                  let deadline = spec.progressDeadlineSeconds, let since = progressing.lastUpdateTime, since.seconds.addingReportingOverflow(Int64(deadline)).partialValue < now.seconds {
            set(&conditions, DeploymentCondition(type: "Progressing", status: .false, reason: "ProgressDeadlineExceeded",
                                                 message: "ReplicaSet \"\(name)\" has timed out progressing.", at: now))
        }
        let failure = all.compactMap { $0.status?.conditions?.first { $0.type == "ReplicaFailure" && $0.status == .true } }.first
        if let failure {
            set(&conditions, DeploymentCondition(type: "ReplicaFailure", status: .true, reason: failure.reason, message: failure.message, at: now))
        } else {
            conditions.removeAll { $0.type == "ReplicaFailure" }
        }
        status.conditions = conditions
        return status
    }

    /// More pods updated, ready or available, or fewer old ones, than the last status said.
    static func madeProgress(_ old: DeploymentStatus, _ new: DeploymentStatus) -> Bool {
        // In 64 bits: a status written by a client may hold any 32-bit values.
        let oldPods = Int64(old.replicas ?? 0) - Int64(old.updatedReplicas ?? 0)
        let newPods = Int64(new.replicas ?? 0) - Int64(new.updatedReplicas ?? 0)
        return (new.updatedReplicas ?? 0) > (old.updatedReplicas ?? 0) || (new.readyReplicas ?? 0) > (old.readyReplicas ?? 0)
            || (new.availableReplicas ?? 0) > (old.availableReplicas ?? 0) || newPods < oldPods
    }

    /// Replaces the condition of the same type; an unchanged status and reason keep their times
    /// (with `refresh`, the update time moves on: progress restarts the deadline).
    static func set(_ conditions: inout [DeploymentCondition], _ condition: DeploymentCondition, refresh: Bool = false) {
        if let index = conditions.firstIndex(where: { $0.type == condition.type }) {
            let existing = conditions[index]
            if existing.status == condition.status, existing.reason == condition.reason, existing.message == condition.message {
                if refresh { conditions[index].lastUpdateTime = condition.lastUpdateTime }
                return
            }
            var updated = condition
            if existing.status == condition.status { updated.lastTransitionTime = existing.lastTransitionTime }
            conditions[index] = updated
        } else {
            conditions.append(condition)
        }
    }
}
