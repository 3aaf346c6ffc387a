import Synchronization

/// The node's pressure conditions as the eviction manager last decided them, shared with the
/// heartbeat (NodeStatus conditions) and pod admission (no new pods under pressure).
public final class NodePressure: Sendable {
    private let state = Mutex<Set<String>>([])

    public init(_ conditions: Set<String> = []) { state.withLock { $0 = conditions } }

    /// "MemoryPressure", "DiskPressure", "PIDPressure" — those that are true now.
    public var conditions: Set<String> { state.withLock { $0 } }

    public func set(_ conditions: Set<String>) { state.withLock { $0 = conditions } }
}
