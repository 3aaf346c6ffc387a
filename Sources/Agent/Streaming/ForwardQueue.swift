import Synchronization

/// A client's bytes for one forwarded connection, in order, bounded: ``push(_:waitingAtMost:)``
/// waits while more than `limit` bytes are unread; the reader takes all that is queued at once.
final class ForwardQueue: Sendable {
    private let limit: Int
    private let state = Mutex(State())

    struct State {
        var chunks: [[UInt8]] = []
        var bytes = 0
        var finished = false
        var closed = false
        var reader: CheckedContinuation<[UInt8]?, Never>?
        var writer: CheckedContinuation<Void, Never>?
        var timedOut = false
    }

    init(limit: Int) { self.limit = limit }

    /// Bookkeeping a queued chunk costs beyond its bytes (a client sending 1-byte frames
    /// fills the limit with as much memory as one sending large ones).
    static let chunkOverhead = 64

    /// Queues `bytes`; while more than `limit` wait, waits for the reader up to `maximum`.
    /// False when the wait ran out (the reader is stuck); true otherwise.
    func push(_ bytes: [UInt8], waitingAtMost maximum: Duration) async -> Bool {
        let reader = state.withLock { state -> CheckedContinuation<[UInt8]?, Never>? in
            guard !state.closed, !state.finished else { return nil }
            if let reader = state.reader {
                state.reader = nil
                return reader
            }
            state.chunks.append(bytes)
            state.bytes += bytes.count + Self.chunkOverhead
            return nil
        }
        if let reader {
            reader.resume(returning: bytes)
            return true
        }
        guard state.withLock({ $0.bytes > limit && !$0.closed }) else { return true }
        // The reader catches up, or the queue is closed as stuck when `maximum` runs out.
        await withTaskGroup(of: Void.self) { group in
            group.addTask { [self] in
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let wait = state.withLock { state in
                        guard state.bytes > limit, !state.closed else { return false }
                        state.writer = continuation
                        return true
                    }
                    if !wait { continuation.resume() }
                }
            }
            group.addTask { [self] in
                guard (try? await Task.sleep(for: maximum)) != nil else { return }
                let stuck = state.withLock { state in
                    guard state.bytes > limit, !state.closed else { return false }
                    state.timedOut = true
                    return true
                }
                if stuck { close() }
            }
            await group.next()
            group.cancelAll()
        }
        return state.withLock { !$0.timedOut }
    }

    /// The client's FIN: the reader gets nil after what is queued.
    func finish() {
        let reader = state.withLock { state -> CheckedContinuation<[UInt8]?, Never>? in
            state.finished = true
            defer { state.reader = nil }
            return state.chunks.isEmpty ? state.reader : nil
        }
        reader?.resume(returning: nil)
    }

    /// Drops what is queued; both sides return at once from now on.
    func close() {
        let (reader, writer) = state.withLock { state in
            state.closed = true
            state.chunks = []
            state.bytes = 0
            defer { (state.reader, state.writer) = (nil, nil) }
            return (state.reader, state.writer)
        }
        reader?.resume(returning: nil)
        writer?.resume()
    }

    /// The next bytes, nil once finished or closed.
    func pop() async -> [UInt8]? {
        await withCheckedContinuation { (continuation: CheckedContinuation<[UInt8]?, Never>) in
            let (result, writer) = state.withLock { state -> ([UInt8]??, CheckedContinuation<Void, Never>?) in
                if state.closed { return (.some(nil), nil) }
                if !state.chunks.isEmpty {
                    // Everything queued at once (one write into the pod, not one per frame).
                    var bytes = state.chunks[0]
                    if state.chunks.count > 1 {
                        bytes.reserveCapacity(state.bytes)
                        for chunk in state.chunks.dropFirst() { bytes += chunk }
                    }
                    state.bytes = 0
                    state.chunks = []
                    // Room again: a waiting writer goes on.
                    let writer = state.writer
                    state.writer = nil
                    return (.some(bytes), writer)
                }
                if state.finished { return (.some(nil), nil) }
                state.reader = continuation
                return (nil, nil)
            }
            writer?.resume()
            if let result { continuation.resume(returning: result) }
        }
    }
}
