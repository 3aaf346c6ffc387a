import Synchronization

/// Set once, read from any thread: how an async caller tells blocking work it runs elsewhere
/// (a ``DedicatedThread``) to stop.
public final class CancellationFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    public init() {}
    public func set() { flag.store(true, ordering: .relaxed) }
    public var isSet: Bool { flag.load(ordering: .relaxed) }
}
