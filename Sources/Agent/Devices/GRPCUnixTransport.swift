import NIOCore
import NIOPosix
import Synchronization

/// gRPC over cleartext HTTP/2 on Unix sockets, as small as the device plugin API needs: a client
/// that makes one call per connection (unary or server-streaming) and a server for the one
/// method the agent serves (`Registration/Register`). Header blocks are written as HPACK
/// literals and not decoded on reading (one method per socket, and an answer is known by its
/// message): no HPACK state to keep. Frames and messages are bounded.
enum GRPCUnixTransport {
    struct CallError: Error, CustomStringConvertible {
        var description: String
    }

    typealias Frame = GRPCHealthProbe.FrameReader.Frame
    static let maximumMessage = 4 << 20
    static let window: UInt32 = 16 << 20

    /// Calls `method` on the server at `socket` with one request message; each answer message goes
    /// to `onMessage`. Returns how many messages came (a unary call's error has none: its status
    /// is in trailers this client does not decode).
    @discardableResult
    static func call(socket: String, method: String, request: [UInt8], connectTimeout: TimeAmount = .seconds(5),
                     onMessage: @Sendable ([UInt8]) async throws -> Void) async throws -> Int {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(connectTimeout)
            .connect(unixDomainSocketPath: socket) { channel in
                channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
            }
        return try await channel.executeThenClose { inbound, outbound in
            var bytes = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
            bytes += settings([(0x4, window)])  // SETTINGS_INITIAL_WINDOW_SIZE
            bytes += windowUpdate(stream: 0, increment: window - 65535)
            var block: [UInt8] = [0x83, 0x86]  // :method POST, :scheme http
            block += GRPCHealthProbe.literal(nameIndex: 4, value: method)  // :path
            block += GRPCHealthProbe.literal(nameIndex: 1, value: "localhost")  // :authority
            block += GRPCHealthProbe.literal(name: "content-type", value: "application/grpc")
            block += GRPCHealthProbe.literal(name: "te", value: "trailers")
            bytes += GRPCHealthProbe.frame(.headers, flags: 0x4, stream: 1, payload: block)
            // DATA frames of at most 16 KiB (the peer's default SETTINGS_MAX_FRAME_SIZE); the whole
            // request within the default 64 KiB window (a plugin's requests are far smaller).
            let body = message(request)
            guard body.count <= 65535 else { throw CallError(description: "\(method): a request of \(body.count) bytes (at most 65535)") }
            var offset = 0
            repeat {
                let end = min(offset + 16384, body.count)
                bytes += GRPCHealthProbe.frame(.data, flags: end == body.count ? 0x1 : 0, stream: 1, payload: Array(body[offset..<end]))
                offset = end
            } while offset < body.count
            try await outbound.write(ByteBuffer(bytes: bytes))
            var frames = GRPCHealthProbe.FrameReader()
            var pending: [UInt8] = []
            var received = 0, consumed: UInt32 = 0
            for try await chunk in inbound {
                frames.append(chunk)
                guard frames.pendingCount <= maximumMessage + 64 << 10 else { throw CallError(description: "a frame larger than \(maximumMessage) bytes") }
                while let frame = frames.next() {
                    if let acknowledgement = acknowledgement(frame) {
                        try await outbound.write(ByteBuffer(bytes: acknowledgement))
                        continue
                    }
                    switch GRPCHealthProbe.FrameType(rawValue: frame.type) {
                    case .data where frame.stream == 1:
                        pending += GRPCHealthProbe.unpadded(frame)
                        while let next = try nextMessage(&pending) {
                            received += 1
                            try await onMessage(next)
                        }
                        // Give the credit back as messages are taken (a watch lasts for days).
                        consumed += UInt32(frame.payload.count)
                        if consumed >= 1 << 20 {
                            try await outbound.write(ByteBuffer(bytes: windowUpdate(stream: 0, increment: consumed) + windowUpdate(stream: 1, increment: consumed)))
                            consumed = 0
                        }
                        if frame.flags & 0x1 != 0 { return received }
                    case .headers where frame.stream == 1 && frame.flags & 0x1 != 0:
                        return received
                    case .rstStream where frame.stream == 1:
                        throw CallError(description: "the plugin reset the call")
                    case .goAway:
                        throw CallError(description: "the plugin closed the connection (GOAWAY)")
                    default:
                        break
                    }
                }
            }
            throw CallError(description: "the connection closed before the call ended")
        }
    }

