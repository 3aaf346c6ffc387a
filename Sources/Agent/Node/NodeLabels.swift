import Synchronization

/// The node's labels as the API last returned them (an administrator may have added some with
/// `kubectl label`), for the nodeSelector check of pod admission. nil until the API answered.
public final class NodeLabels: Sendable {
    private let state = Mutex<[String: String]?>(nil)

    public init(_ labels: [String: String]? = nil) { state.withLock { $0 = labels } }

    public var current: [String: String]? { state.withLock { $0 } }

    public func set(_ labels: [String: String]?) {
        guard let labels else { return }
        state.withLock { $0 = labels }
    }
}
