import NIOCore
import Synchronization

/// The server side of a SPDY/3.1 connection after `101 Switching Protocols` (`Upgrade:
/// SPDY/3.1`), as the kubelet serves exec to clients that speak SPDY: the client opens its
/// streams (SYN_STREAM with a `streamtype` header), each is answered, then data flows on them.
/// Pings are answered. One reader at a time; writes of whole frames may come from any task.
public final class SPDYSession: Sendable {
    public let connection: ByteStreamConnection
    private let reader: FrameReader
    private let state = Mutex<State>(State())

    struct State {
        /// Events that arrived while streams were being accepted.
        var early: [Event] = []
        var earlyBytes = 0
        var lastStream: UInt32 = 0
    }

    public enum Event: Sendable, Equatable {
        /// The client opened a stream (only from ``next(acceptingStreams:)`` with `true`); answer
        /// it with ``reply(_:)`` or ``reset(_:status:)``.
        case opened(stream: UInt32, headers: [String: String])
        case data(stream: UInt32, bytes: [UInt8], fin: Bool)
        /// The client reset a stream or said goodbye (GOAWAY).
        case reset(stream: UInt32)
        case goAway
    }

    /// Data a client may send before all its streams are open (it is held until then).
    public static let maximumEarlyBytes = 256 << 10
    public static let maximumEarlyFrames = 64
    /// At most this many streams per session (exec opens five at most).
    public static let maximumStreams = 5

    public init(connection: ByteStreamConnection, received: ByteBuffer = ByteBuffer()) throws {
        self.connection = connection
        reader = FrameReader(connection: connection, pending: received, inflater: try SPDYHeaderCompression(compress: false),
                             deflater: try SPDYHeaderCompression(compress: true))
    }

    /// Accepts streams until one of each type in `expected` has arrived, answering each; the
    /// stream numbers by type. Another stream type, a repeated one or too many streams end the
    /// session with an error naming it.
    public func acceptStreams(_ expected: Set<String>) async throws -> [String: UInt32] {
        var streams: [String: UInt32] = [:]
        while !expected.isSubset(of: Set(streams.keys)) {
            guard let frame = try await reader.frame() else { throw SPDYFrame.ProtocolError(description: "the client closed before opening its streams") }
            switch frame {
            case .synStream(let stream, let block, _):
                let headers = try SPDYHeaderCompression.decode(try reader.inflate(block))
                guard let type = headers["streamtype"], expected.contains(type), streams[type] == nil else {
                    throw SPDYFrame.ProtocolError(description: "an unexpected stream (streamtype \(headers["streamtype"] ?? "missing"))")
                }
                let last = state.withLock { $0.lastStream }
                guard stream > last, stream % 2 == 1, streams.count < Self.maximumStreams else {
                    throw SPDYFrame.ProtocolError(description: "stream \(stream) out of order")
                }
                state.withLock { $0.lastStream = stream }
                streams[type] = stream
                try await reader.reply(stream)
            case .data(let stream, let bytes, let fin):
                guard streams.values.contains(stream) else { throw SPDYFrame.ProtocolError(description: "data on stream \(stream), which is not open") }
                let (count, held) = state.withLock { state in
                    state.early.append(.data(stream: stream, bytes: bytes, fin: fin))
                    state.earlyBytes += bytes.count
                    return (state.early.count, state.earlyBytes)
                }
                guard held <= Self.maximumEarlyBytes, count <= Self.maximumEarlyFrames else {
                    throw SPDYFrame.ProtocolError(description: "more than \(Self.maximumEarlyFrames) frames or \(Self.maximumEarlyBytes) bytes before the streams were open")
                }
            case .ping(let id):
                try await connection.write(ByteBuffer(bytes: SPDYFrame.ping(id).encoded))
            case .rstStream, .goAway:
                throw SPDYFrame.ProtocolError(description: "the client gave up while opening its streams")
            case .synReply, .ignored:
                continue
            }
        }
        return streams
    }

