import NIOPosix

/// Where a worker runs what blocks a thread: the host's blocking pool, never Swift's
/// cooperative threads (one per core, shared with the status writer, heartbeat and API client).
extension PodWorker {
    /// Runs `body` on the host's blocking pool (never on a cooperative thread).
    func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await host.blockingPool.runIfActive(body)
    }

    /// Like ``blocking(_:)``, but runs even when the calling task is cancelled: releasing what
    /// a pod holds (runs, network, cgroups, files) is never skipped because the sync that
    /// asked for it was cut short.
    func blockingToTheEnd<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            host.blockingPool.submit { state in
                guard case .active = state else { return continuation.resume(throwing: CancellationError()) }
                continuation.resume(with: Result(catching: body))
            }
        }
    }
}
