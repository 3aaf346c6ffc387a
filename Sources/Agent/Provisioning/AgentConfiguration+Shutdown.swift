/// One entry of `shutdownGracePeriodByPodPriority` (the kubelet's): pods from `priority` up to
/// the next entry's get `shutdownGracePeriodSeconds`.
public struct ShutdownGracePeriodByPodPriority: Codable, Sendable, Hashable {
    public var priority: Int32
    public var shutdownGracePeriodSeconds: Int64

    public init(priority: Int32, shutdownGracePeriodSeconds: Int64) {
        self.priority = priority
        self.shutdownGracePeriodSeconds = shutdownGracePeriodSeconds
    }
}

/// A graceful-shutdown setting that cannot be used, naming the field.
public struct ShutdownSettingsError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

extension AgentConfiguration {
    /// The graceful node shutdown from `shutdownGracePeriod`/`shutdownGracePeriodCriticalPods`
    /// or `shutdownGracePeriodByPodPriority`, checked as the kubelet checks them (and bounded:
    /// at most an hour each, 32 priority groups).
    public func shutdownPlan() throws(ShutdownSettingsError) -> NodeShutdownPlan {
        func seconds(_ text: String?, _ field: String) throws(ShutdownSettingsError) -> Int64 {
            guard let text else { return 0 }
            guard let duration = EvictionSettings.parseDuration(text), duration >= .zero, duration <= .seconds(NodeShutdownPlan.maximumSeconds) else {
                throw ShutdownSettingsError("\(field): \"\(text)\" is not a duration from 0 (off) to 1h (like 30s, 2m)")
            }
            guard duration.components.attoseconds == 0 else {
                throw ShutdownSettingsError("\(field): \"\(text)\" must be whole seconds")
            }
            return duration.components.seconds
        }
        let total = try seconds(shutdownGracePeriod, "shutdownGracePeriod")
        let critical = try seconds(shutdownGracePeriodCriticalPods, "shutdownGracePeriodCriticalPods")
        guard let byPriority = shutdownGracePeriodByPodPriority else {
            guard critical <= total else {
                throw ShutdownSettingsError("shutdownGracePeriodCriticalPods (\(critical)s) must not be more than shutdownGracePeriod (\(total)s)")
            }
            return NodeShutdownPlan(gracePeriod: total, criticalPods: critical)
        }
        guard total == 0, critical == 0 else {
            throw ShutdownSettingsError("shutdownGracePeriodByPodPriority and shutdownGracePeriod cannot be given together")
        }
        guard byPriority.count <= 32 else {
            throw ShutdownSettingsError("shutdownGracePeriodByPodPriority: \(byPriority.count) entries, at most 32")
        }
        var seen: Set<Int32> = []
        for (index, entry) in byPriority.enumerated() {
            guard (0...NodeShutdownPlan.maximumSeconds).contains(entry.shutdownGracePeriodSeconds) else {
                throw ShutdownSettingsError("shutdownGracePeriodByPodPriority[\(index)].shutdownGracePeriodSeconds (\(entry.shutdownGracePeriodSeconds)) must be 0 to \(NodeShutdownPlan.maximumSeconds)")
            }
            guard seen.insert(entry.priority).inserted else {
                throw ShutdownSettingsError("shutdownGracePeriodByPodPriority[\(index)].priority (\(entry.priority)) is given twice")
            }
        }
        return NodeShutdownPlan(groups: byPriority.map { NodeShutdownPlan.Group(priority: $0.priority, gracePeriodSeconds: $0.shutdownGracePeriodSeconds) })
    }
}
