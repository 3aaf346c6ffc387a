import ImageStore
import Logging
import ServiceLifecycle

/// The kubelet's image garbage collection: every few minutes, when the image file system is
/// fuller than the high threshold, unused images go, least recently used first, until it is at
/// most the low threshold. Images a pod uses are never removed.
public struct ImageGarbageCollectionService: Service {
    let store: ImageStore
    let highPercent: Int
    let lowPercent: Int
    let interval: Duration
    let logger: Logger

    public init(store: ImageStore, highPercent: Int, lowPercent: Int, interval: Duration = .seconds(300), logger: Logger) {
        self.store = store
        self.highPercent = highPercent
        self.lowPercent = lowPercent
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            collectOnce()
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }

    /// One pass; errors are logged, never fatal (the next pass tries again).
    public func collectOnce() {
        do {
            let report = try store.collectGarbage(highPercent: highPercent, lowPercent: lowPercent)
            guard !report.removedImages.isEmpty || report.removedLayers > 0 else { return }
            logger.info("image garbage collection", metadata: [
                "removed": "\(report.removedImages.map(\.short).joined(separator: ","))",
                "freedBytes": "\(report.freedBytes)",
            ])
        } catch {
            logger.warning("image garbage collection failed", metadata: ["error": "\(error)"])
        }
    }
}
