import ImageStore
import Logging
import ServiceLifecycle

/// Keeps the pre-load directory imported: ``preloadOnce()`` runs before the pods start (a board
/// without network runs its pods from there), then the directory is looked at again every
/// `interval` for archives added or changed while the agent runs.
public struct ImagePreloadService: Service {
    let preloader: ImagePreloader
    let interval: Duration
    let logger: Logger

    public init(preloader: ImagePreloader, interval: Duration = .seconds(60), logger: Logger) {
        self.preloader = preloader
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            guard !Task.isShuttingDownGracefully && !Task.isCancelled else { return }
            await preloadOnce(afterStart: false)
        }
    }

    /// One pass; each import and failure is logged once (an unchanged failing file is tried
    /// again only after a start).
    public func preloadOnce(afterStart: Bool = true) async {
        for outcome in await preloader.run(afterStart: afterStart) {
            switch outcome {
            case let .imported(file, names):
                logger.info("pre-loaded images", metadata: ["file": "\(preloader.directory)/\(file)", "images": "\(names.joined(separator: ","))"])
            case let .failed(file, error):
                logger.error("cannot pre-load images", metadata: ["file": "\(preloader.directory)/\(file)", "error": "\(error)"])
            case let .removed(file):
                logger.info("pre-load archive removed; its images are no longer pinned", metadata: ["file": "\(preloader.directory)/\(file)"])
            case let .refused(file, reason):
                logger.error("pre-load archive refused", metadata: ["file": "\(preloader.directory)/\(file)", "reason": "\(reason)"])
            case .unchanged, .stillFailing, .settling:
                continue
            }
        }
    }
}
