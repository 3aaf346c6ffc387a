/// The eviction manager's memory between observations, as the kubelet keeps it: when each
/// threshold was first seen crossed (soft thresholds act after their grace period), which are
/// met (released only once the signal is back above threshold + minimum reclaim), and when
/// each pressure condition was last seen (it stays for the transition period).
public struct EvictionThresholdTracker: Sendable {
    public struct Evaluation: Sendable, Equatable {
        /// Thresholds to act on now (hard ones crossed, soft ones crossed for their grace period).
        public var actionable: [EvictionThreshold]
        /// Node conditions to report: MemoryPressure, DiskPressure, PIDPressure.
        public var conditions: Set<String>
    }

    public let settings: EvictionSettings
    var firstObserved: [EvictionThreshold: ContinuousClock.Instant] = [:]
    var met: Set<EvictionThreshold> = []
    var conditionLastSeen: [String: ContinuousClock.Instant] = [:]

    public init(settings: EvictionSettings) { self.settings = settings }

    /// Thresholds crossed in `observation` (a met one until it has reclaimed its minimum).
    public func crossed(_ observation: NodeResourceObservation) -> [EvictionThreshold] {
        settings.thresholds.filter { threshold in
            guard let reading = observation[threshold.signal] else { return false }
            let level = met.contains(threshold) ? threshold.releaseLevel(capacity: reading.capacity) : threshold.limit(capacity: reading.capacity)
            return reading.available < level
        }
    }

    public mutating func update(_ observation: NodeResourceObservation, now: ContinuousClock.Instant) -> Evaluation {
        let crossed = crossed(observation)
        var seen: [EvictionThreshold: ContinuousClock.Instant] = [:]
        for threshold in crossed { seen[threshold] = firstObserved[threshold] ?? now }
        firstObserved = seen
        for threshold in crossed { conditionLastSeen[threshold.signal.condition] = now }
        conditionLastSeen = conditionLastSeen.filter { now - $0.value < settings.pressureTransitionPeriod || $0.value == now }
        let actionable = crossed.filter { threshold in
            guard let grace = threshold.gracePeriod else { return true }
            return now - (seen[threshold] ?? now) >= grace
        }
        met = Set(actionable)
        return Evaluation(actionable: actionable.sorted { ($0.signal, $0.isHard ? 0 : 1) < ($1.signal, $1.isHard ? 0 : 1) },
                          conditions: Set(conditionLastSeen.keys))
    }
}
