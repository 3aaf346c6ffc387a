import Synchronization

/// Many byte streams over one WebSocket (the agent tunnel). The opener (the server) opens
/// streams; the acceptor (the agent) connects each one somewhere and confirms it. Each stream
/// has its own credit (``window``). Both sides send a keepalive while idle and drop a connection
/// that stays silent for ``silenceLimit`` (a NAT that forgot the connection, a board that lost
/// power). Stream work runs in ``run(accept:)``'s task group, so it ends with the tunnel.
public final class TunnelMux: Sendable {
    public enum Role: Sendable { case opener, acceptor }

    /// Where iotkube-server takes tunnels (a WebSocket upgrade with ``subprotocol``).
    public static let path = "/iotkube/v1/tunnel"
    public static let subprotocol = "tunnel.v1.iotkube.io"

    /// Bytes a sender may have in flight on one stream.
    public static let window = 256 << 10
    /// Streams open at once on one tunnel.
    public static let maximumStreams = 64
    static let keepaliveInterval = Duration.seconds(15)
    static let silenceLimit = Duration.seconds(45)

    public let socket: WebSocketStream
    public let role: Role
    private let state: Mutex<State>
    private let jobs: AsyncStream<@Sendable () async -> Void>
    private let jobInput: AsyncStream<@Sendable () async -> Void>.Continuation

    struct State {
        var streams: [UInt32: TunnelStream] = [:]
        var nextID: UInt32 = 1
        var ended: String?
        var lastReceived = ContinuousClock.now
    }

    public init(socket: WebSocketStream, role: Role) {
        self.socket = socket
        self.role = role
        state = Mutex(State())
        (jobs, jobInput) = AsyncStream.makeStream()
    }

    /// Why the tunnel ended (nil while it runs).
    public var endReason: String? { state.withLock { $0.ended } }

    /// Streams open now.
    public var streamCount: Int { state.withLock { $0.streams.count } }

    /// Runs the tunnel until the connection ends (or the task is cancelled); returns why it
    /// ended. The acceptor hands each new stream to `accept`, which connects it
    /// (``TunnelStream/confirmOpened()``) or resets it.
    public func run(accept: (@Sendable (TunnelStream) async -> Void)? = nil) async -> String {
        let socket = self.socket
        await withTaskCancellationHandler {
            // Discarding: a tunnel that lives for months runs millions of short jobs.
            await withDiscardingTaskGroup { group in
                group.addTask { await self.readMessages(accept: accept) }
                group.addTask { await self.keepAlive() }
                for await job in jobs { group.addTask(operation: job) }
                group.cancelAll()
            }
        } onCancel: {
            socket.connection.close()
        }
        return endReason ?? "the tunnel was stopped"
    }

