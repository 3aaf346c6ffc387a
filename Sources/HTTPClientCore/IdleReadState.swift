import Synchronization

/// Set when the idle-read timer closed a connection (the server stopped sending).
public final class IdleReadState: Sendable {
    private let flag = Atomic<Bool>(false)
    public var fired: Bool { flag.load(ordering: .relaxed) }
    func fire() { flag.store(true, ordering: .relaxed) }
}
