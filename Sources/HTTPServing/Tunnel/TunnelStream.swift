import Synchronization

/// One byte stream inside a ``TunnelMux``, with per-stream credit: a sender sends only as many
/// bytes as the receiver has room for (``TunnelMux/window``), and the receiver grants more as
/// its consumer reads, so one slow stream never holds up the others or fills memory.
public final class TunnelStream: Sendable {
    public let id: UInt32
    let mux: TunnelMux
    private let state: Mutex<State>

    struct State {
        var inbound: [[UInt8]] = []
        /// Bytes the peer sent that were not granted back yet (what it may still have in flight).
        var outstanding = 0
        /// Bytes read by the consumer, not yet granted back to the peer.
        var consumed = 0
        var lastRead = 0
        /// Granted and not yet sent; whether a task is sending grants.
        var grantPending = 0
        var grantSending = false
        var peerClosed = false
        var sentClose = false
        var failure: String?
        var reader: CheckedContinuation<[UInt8]?, any Error>?
        var credit = TunnelMux.window
        var writer: CheckedContinuation<Int, any Error>?
        var writerWants = 0
        var opened: Bool
        var openWaiter: CheckedContinuation<Void, any Error>?
        var finished = false
    }

    /// Why a stream failed: reset by either side, or the tunnel ended.
    public struct Reset: Error, CustomStringConvertible, Sendable {
        public var description: String
        public init(description: String) { self.description = description }
    }

    init(id: UInt32, mux: TunnelMux, opened: Bool) {
        self.id = id
        self.mux = mux
        state = Mutex(State(opened: opened))
    }

    // MARK: The consumer's side

    /// The next bytes the peer sent, nil once it closed its end. Reading grants the peer credit
    /// for what the previous read returned (the consumer has dealt with it by now).
    public func read() async throws -> [UInt8]? {
        let startSender: Bool = state.withLock { state in
            state.consumed += state.lastRead
            state.lastRead = 0
            guard state.consumed >= TunnelMux.window / 4 || (state.inbound.isEmpty && state.consumed > 0) else { return false }
            state.outstanding -= state.consumed
            state.grantPending += state.consumed
            state.consumed = 0
            guard !state.grantSending else { return false }
            state.grantSending = true
            return true
        }
        if startSender, !mux.spawn({ [self] in await self.sendGrants() }) { state.withLock { $0.grantSending = false } }
        return try await withCheckedThrowingContinuation { continuation in
            let result: Result<[UInt8]?, any Error>? = state.withLock { state in
                if !state.inbound.isEmpty {
                    let bytes = state.inbound.removeFirst()
                    state.lastRead = bytes.count
                    return .success(bytes)
                }
                if let failure = state.failure { return .failure(Reset(description: failure)) }
                if state.peerClosed { return .success(nil) }
                if state.reader != nil { return .failure(Reset(description: "a tunnel stream was read by two readers at once")) }
                state.reader = continuation
                return nil
            }
            if let result { continuation.resume(with: result) }
        }
    }

    /// Sends what the consumer granted, one credit message at a time (grants made meanwhile
    /// go in the next): a peer sending one byte per message, or not reading, gets no more
    /// than one waiting credit message per stream.
    private func sendGrants() async {
        while true {
            let grant: Int = state.withLock { state in
                defer { state.grantPending = 0 }
                if state.grantPending == 0 || state.failure != nil { state.grantSending = false }
                return state.failure == nil ? state.grantPending : 0
            }
            guard grant > 0 else { return }
            do { try await mux.send(.credit(id, UInt32(grant))) } catch {
                state.withLock { $0.grantSending = false }
                return
            }
        }
    }

    /// Sends `bytes`, waiting for credit as needed.
    public func write(_ bytes: [UInt8]) async throws {
        var offset = 0
        while offset < bytes.count {
            let allowed = try await takeCredit(upTo: min(TunnelMessage.maximumData, bytes.count - offset))
            try await mux.send(.data(id, Array(bytes[offset..<offset + allowed])))
            offset += allowed
        }
    }

    /// Ends this side's bytes (the peer's read then returns nil); reading goes on.
    public func closeWrite() async {
        let send: Bool = state.withLock { state in
            guard !state.sentClose, state.failure == nil else { return false }
            state.sentClose = true
            return true
        }
        if send { try? await mux.send(.close(id)) }
        removeIfDone()
    }

