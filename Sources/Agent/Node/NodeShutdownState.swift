import Synchronization
import SystemSupport

/// Whether the node is shutting down (a graceful node shutdown began), shared with the
/// heartbeat (Ready turns False: "node is shutting down") and pod admission (new pods are
/// refused), as the kubelet's shutdown manager does.
public final class NodeShutdownState: Sendable {
    private let state = Mutex(false)
    /// Signalled on every change, so the heartbeat reports it at once.
    public let changed = WakeSignal()

    public init() {}

    public var isShuttingDown: Bool { state.withLock { $0 } }

    public func set(_ shuttingDown: Bool) {
        let changed = state.withLock { state -> Bool in
            defer { state = shuttingDown }
            return state != shuttingDown
        }
        if changed { self.changed.signal() }
    }

    /// The kubelet's admission refusal while the node shuts down.
    public static let rejection = PodAdmission.Rejection(reason: "NodeShutdown", message: "Pod was rejected as the node is shutting down.")
}
