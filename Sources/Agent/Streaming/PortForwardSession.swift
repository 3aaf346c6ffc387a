import HTTPServing
import NIOCore
import Synchronization

/// `kubectl port-forward` over SPDY/3.1 (`portforward.k8s.io`), as the kubelet serves it: for
/// each forwarded connection the client opens a pair of streams sharing a `requestID`, an
/// error stream and a data stream, both naming the port. The agent connects to that port on
/// the pod's loopback and copies both ways, keeping half-closes; a failure goes back as text on
/// the error stream and the other connections go on.
final class PortForwardSession: Sendable {
    /// Connects to a port on the pod's loopback; the error text names what failed.
    typealias Dialer = @Sendable (UInt16) async -> Result<ByteStreamConnection, PortForwardSession.Failure>

    struct Failure: Error, Sendable {
        var message: String
    }

    let session: SPDYSession
    let dial: Dialer
    /// "<pod>, uid <uid>" as the kubelet names the pod in its error messages.
    let podLabel: String
    private let table = Mutex(Table())

    /// Forwarded connections open at once in one session (each holds a connection in the pod).
    static let maximumConnections = 64
    /// Client bytes held for one connection while its target is slow to read them; past this
    /// the session stops reading from the client until the target catches up.
    static let queueLimit = 256 << 10
    /// The longest `requestID` taken (kubectl sends a counter).
    static let maximumRequestID = 32

    struct Table {
        var pairs: [String: Pair] = [:]
        var byStream: [UInt32: Pair] = [:]
        var ended = false
    }

    /// How long the session waits for a pod to read a connection's queued bytes before that
    /// connection is reset (no other connection's bytes move meanwhile: SPDY as kubectl speaks
    /// it has no flow control).
    let stallLimit: Duration

    init(session: SPDYSession, podLabel: String, stallLimit: Duration = .seconds(30), dial: @escaping Dialer) {
        self.session = session
        self.stallLimit = stallLimit
        self.podLabel = podLabel
        self.dial = dial
    }

    /// Serves the client until it goes away; every forwarded connection ends with it.
    func run() async {
        // The connection closing (the client gone, a write timed out) ends every pair at once,
        // also one the reading loop waits on.
        session.connection.closed.whenComplete { [self] _ in abortAll() }
        await withDiscardingTaskGroup { group in
            loop: while true {
                let event: SPDYSession.Event?
                do { event = try await session.next(acceptingStreams: true) } catch { break }
                switch event {
                case .opened(let stream, let headers)?:
                    if let pair = await open(stream, headers) {
                        group.addTask { await self.forward(pair) }
                    }
                case .data(let stream, let bytes, let fin)?:
                    guard let pair = table.withLock({ $0.byStream[stream] }), stream == pair.dataStream else { continue }
                    guard pair.isComplete else {
                        // Data before both streams are open: kubectl never sends it; nothing
                        // would read it.
                        await drop(pair, reason: "data before the pair's error stream was open")
                        continue
                    }
                    if !bytes.isEmpty, !(await pair.inbound.push(bytes, waitingAtMost: stallLimit)) {
                        // The pod has not read for a long while: this connection ends, the
                        // others go on.
                        await drop(pair, reason: "the pod did not read what was sent for \(stallLimit)")
                        continue
                    }
                    if fin { pair.inbound.finish() }
                case .reset(let stream)?:
                    // kubectl resets both streams once its local connection is done.
                    if let pair = table.withLock({ $0.byStream[stream] }) {
                        pair.abort()
                        if !pair.isComplete { remove(pair) }
                    }
                case .goAway?, nil:
                    break loop
                }
            }
            abortAll()
            session.connection.close()
        }
    }

    private func abortAll() {
        let pairs = table.withLock { table in
            table.ended = true
            return Array(table.pairs.values)
        }
        for pair in pairs { pair.abort() }
    }

    private func remove(_ pair: Pair) {
        let (dataStream, errorStream, _) = pair.streams
        table.withLock { table in
            if table.pairs[pair.requestID] === pair { table.pairs[pair.requestID] = nil }
            if let data = dataStream, table.byStream[data] === pair { table.byStream[data] = nil }
            if let error = errorStream, table.byStream[error] === pair { table.byStream[error] = nil }
        }
    }

    /// Ends one connection from this side: both its streams reset, the pod's end closed.
    private func drop(_ pair: Pair, reason: String) async {
        pair.abort()
        remove(pair)
        let (dataStream, errorStream, _) = pair.streams
        if let errorStream { try? await session.send(stream: errorStream, Array("error forwarding to pod \(podLabel): \(reason)".utf8), fin: true) }
        if let dataStream { try? await session.reset(dataStream) }
    }

