import Synchronization

/// Counters the heartbeat loop keeps and the endpoint reports.
public final class HeartbeatCounters: Sendable {
    private let beats = Atomic<Int>(0)
    private let failures = Atomic<Int>(0)

    public init() {}

    func recordBeat() { beats.add(1, ordering: .relaxed) }
    func recordFailure() { failures.add(1, ordering: .relaxed) }

    func snapshot() -> (beats: Int, failures: Int) {
        (beats.load(ordering: .relaxed), failures.load(ordering: .relaxed))
    }
}