    /// Opens a stream (opener only) and waits up to `timeout` for the acceptor to connect it.
    public func open(timeout: Duration = .seconds(10)) async throws -> TunnelStream {
        guard role == .opener else { throw TunnelStream.Reset(description: "only the server opens tunnel streams") }
        let stream: TunnelStream = try state.withLock { state in
            if let ended = state.ended { throw TunnelStream.Reset(description: "the tunnel ended: \(ended)") }
            guard state.streams.count < Self.maximumStreams else {
                throw TunnelStream.Reset(description: "the tunnel has \(Self.maximumStreams) streams open already")
            }
            let id = state.nextID
            state.nextID = id == UInt32.max ? 1 : id + 1
            let stream = TunnelStream(id: id, mux: self, opened: false)
            state.streams[id] = stream
            return stream
        }
        do {
            try await send(.open(stream.id))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await withTaskCancellationHandler { try await stream.waitOpened() } onCancel: { stream.reset("the request was cancelled") }
                }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    stream.reset("the agent did not connect the stream within \(timeout)")
                    throw TunnelStream.Reset(description: "the agent did not connect the stream within \(timeout)")
                }
                try await group.next()
                group.cancelAll()
            }
        } catch {
            stream.reset("\(error)")
            throw error
        }
        return stream
    }

    /// Runs `job` in the tunnel's task group; false (and not run) once the tunnel ended.
    @discardableResult
    public func spawn(_ job: @escaping @Sendable () async -> Void) -> Bool {
        if case .terminated = jobInput.yield(job) { return false }
        return true
    }

    /// Ends the tunnel: every stream fails with `reason` and the connection closes.
    public func end(_ reason: String) {
        let streams: [TunnelStream]? = state.withLock { state in
            guard state.ended == nil else { return nil }
            state.ended = reason
            defer { state.streams = [:] }
            return Array(state.streams.values)
        }
        guard let streams else { return }
        for stream in streams { stream.fail("the tunnel ended: \(reason)") }
        socket.connection.close()
        jobInput.finish()
    }

    func send(_ message: TunnelMessage) async throws {
        try await socket.send(.binary, message.encoded)
    }

    /// Sends without waiting (from the read loop, which must never wait on the peer reading).
    func sendLater(_ message: TunnelMessage) {
        spawn { [self] in try? await self.send(message) }
    }

    func remove(_ stream: TunnelStream) {
        state.withLock { state in
            if state.streams[stream.id] === stream { state.streams[stream.id] = nil }
        }
    }

    private func stream(_ id: UInt32) -> TunnelStream? { state.withLock { $0.streams[id] } }

    private func readMessages(accept: (@Sendable (TunnelStream) async -> Void)?) async {
        var reason = "the peer closed the tunnel"
        do {
            while let message = try await socket.next() {
                state.withLock { $0.lastReceived = .now }
                guard message.opcode == .binary else { throw TunnelStream.Reset(description: "a text message on the tunnel") }
                try handle(try TunnelMessage(decoding: message.payload), accept: accept)
            }
        } catch {
            reason = "\(error)"
        }
        end(state.withLock { $0.ended } ?? reason)
    }

    private func handle(_ message: TunnelMessage, accept: (@Sendable (TunnelStream) async -> Void)?) throws {
        switch message {
        case .keepalive:
            break
        case .open(let id):
            guard role == .acceptor, let accept else { throw TunnelStream.Reset(description: "the agent tried to open a stream") }
            // The opener counts its streams as this side does: a stream number in use or one
            // stream too many is a broken opener, not something to answer message by message.
            let stream: TunnelStream = try state.withLock { state in
                guard id != 0, state.streams[id] == nil else { throw TunnelStream.Reset(description: "the server opened stream \(id), which is in use") }
                guard state.streams.count < Self.maximumStreams else {
                    throw TunnelStream.Reset(description: "the server opened more than \(Self.maximumStreams) streams")
                }
                let stream = TunnelStream(id: id, mux: self, opened: true)
                state.streams[id] = stream
                return stream
            }
            spawn { await accept(stream) }
        case .opened(let id):
            guard role == .opener else { throw TunnelStream.Reset(description: "the server confirmed a stream") }
            stream(id)?.peerOpened()
        case .data(let id, let bytes):
            guard let stream = stream(id) else { return }  // reset a moment ago
            if !stream.received(bytes) { stream.reset("the peer sent past its credit or after closing") }
        case .credit(let id, let count):
            stream(id)?.granted(count)
        case .close(let id):
            stream(id)?.peerClosedWrite()
        case .reset(let id, let reason):
            stream(id)?.fail("reset by the peer: \(reason)")
        }
    }

    private func keepAlive() async {
        while state.withLock({ $0.ended == nil }) {
            do { try await Task.sleep(for: Self.keepaliveInterval) } catch { return }
            let silent = state.withLock { ContinuousClock.now - $0.lastReceived }
            if silent > Self.silenceLimit {
                end("nothing arrived for \(silent.components.seconds) s")
                return
            }
            try? await send(.keepalive)
        }
    }
}
