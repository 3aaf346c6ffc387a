import Synchronization

/// Wakes one waiting loop early: `wait(upTo:)` returns after the duration or as soon as
/// `signal()` is called, whichever comes first; a signal that arrives while nobody waits is
/// kept for the next wait. Lets a loop sleep for seconds and still react at once, instead of
/// polling (every wake-up costs CPU on a board).
public final class WakeSignal: Sendable {
    private struct State {
        var pending = false
        var waiter: CheckedContinuation<Void, Never>?
        /// The wait ended before its waiting child installed itself: that child returns at once.
        var released = false
    }

    private let state = Mutex(State())

    public init() {}

    public func signal() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard let waiter = state.waiter else {
                state.pending = true
                return nil
            }
            state.waiter = nil
            return waiter
        }
        waiter?.resume()
    }

    /// Returns on a signal, after `duration`, or when the task is cancelled.
    public func wait(upTo duration: Duration) async {
        await withTaskCancellationHandler {
            await withTaskGroup(of: Bool.self) { group in
                group.addTask {
                    try? await Task.sleep(for: duration)
                    return false
                }
                group.addTask {
                    await self.signalled()
                    return true
                }
                let woken = await group.next() ?? false
                group.cancelAll()
                if !woken { release() }
            }
        } onCancel: {
            release()
        }
    }

    private func signalled() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { state -> Bool in
                if state.pending || state.released {
                    state.pending = false
                    state.released = false
                    return true
                }
                state.waiter = continuation
                return false
            }
            if now { continuation.resume() }
        }
    }

    /// Ends the waiting child without a signal.
    private func release() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard let waiter = state.waiter else {
                state.released = true
                return nil
            }
            state.waiter = nil
            return waiter
        }
        waiter?.resume()
    }
}
