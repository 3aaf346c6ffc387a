import Synchronization

/// One caller's wait for a shared pull: resumed exactly once, by the pull's end or by the
/// caller's cancellation, whichever comes first.
final class PullWaiter: Sendable {
    private struct State {
        var continuation: CheckedContinuation<PullResult, any Error>?
        var outcome: Result<PullResult, any Error>?
    }

    private let state = Mutex(State())

    /// Where the caller waits (resumed at once when the outcome is already known).
    func wait(_ continuation: CheckedContinuation<PullResult, any Error>) {
        let known = state.withLock { state -> Result<PullResult, any Error>? in
            if let outcome = state.outcome { return outcome }
            state.continuation = continuation
            return nil
        }
        if let known { continuation.resume(with: known) }
    }

    /// Settles the wait with `outcome`; true for the first call only.
    func finish(_ outcome: Result<PullResult, any Error>) -> Bool {
        let (first, continuation) = state.withLock { state -> (Bool, CheckedContinuation<PullResult, any Error>?) in
            guard state.outcome == nil else { return (false, nil) }
            state.outcome = outcome
            defer { state.continuation = nil }
            return (true, state.continuation)
        }
        continuation?.resume(with: outcome)
        return first
    }
}