    /// The next event; nil once the connection ended. Streams the client opens are refused
    /// unless `acceptingStreams` (port-forward opens a pair of streams per connection).
    public func next(acceptingStreams: Bool = false) async throws -> Event? {
        if let early = state.withLock({ $0.early.isEmpty ? nil : $0.early.removeFirst() }) { return early }
        while let frame = try await reader.frame() {
            switch frame {
            case .data(let stream, let bytes, let fin): return .data(stream: stream, bytes: bytes, fin: fin)
            case .rstStream(let stream, _): return .reset(stream: stream)
            case .goAway: return .goAway
            case .ping(let id): try await connection.write(ByteBuffer(bytes: SPDYFrame.ping(id).encoded))
            case .synStream(let stream, let block, _):
                // Decoded even when refused: the header compression state runs across blocks.
                let headers = try SPDYHeaderCompression.decode(try reader.inflate(block))
                guard acceptingStreams else {
                    // No more streams once the command runs.
                    try await reset(stream, status: SPDYFrame.refusedStream)
                    continue
                }
                let ordered = state.withLock { state in
                    guard stream > state.lastStream, stream % 2 == 1 else { return false }
                    state.lastStream = stream
                    return true
                }
                guard ordered else { throw SPDYFrame.ProtocolError(description: "stream \(stream) out of order") }
                return .opened(stream: stream, headers: headers)
            case .synReply, .ignored: continue
            }
        }
        return nil
    }

    /// Answers a stream the client opened (call from the task that reads events: replies are
    /// compressed in the order they go out).
    public func reply(_ stream: UInt32) async throws { try await reader.reply(stream) }

    /// Ends a stream abnormally (RST_STREAM).
    public func reset(_ stream: UInt32, status: UInt32 = SPDYFrame.cancel) async throws {
        try await connection.write(ByteBuffer(bytes: SPDYFrame.rstStream(stream: stream, status: status).encoded))
    }

    /// Sends `bytes` on a stream (in frames of at most 32 KiB), with `fin` ending it.
    public func send(stream: UInt32, _ bytes: [UInt8], fin: Bool = false) async throws {
        // All frames in one write (one flush, one TLS record run).
        var buffer = ByteBuffer()
        buffer.reserveCapacity(bytes.count + 8 * (bytes.count / (32 << 10) + 1))
        var offset = 0
        repeat {
            let end = min(bytes.count, offset + (32 << 10))
            let last = end == bytes.count
            buffer.writeInteger(stream & 0x7FFF_FFFF)
            buffer.writeInteger(fin && last ? SPDYFrame.fin : 0)
            let length = UInt32(end - offset)
            buffer.writeInteger(UInt8(length >> 16))
            buffer.writeInteger(UInt16(length & 0xFFFF))
            buffer.writeBytes(bytes[offset..<end])
            offset = end
        } while offset < bytes.count
        try await connection.write(buffer)
    }

    /// Frames from the byte stream (one reader at a time), and the session's header compression.
    final class FrameReader: BufferedConnectionReader, @unchecked Sendable {
        private let inflater: SPDYHeaderCompression
        private let deflater: SPDYHeaderCompression

        init(connection: ByteStreamConnection, pending: ByteBuffer, inflater: SPDYHeaderCompression, deflater: SPDYHeaderCompression) {
            self.inflater = inflater
            self.deflater = deflater
            super.init(connection: connection, pending: pending)
        }

        func frame() async throws -> SPDYFrame? {
            guard try await fill(8) else { return nil }
            let header = pending.getBytes(at: pending.readerIndex, length: 8)!
            let length = Int(header[5]) << 16 | Int(header[6]) << 8 | Int(header[7])
            guard length <= SPDYFrame.maximumLength else { throw SPDYFrame.ProtocolError(description: "a frame of \(length) bytes") }
            guard try await fill(8 + length) else { return nil }
            pending.moveReaderIndex(forwardBy: 8)
            let payload = pending.readBytes(length: length)!
            // Compacted now and then, not per frame (a read full of tiny frames would be
            // copied once per frame).
            if pending.readerIndex > 64 << 10 { pending.discardReadBytes() }
            return try SPDYFrame.decode(header: header, payload: payload)
        }

        func inflate(_ block: [UInt8]) throws -> [UInt8] { try inflater.run(block) }

        /// Answers a stream with an empty header block (the reader is the only task that
        /// compresses, so blocks go out in the order the shared zlib stream made them).
        func reply(_ stream: UInt32) async throws {
            let block = try deflater.run(SPDYHeaderCompression.encode([]))
            try await connection.write(ByteBuffer(bytes: SPDYFrame.synReply(stream: stream, headerBlock: block, fin: false).encoded))
        }
    }
}