    /// A unary call's answer, within `timeout` (a plugin that hangs must not hold admission).
    static func unary(socket: String, method: String, request: [UInt8], timeout: Duration = .seconds(10)) async throws -> [UInt8] {
        try await withThrowingTaskGroup(of: [UInt8].self) { group in
            group.addTask {
                let answer = Answer()
                let count = try await call(socket: socket, method: method, request: request) { answer.set($0) }
                guard count > 0, let bytes = answer.value else { throw CallError(description: "\(method) failed (the plugin answered with an error status)") }
                return bytes
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                throw CallError(description: "\(method): no answer within \(timeout)")
            }
            defer { group.cancelAll() }
            return try await group.next()!
        }
    }

    /// Serves one unary method on `path` (replacing a stale socket): each request message goes to
    /// `handle`, whose nil answer is an empty reply and whose text is an InvalidArgument error.
    static func serve(path: String, handle: @escaping @Sendable ([UInt8]) async -> String?) async throws {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true) { channel in
                channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
            }
        try await withThrowingDiscardingTaskGroup { group in
            try await server.executeThenClose { connections in
                for try await connection in connections {
                    group.addTask { try? await serveConnection(connection, handle: handle) }
                }
            }
        }
    }

    private static func serveConnection(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>, handle: @Sendable ([UInt8]) async -> String?) async throws {
        try await connection.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(bytes: settings([])))
            var preface: [UInt8] = []
            var frames = GRPCHealthProbe.FrameReader()
            var bodies: [UInt32: [UInt8]] = [:]
            for try await chunk in inbound {
                if preface.count < 24 {
                    let bytes = Array(chunk.readableBytesView)
                    let take = min(24 - preface.count, bytes.count)
                    preface += bytes[..<take]
                    if preface.count == 24, preface != Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8) { return }
                    var rest = ByteBuffer(bytes: bytes[take...])
                    frames.append(rest.readSlice(length: rest.readableBytes)!)
                } else {
                    frames.append(chunk)
                }
                guard frames.pendingCount <= maximumMessage + 64 << 10 else { return }
                while let frame = frames.next() {
                    if let acknowledgement = acknowledgement(frame) {
                        try await outbound.write(ByteBuffer(bytes: acknowledgement))
                        continue
                    }
                    switch GRPCHealthProbe.FrameType(rawValue: frame.type) {
                    case .headers, .data:
                        guard frame.stream != 0, frame.stream & 1 == 1, bodies.count < 16 else { return }
                        if frame.type == GRPCHealthProbe.FrameType.data.rawValue { bodies[frame.stream, default: []] += GRPCHealthProbe.unpadded(frame) }
                        else if bodies[frame.stream] == nil { bodies[frame.stream] = [] }
                        guard (bodies[frame.stream]?.count ?? 0) <= maximumMessage else { return }
                        guard frame.flags & 0x1 != 0, var body = bodies.removeValue(forKey: frame.stream) else { continue }
                        let problem: String?
                        if let request = try? nextMessage(&body) { problem = await handle(request) } else { problem = "the request is not one gRPC message" }
                        try await outbound.write(ByteBuffer(bytes: reply(stream: frame.stream, problem: problem)))
                    case .goAway:
                        return
                    default:
                        break
                    }
                }
            }
        }
    }

    /// A reply: headers, an empty message and an OK status; or trailers only with
    /// INVALID_ARGUMENT (3) and the problem.
    static func reply(stream: UInt32, problem: String?) -> [UInt8] {
        var head: [UInt8] = [0x88]  // :status 200
        head += GRPCHealthProbe.literal(name: "content-type", value: "application/grpc")
        guard let problem else {
            return GRPCHealthProbe.frame(.headers, flags: 0x4, stream: stream, payload: head)
                + GRPCHealthProbe.frame(.data, flags: 0, stream: stream, payload: message([]))
                + GRPCHealthProbe.frame(.headers, flags: 0x5, stream: stream, payload: GRPCHealthProbe.literal(name: "grpc-status", value: "0"))
        }
        let text = String(problem.unicodeScalars.map { $0.isASCII && $0.value >= 0x20 && $0 != "%" ? Character($0) : " " }.prefix(512))
        head += GRPCHealthProbe.literal(name: "grpc-status", value: "3") + GRPCHealthProbe.literal(name: "grpc-message", value: text)
        return GRPCHealthProbe.frame(.headers, flags: 0x5, stream: stream, payload: head)
    }

    /// The acknowledgement a peer's SETTINGS or PING asks for; nil for other frames.
    static func acknowledgement(_ frame: Frame) -> [UInt8]? {
        guard frame.flags & 0x1 == 0 else { return nil }
        switch GRPCHealthProbe.FrameType(rawValue: frame.type) {
        case .settings: return GRPCHealthProbe.frame(.settings, flags: 0x1, stream: 0, payload: [])
        case .ping: return GRPCHealthProbe.frame(.ping, flags: 0x1, stream: 0, payload: frame.payload)
        default: return nil
        }
    }

    /// A gRPC length-prefixed message (uncompressed).
    static func message(_ payload: [UInt8]) -> [UInt8] {
        let count = payload.count
        return [0, UInt8(count >> 24 & 0xff), UInt8(count >> 16 & 0xff), UInt8(count >> 8 & 0xff), UInt8(count & 0xff)] + payload
    }

    /// Takes one whole message off the front of `bytes`; nil while it is incomplete.
    static func nextMessage(_ bytes: inout [UInt8]) throws -> [UInt8]? {
        guard bytes.count >= 5 else { return nil }
        guard bytes[0] == 0 else { throw CallError(description: "a compressed message (not asked for)") }
        // Built as UInt32 and bounded before it becomes an Int (negative on 32-bit boards otherwise).
        let declared = UInt32(bytes[1]) << 24 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 8 | UInt32(bytes[4])
        guard declared <= UInt32(maximumMessage) else { throw CallError(description: "a message of \(declared) bytes") }
        let length = Int(declared)
        guard bytes.count >= 5 + length else { return nil }
        let message = Array(bytes[5..<(5 + length)])
        bytes.removeFirst(5 + length)
        return message
    }

    static func settings(_ entries: [(UInt16, UInt32)]) -> [UInt8] {
        var payload: [UInt8] = []
        for (id, value) in entries {
            payload += [UInt8(id >> 8), UInt8(id & 0xff), UInt8(value >> 24), UInt8(value >> 16 & 0xff), UInt8(value >> 8 & 0xff), UInt8(value & 0xff)]
        }
        return GRPCHealthProbe.frame(.settings, flags: 0, stream: 0, payload: payload)
    }

    static func windowUpdate(stream: UInt32, increment: UInt32) -> [UInt8] {
        GRPCHealthProbe.frame(.windowUpdate, flags: 0, stream: stream,
                              payload: [UInt8(increment >> 24 & 0x7f), UInt8(increment >> 16 & 0xff), UInt8(increment >> 8 & 0xff), UInt8(increment & 0xff)])
    }

    /// The one answer of a unary call.
    private final class Answer: Sendable {
        private let stored = Mutex<[UInt8]?>(nil)
        func set(_ bytes: [UInt8]) { stored.withLock { if $0 == nil { $0 = bytes } } }
        var value: [UInt8]? { stored.withLock { $0 } }
    }
}
