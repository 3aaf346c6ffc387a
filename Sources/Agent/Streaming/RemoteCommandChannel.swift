import HTTPServing
import KubeModel
import NIOCore

/// The client side of an exec, whichever protocol carries it (``WebSocketCommandChannel``,
/// ``SPDYCommandChannel``): output streams out, stdin and terminal sizes in, the final status.
protocol RemoteCommandChannel: Sendable {
    /// Tells the client the streams are set up (before any output).
    func begin() async
    /// Bytes of the process's stdout (1) or stderr (2).
    func send(_ stream: UInt8, _ bytes: [UInt8]) async throws
    /// Client input until the client goes away: stdin into `stdin` (finished at its end) and
    /// terminal sizes to `resize`.
    func receive(stdin: StdinSink?, resize: @escaping @Sendable (UInt16, UInt16) async -> Void) async
    /// The final status, then the closing handshake (the client answers; ``receive`` ends).
    func sendStatusAndClose(_ status: JSONValue) async
    /// Drops the connection at once.
    func abort()
}

/// What runs behind a remote command stream: a command (exec) or the container's own
/// process (attach).
protocol CommandSession: Sendable {
    func run(_ channel: any RemoteCommandChannel) async
}

/// Where a session's stdin goes: a process's pipe (exec) or a container's attach socket.
struct StdinSink: Sendable {
    let writeBytes: @Sendable (ByteBuffer) async throws -> Void
    let finishInput: @Sendable () async -> Void

    init(write: @escaping @Sendable (ByteBuffer) async throws -> Void, finish: @escaping @Sendable () async -> Void) {
        writeBytes = write
        finishInput = finish
    }

    init(_ writer: NIOAsyncChannelOutboundWriter<ByteBuffer>) {
        self.init(write: { try await writer.write($0) }, finish: { writer.finish() })
    }

    func write(_ bytes: ByteBuffer) async throws { try await writeBytes(bytes) }
    /// The client's end of input.
    func finish() async { await finishInput() }
}

/// The WebSocket channel protocol (`v4`/`v5.channel.k8s.io`): one leading byte per message
/// names the stream: 0 stdin, 1 stdout, 2 stderr, 3 the final status, 4 terminal resizes, 255
/// closes a stream in v5.
struct WebSocketCommandChannel: RemoteCommandChannel {
    let socket: WebSocketStream
    let request: RemoteCommandRequest

    func begin() async {
        // The kubelet's first message: an empty one on the lowest writable channel.
        try? await socket.send(.binary, [request.stdout || request.tty ? 1 : request.stderr ? 2 : 3])
    }

    func send(_ stream: UInt8, _ bytes: [UInt8]) async throws {
        try await socket.send(.binary, [stream] + bytes)
    }

    func receive(stdin input: StdinSink?, resize: @escaping @Sendable (UInt16, UInt16) async -> Void) async {
        let v5 = request.channelProtocol.hasPrefix("v5")
        var stdinOpen = input != nil
        do {
            while let message = try await socket.next() {
                guard message.opcode == .binary, let channel = message.payload.first else { continue }
                let payload = message.payload.dropFirst()
                switch channel {
                case 0 where stdinOpen:
                    do { try await input?.write(ByteBuffer(bytes: payload)) } catch { stdinOpen = false }
                case 4:
                    if let size = Self.terminalSize(Array(payload)) { await resize(size.0, size.1) }
                case 255 where v5 && payload.first == 0 && stdinOpen:
                    stdinOpen = false
                    await input?.finish()
                default:
                    continue
                }
            }
        } catch {
            // A broken WebSocket is the client going away.
        }
        if stdinOpen { await input?.finish() }
    }

    func sendStatusAndClose(_ status: JSONValue) async {
        try? await socket.send(.binary, [3] + KubeJSON.serialize(status))
        await socket.sendClose()
    }

    func abort() { socket.connection.close() }

    /// `{"Width": w, "Height": h}` as kubectl sends it.
    static func terminalSize(_ json: [UInt8]) -> (UInt16, UInt16)? {
        guard let size = try? KubeJSON.parse(json), case .number(let width)? = size["Width"], case .number(let height)? = size["Height"],
              let columns = UInt16(width), let rows = UInt16(height) else { return nil }
        return (columns, rows)
    }
}

/// SPDY/3.1 streams as kubectl before 1.30 and kube-apiserver toward a kubelet open them: one
/// stream per `streamtype` (error, stdin, stdout, stderr, resize), the final status as JSON on
/// the error stream (v4.channel.k8s.io), stdin's end a FIN.
struct SPDYCommandChannel: RemoteCommandChannel {
    let session: SPDYSession
    let streams: [String: UInt32]

    /// Terminal sizes come as newline-separated JSON; a line longer than this is dropped.
    static let maximumResizeLine = 4096

    func begin() async {}

    func send(_ stream: UInt8, _ bytes: [UInt8]) async throws {
        guard let id = streams[stream == 1 ? "stdout" : "stderr"] else { return }
        try await session.send(stream: id, bytes)
    }

    func receive(stdin input: StdinSink?, resize: @escaping @Sendable (UInt16, UInt16) async -> Void) async {
        var stdinOpen = input != nil
        var sizes: [UInt8] = []
        do {
            loop: while let event = try await session.next() {
                switch event {
                case .data(let stream, let bytes, let fin) where stream == streams["stdin"]:
                    if stdinOpen, !bytes.isEmpty {
                        do { try await input?.write(ByteBuffer(bytes: bytes)) } catch { stdinOpen = false }
                    }
                    if fin, stdinOpen {
                        stdinOpen = false
                        await input?.finish()
                    }
                case .data(let stream, let bytes, _) where stream == streams["resize"]:
                    // One pass per frame; only the last complete size matters.
                    guard bytes.count <= Self.maximumResizeLine else { continue }
                    sizes += bytes
                    if let end = sizes.lastIndex(of: 0x0A) {
                        let lines = sizes[..<end].split(separator: 0x0A)
                        if let last = lines.last, let size = WebSocketCommandChannel.terminalSize(Array(last)) { await resize(size.0, size.1) }
                        sizes.removeSubrange(...end)
                    }
                    if sizes.count > Self.maximumResizeLine { sizes = [] }
                case .data, .opened:
                    continue
                case .reset(let stream):
                    // The client resets its streams once it read the status: it is done.
                    if stream == streams["error"] { break loop }
                    if stream == streams["stdin"], stdinOpen {
                        stdinOpen = false
                        await input?.finish()
                    }
                case .goAway:
                    break loop
                }
            }
        } catch {
            // A broken connection is the client going away.
        }
        if stdinOpen { await input?.finish() }
    }

    func sendStatusAndClose(_ status: JSONValue) async {
        // The status ends the error stream; the output streams end with it.
        for (type, id) in streams where type == "stdout" || type == "stderr" { try? await session.send(stream: id, [], fin: true) }
        if let error = streams["error"] { try? await session.send(stream: error, KubeJSON.serialize(status), fin: true) }
    }

    func abort() { session.connection.close() }
}
