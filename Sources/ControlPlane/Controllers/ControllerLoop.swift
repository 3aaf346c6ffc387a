import KubeModel
import ServiceLifecycle
import Synchronization

/// Runs a controller's passes over what is stored: one at start, one after changes that
/// `isRelevant` accepts (changes during a pass make one more pass, not one per change), and
/// one every `resync`, or sooner when a pass says when it is due again. Everything a pass
/// needs is read from the store, so a restarted server carries on where it stopped.
struct ControllerLoop: Sendable {
    let store: ObjectStore
    let resources: [ResourceType]
    let resync: Duration
    /// The least time between two passes: a stream of changes (a client or node writing in a
    /// loop) makes one pass per interval, not one per change.
    var minimumInterval: Duration = .milliseconds(200)

    func run(isRelevant: @escaping @Sendable (Change) -> Bool, pass: @escaping @Sendable () -> Duration?) async throws {
        let (signals, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let due = DueTime()
        // Subscribed before the first pass, so no change between its reads and the watch is missed.
        let subscriptions = try resources.map { try store.watch($0, namespace: nil, after: store.currentRevision) }
        continuation.yield()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, resource) in resources.enumerated() {
                let first = subscriptions[index]
                group.addTask { [store] in
                    var subscription = first
                    while true {
                        for await change in subscription.changes.cancelOnGracefulShutdown() where isRelevant(change) { continuation.yield() }
                        store.cancel(subscription)
                        if Task.isCancelled || Task.isShuttingDownGracefully { return }
                        // The feed dropped this watcher (it fell behind): watch again and look at everything.
                        subscription = try store.watch(resource, namespace: nil, after: store.currentRevision)
                        continuation.yield()
                    }
                }
            }
            group.addTask {
                // Wakes the pass when its time is due (at most once a second).
                while !Task.isShuttingDownGracefully && !Task.isCancelled {
                    try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(1)) }
                    if ContinuousClock.now >= due.instant.withLock({ $0 }) { continuation.yield() }
                }
            }
            group.addTask { [resync, minimumInterval] in
                for await _ in signals.cancelOnGracefulShutdown() {
                    let next = min(pass() ?? resync, resync)
                    due.instant.withLock { $0 = ContinuousClock.now + next }
                    try? await Task.sleep(for: minimumInterval)
                }
            }
            try? await gracefulShutdown()
            continuation.finish()
            group.cancelAll()
        }
    }
}

/// When the next pass is due.
private final class DueTime: Sendable {
    let instant = Mutex(ContinuousClock.now)
}
