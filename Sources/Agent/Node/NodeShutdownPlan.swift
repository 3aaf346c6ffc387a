import KubeModel

/// How a graceful node shutdown stops the pods (the kubelet's GracefulNodeShutdown): groups by
/// pod priority, lowest first; each group's pods are stopped together and get the group's
/// seconds (or their own grace period, when shorter) before the next group starts.
public struct NodeShutdownPlan: Sendable, Equatable {
    public struct Group: Sendable, Equatable {
        /// The lowest pod priority in the group (up to the next group's).
        public var priority: Int32
        public var gracePeriodSeconds: Int64

        public init(priority: Int32, gracePeriodSeconds: Int64) {
            self.priority = priority
            self.gracePeriodSeconds = gracePeriodSeconds
        }
    }

    /// Ascending by priority.
    public let groups: [Group]

    /// The priority from which a pod is critical (`system-cluster-critical`).
    public static let systemCriticalPriority: Int32 = 2_000_000_000
    /// What `shutdownGracePeriod` and each group may be at most: logind holds a shutdown back
    /// for the whole of it, and sums stay far from overflow.
    public static let maximumSeconds: Int64 = 3600

    public init(groups: [Group]) {
        self.groups = groups.sorted { $0.priority < $1.priority }
    }

    /// The kubelet's two-group form: non-critical pods get `gracePeriod - criticalPods` seconds,
    /// then critical ones (priority ≥ system-cluster-critical) `criticalPods`. Empty when
    /// `gracePeriod` is 0 (graceful shutdown off).
    public init(gracePeriod: Int64, criticalPods: Int64) {
        guard gracePeriod > 0, criticalPods >= 0, criticalPods <= gracePeriod else {
            self.init(groups: [])
            return
        }
        self.init(groups: [Group(priority: 0, gracePeriodSeconds: gracePeriod - criticalPods),
                           Group(priority: Self.systemCriticalPriority, gracePeriodSeconds: criticalPods)])
    }

    /// Off: no group has any time.
    public var isEnabled: Bool { totalSeconds > 0 }

    /// How long the whole shutdown may take (what logind's delay lock must cover).
    public var totalSeconds: Int64 { groups.reduce(0) { $0 + $1.gracePeriodSeconds } }

    /// The index of the group a pod of `priority` belongs to: the highest group at or below it;
    /// pods below the lowest group go to it.
    public func groupIndex(priority: Int32) -> Int {
        groups.lastIndex { $0.priority <= priority } ?? 0
    }

    /// `pods` by group, in the plan's order.
    public func assign(_ pods: [Pod]) -> [[Pod]] {
        var assigned = Array(repeating: [Pod](), count: groups.count)
        guard !groups.isEmpty else { return [] }
        for pod in pods { assigned[groupIndex(priority: pod.spec?.priority ?? 0)].append(pod) }
        return assigned
    }
}
