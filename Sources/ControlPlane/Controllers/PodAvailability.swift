import KubeModel

/// How workload controllers judge their pods: ready, available, ended, and which go first.
enum PodAvailability {
    enum Availability: Equatable {
        case available
        /// Ready, but not yet for `minReadySeconds`: available after this wait.
        case after(Duration)
    }

    static func isReady(_ pod: Pod) -> Bool {
        pod.status?.conditions?.contains { $0.type == "Ready" && $0.status == .true } ?? false
    }

    static func hasEnded(_ pod: Pod) -> Bool {
        pod.status?.phase == .succeeded || pod.status?.phase == .failed
    }

    /// Whether a Ready pod counts as available: Ready for `minReadySeconds` by its condition's
    /// time, or by when this server first saw it Ready (`readySince`).
    static func availability(_ pod: Pod, minReadySeconds: Int64, now: Timestamp, readySince: ContinuousClock.Instant?,
                             clock: ContinuousClock.Instant = .now) -> Availability {
        guard minReadySeconds > 0 else { return .available }
        var waits: [Duration] = []
        if let since = pod.status?.conditions?.first(where: { $0.type == "Ready" })?.lastTransitionTime, since.seconds <= now.seconds {
            let elapsed = now.seconds - since.seconds  // both checked: no overflow
            if elapsed >= minReadySeconds { return .available }
            waits.append(.seconds(minReadySeconds - elapsed))
        }
        if let readySince {
            let elapsed = clock - readySince
            if elapsed >= .seconds(minReadySeconds) { return .available }
            waits.append(.seconds(minReadySeconds) - elapsed)
        }
        return .after(waits.min() ?? .seconds(minReadySeconds))
    }

    /// The order in which surplus pods are deleted (kube's ActivePods ranking): unscheduled
    /// before scheduled, pending before running, not ready before ready, more restarts first,
    /// newer first.
    static func deletionOrder(_ pods: [Pod]) -> [Pod] {
        func phaseRank(_ pod: Pod) -> Int {
            switch pod.status?.phase {
            case .pending?, nil: return 0
            case .unknown?: return 1
            default: return 2
            }
        }
        func restarts(_ pod: Pod) -> Int {
            (pod.status?.containerStatuses ?? []).reduce(0) { $0 + Int($1.restartCount) }
        }
        return pods.sorted { left, right in
            let leftBound = left.spec?.nodeName != nil
            let rightBound = right.spec?.nodeName != nil
            if leftBound != rightBound { return !leftBound }
            if phaseRank(left) != phaseRank(right) { return phaseRank(left) < phaseRank(right) }
            if isReady(left) != isReady(right) { return !isReady(left) }
            if restarts(left) != restarts(right) { return restarts(left) > restarts(right) }
            let leftCreated = left.metadata.creationTimestamp?.seconds ?? 0
            let rightCreated = right.metadata.creationTimestamp?.seconds ?? 0
            if leftCreated != rightCreated { return leftCreated > rightCreated }
            return (left.metadata.name ?? "") > (right.metadata.name ?? "")
        }
    }
}
