import Synchronization
import SystemSupport

/// Ends one ``ProbeWorker`` at once, also in the middle of a try (a slow httpGet or exec).
final class ProbeStop: Sendable {
    private let stopped = Mutex(false)
    private let signal = WakeSignal()

    func stop() {
        stopped.withLock { $0 = true }
        signal.signal()
    }

    var isStopped: Bool { stopped.withLock { $0 } }

    /// Runs `worker` until it ends by itself, `stop()` is called or the task is cancelled.
    func run(_ worker: ProbeWorker) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await worker.run() }
            group.addTask {
                while !self.isStopped, !Task.isCancelled { await self.signal.wait(upTo: .seconds(3600)) }
            }
            await group.next()
            group.cancelAll()
        }
    }
}