    /// Ends the stream at once (the peer sees a reset unless both sides had closed).
    public func reset(_ reason: String) {
        let closedBothWays = state.withLock { $0.peerClosed && $0.sentClose }
        let notify = fail(reason)
        if notify, !closedBothWays { mux.sendLater(.reset(id, reason)) }
    }

    /// The consumer is done: whatever is not closed on both sides is reset.
    public func finish() {
        let done: Bool = state.withLock { state in state.peerClosed && state.sentClose && state.inbound.isEmpty }
        if done { removeIfDone() } else { reset("the stream ended") }
    }

    /// For the opener: waits until the peer connected the stream (or refused it).
    func waitOpened() async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let result: Result<Void, any Error>? = state.withLock { state in
                if let failure = state.failure { return .failure(Reset(description: failure)) }
                if state.opened { return .success(()) }
                state.openWaiter = continuation
                return nil
            }
            if let result { continuation.resume(with: result) }
        }
    }

    /// For the acceptor: the local connection is made; tells the opener.
    public func confirmOpened() async throws {
        try await mux.send(.opened(id))
    }

    private func takeCredit(upTo wanted: Int) async throws -> Int {
        try await withCheckedThrowingContinuation { continuation in
            let result: Result<Int, any Error>? = state.withLock { state in
                if let failure = state.failure { return .failure(Reset(description: failure)) }
                if state.sentClose { return .failure(Reset(description: "a write after the stream was closed")) }
                if state.credit > 0 {
                    let allowed = min(wanted, state.credit)
                    state.credit -= allowed
                    return .success(allowed)
                }
                if state.writer != nil { return .failure(Reset(description: "a tunnel stream was written by two writers at once")) }
                state.writer = continuation
                state.writerWants = wanted
                return nil
            }
            if let result { continuation.resume(with: result) }
        }
    }

    // MARK: The mux's side

    /// Bytes from the peer; false when they exceed the credit it was given (the stream is then reset).
    func received(_ bytes: [UInt8]) -> Bool {
        let outcome: (CheckedContinuation<[UInt8]?, any Error>?, Bool) = state.withLock { state in
            guard state.failure == nil else { return (nil, true) }
            guard !state.peerClosed, state.outstanding + bytes.count <= TunnelMux.window else { return (nil, false) }
            state.outstanding += bytes.count
            if let reader = state.reader {
                state.reader = nil
                state.lastRead = bytes.count
                return (reader, true)
            }
            state.inbound.append(bytes)
            return (nil, true)
        }
        outcome.0?.resume(returning: bytes)
        return outcome.1
    }

    func granted(_ count: UInt32) {
        let resume: (CheckedContinuation<Int, any Error>, Int)? = state.withLock { state in
            // Capped: a peer granting more than a window cannot make the counter overflow.
            state.credit = min(state.credit + Int(count), TunnelMux.window)
            guard let writer = state.writer, state.credit > 0 else { return nil }
            state.writer = nil
            let allowed = min(state.writerWants, state.credit)
            state.credit -= allowed
            return (writer, allowed)
        }
        if let (writer, allowed) = resume { writer.resume(returning: allowed) }
    }

    func peerClosedWrite() {
        let reader: CheckedContinuation<[UInt8]?, any Error>? = state.withLock { state in
            state.peerClosed = true
            defer { state.reader = nil }
            return state.inbound.isEmpty ? state.reader : nil
        }
        reader?.resume(returning: nil)
        removeIfDone()
    }

    func peerOpened() {
        let waiter: CheckedContinuation<Void, any Error>? = state.withLock { state in
            state.opened = true
            defer { state.openWaiter = nil }
            return state.openWaiter
        }
        waiter?.resume()
    }

    /// Fails every waiter with `reason`; true when the stream was not failed before.
    @discardableResult
    func fail(_ reason: String) -> Bool {
        let waiters: (CheckedContinuation<[UInt8]?, any Error>?, CheckedContinuation<Int, any Error>?, CheckedContinuation<Void, any Error>?)? = state.withLock { state in
            guard state.failure == nil else { return nil }
            state.failure = reason
            state.inbound = []
            defer { (state.reader, state.writer, state.openWaiter) = (nil, nil, nil) }
            return (state.reader, state.writer, state.openWaiter)
        }
        guard let waiters else { return false }
        let error = Reset(description: reason)
        waiters.0?.resume(throwing: error)
        waiters.1?.resume(throwing: error)
        waiters.2?.resume(throwing: error)
        mux.remove(self)
        return true
    }

    private func removeIfDone() {
        let done = state.withLock { $0.peerClosed && $0.sentClose }
        if done { mux.remove(self) }
    }
}
