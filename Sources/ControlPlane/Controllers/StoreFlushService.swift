import Logging
import ServiceLifecycle

/// Writes the store's reconstructible changes (Lease renewals, Node heartbeats) kept in memory:
/// every `interval`, and once more when the server stops. Listed first in the server's group, it
/// is the last service to stop, after the API has stopped taking writes.
public struct StoreFlushService: Service {
    let store: ObjectStore
    let interval: Duration
    let logger: Logger

    public init(store: ObjectStore, interval: Duration, logger: Logger) {
        self.store = store
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            flushOnce()
        }
    }

    /// One flush; a failure is logged and the changes stay for the next.
    public func flushOnce() {
        do {
            let written = try store.flush()
            if written > 0 { logger.debug("wrote \(written) lease renewals and node heartbeats") }
        } catch {
            logger.warning("writing lease renewals and node heartbeats failed (kept in memory, tried again): \(error)")
        }
    }
}