    /// Takes a stream the client opened: answers it, or refuses it (RST_STREAM) as the
    /// kubelet does when a header is missing or wrong. Returns the pair once both its streams
    /// are open.
    private func open(_ stream: UInt32, _ headers: [String: String]) async -> Pair? {
        guard let type = headers["streamtype"], type == "error" || type == "data", let portText = headers["port"], (1...5).contains(portText.utf8.count),
              portText.utf8.allSatisfy({ (0x30...0x39).contains($0) }) else {
            try? await session.reset(stream, status: SPDYFrame.refusedStream)
            return nil
        }
        // Clients before requestIDs: the data stream follows its error stream (ids step by 2).
        var requestID = headers["requestid"] ?? ""
        if requestID.isEmpty { requestID = "stream-\(type == "data" && stream >= 2 ? stream - 2 : stream)" }
        let isData = type == "data"
        enum Outcome { case refused, waiting, complete(Pair) }
        let outcome: Outcome = table.withLock { table in
            guard !table.ended, requestID.utf8.count <= Self.maximumRequestID else { return .refused }
            if let pair = table.pairs[requestID] {
                guard pair.attach(stream, isData: isData, port: portText) else { return .refused }
                table.byStream[stream] = pair
                return .complete(pair)
            }
            guard table.pairs.count < Self.maximumConnections else { return .refused }
            let pair = Pair(requestID: requestID)
            _ = pair.attach(stream, isData: isData, port: portText)
            table.pairs[requestID] = pair
            table.byStream[stream] = pair
            return .waiting
        }
        switch outcome {
        case .refused:
            try? await session.reset(stream, status: SPDYFrame.refusedStream)
            return nil
        case .waiting:
            try? await session.reply(stream)
            return nil
        case .complete(let pair):
            try? await session.reply(stream)
            return pair
        }
    }

    /// One forwarded connection: connect, copy both ways until both directions ended (or the
    /// client reset it), then end the error stream.
    private func forward(_ pair: Pair) async {
        let (dataStreamID, errorStreamID, portText) = pair.streams
        guard let dataStream = dataStreamID, let errorStream = errorStreamID else { return }
        defer {
            // Every way out frees the pair (and wakes a reader waiting on its queue).
            pair.abort()
            remove(pair)
        }
        guard let port = UInt16(portText), port > 0 else {
            await fail(dataStream, errorStream, "error forwarding port \(portText) to pod \(podLabel): invalid port")
            return
        }
        guard !pair.isAborted else { return }
        guard Self.dials.withLock({ dials in
            guard dials < Self.maximumConcurrentDials else { return false }
            dials += 1
            return true
        }) else {
            await fail(dataStream, errorStream, "error forwarding port \(port) to pod \(podLabel): more than \(Self.maximumConcurrentDials) connections are being opened on this node; try again")
            return
        }
        let dialled = await dial(port)
        Self.dials.withLock { $0 -= 1 }
        let target: ByteStreamConnection
        switch dialled {
        case .success(let connection): target = connection
        case .failure(let failure):
            await fail(dataStream, errorStream, "error forwarding port \(port) to pod \(podLabel): \(failure.message)")
            return
        }
        guard pair.connected(target) else {
            target.close()
            return
        }
        let session = self.session
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                // Client to pod; the client's FIN half-closes the pod's side.
                while let bytes = await pair.inbound.pop() {
                    do { try await target.write(bytes) } catch {
                        pair.inbound.close()
                        return
                    }
                }
                target.closeOutput()
            }
            group.addTask {
                // Pod to client; the pod's end is a FIN on the data stream.
                while let buffer = try? await target.read() {
                    do { try await session.send(stream: dataStream, Array(buffer.readableBytesView)) } catch {
                        pair.abort()
                        return
                    }
                }
                try? await session.send(stream: dataStream, [], fin: true)
            }
        }
        target.close()
        try? await session.send(stream: errorStream, [], fin: true)
    }

    /// Connections being opened into pods at once on this node (each holds a thread while it
    /// connects, up to 10 s).
    static let maximumConcurrentDials = 16
    private static let dials = Mutex(0)

    private func fail(_ dataStream: UInt32, _ errorStream: UInt32, _ message: String) async {
        try? await session.send(stream: errorStream, Array(message.utf8), fin: true)
        try? await session.send(stream: dataStream, [], fin: true)
    }

    /// The two streams of one forwarded connection and the connection into the pod.
    final class Pair: Sendable {
        let requestID: String
        let inbound = ForwardQueue(limit: PortForwardSession.queueLimit)
        private let state = Mutex(State())

        struct State {
            var dataStream: UInt32?
            var errorStream: UInt32?
            var port = ""
            var target: ByteStreamConnection?
            var aborted = false
        }

        init(requestID: String) { self.requestID = requestID }

        /// Adds a stream; false when the pair has one of that type already or the ports differ.
        func attach(_ stream: UInt32, isData: Bool, port: String) -> Bool {
            state.withLock { state in
                if isData ? state.dataStream != nil : state.errorStream != nil { return false }
                if state.dataStream != nil || state.errorStream != nil, state.port != port { return false }
                state.port = port
                if isData { state.dataStream = stream } else { state.errorStream = stream }
                return true
            }
        }

        var dataStream: UInt32? { state.withLock { $0.dataStream } }
        var isComplete: Bool { state.withLock { $0.dataStream != nil && $0.errorStream != nil } }
        var isAborted: Bool { state.withLock { $0.aborted } }

        /// Both stream numbers (nil: not open) and the port.
        var streams: (data: UInt32?, error: UInt32?, port: String) {
            state.withLock { ($0.dataStream, $0.errorStream, $0.port) }
        }

        /// Records the connection into the pod; false when the pair was aborted meanwhile.
        func connected(_ target: ByteStreamConnection) -> Bool {
            state.withLock { state in
                guard !state.aborted else { return false }
                state.target = target
                return true
            }
        }

        /// Ends the connection at once (the client reset a stream, or went away).
        func abort() {
            let target = state.withLock { state -> ByteStreamConnection? in
                state.aborted = true
                return state.target
            }
            inbound.close()
            target?.close()
        }
    }
}
