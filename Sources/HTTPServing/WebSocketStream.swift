import FoundationEssentials
import NIOCore
import NodeCrypto
import Synchronization

/// RFC 6455 messages over an upgraded connection: the server side (client frames must be
/// masked; ours are not) or the client side (the reverse). Pings are answered, fragmented
/// messages joined, a close is answered; messages larger than ``maximumMessageSize`` end the
/// connection (a peer cannot make us buffer without bound).
public final class WebSocketStream: Sendable {
    public enum Role: Sendable { case server, client }

    public enum Opcode: UInt8, Sendable {
        case continuation = 0, text = 1, binary = 2, close = 8, ping = 9, pong = 10
    }

    public struct Message: Sendable {
        public var opcode: Opcode
        public var payload: [UInt8]
    }

    public struct ProtocolError: Error, CustomStringConvertible, Sendable {
        public var description: String
        init(_ description: String) { self.description = description }
    }

    public static let maximumMessageSize = 4 << 20

    public let connection: ByteStreamConnection
    let role: Role
    private let reader: Reader
    private let closeSent = Atomic<Bool>(false)

    /// `received`: bytes that already arrived after the handshake (read with its answer).
    public init(connection: ByteStreamConnection, role: Role, received: ByteBuffer = ByteBuffer()) {
        self.connection = connection
        self.role = role
        reader = Reader(connection: connection, pending: received)
    }

    /// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`.
    public static func acceptValue(forKey key: String) -> String {
        let digest = StreamingDigest.hash(.sha1, Array((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").utf8))
        return Data(digest).base64EncodedString()
    }

    /// The next data message (text or binary), or nil once the peer closed.
    public func next() async throws -> Message? {
        var assembling: (Opcode, [UInt8])?
        while true {
            guard let frame = try await reader.frame(expectMasked: role == .server) else { return nil }
            switch frame.opcode {
            case .ping:
                try await send(.pong, frame.payload)
            case .pong:
                continue
            case .close:
                if !closeSent.exchange(true, ordering: .relaxed) { try? await send(.close, Array(frame.payload.prefix(2))) }
                return nil
            case .text, .binary:
                guard assembling == nil else { throw ProtocolError("a new message began inside a fragmented one") }
                if frame.final { return Message(opcode: frame.opcode, payload: frame.payload) }
                assembling = (frame.opcode, frame.payload)
            case .continuation:
                guard var (opcode, payload) = assembling else { throw ProtocolError("a continuation frame without a message") }
                assembling = nil  // the payload is then unshared: appending does not copy it
                payload += frame.payload
                guard payload.count <= Self.maximumMessageSize else { throw ProtocolError("a message over \(Self.maximumMessageSize) bytes") }
                if frame.final { return Message(opcode: opcode, payload: payload) }
                assembling = (opcode, payload)
            }
        }
    }

    /// XORs `bytes` with the 4-byte masking key (RFC 6455 §5.3), eight bytes at a time.
    static func mask(_ bytes: UnsafeMutableRawBufferPointer, with key: [UInt8]) {
        var pattern: UInt64 = 0
        withUnsafeMutableBytes(of: &pattern) { word in for index in 0..<8 { word[index] = key[index & 3] } }
        var index = 0
        while index + 8 <= bytes.count {
            bytes.storeBytes(of: bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self) ^ pattern, toByteOffset: index, as: UInt64.self)
            index += 8
        }
        while index < bytes.count {
            bytes[index] ^= key[index & 3]
            index += 1
        }
    }

    /// Sends one unfragmented frame.
    public func send(_ opcode: Opcode, _ payload: [UInt8]) async throws {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(payload.count + 14)
        buffer.writeInteger(0x80 | opcode.rawValue)
        let maskBit: UInt8 = role == .client ? 0x80 : 0
        switch payload.count {
        case ..<126: buffer.writeInteger(maskBit | UInt8(payload.count))
        case ..<65536:
            buffer.writeInteger(maskBit | 126)
            buffer.writeInteger(UInt16(payload.count))
        default:
            buffer.writeInteger(maskBit | 127)
            buffer.writeInteger(UInt64(payload.count))
        }
        if role == .client {
            let key = (0..<4).map { _ in UInt8.random(in: 0...255) }
            buffer.writeBytes(key)
            let start = buffer.writerIndex - buffer.readerIndex
            buffer.writeBytes(payload)
            buffer.withUnsafeMutableReadableBytes { bytes in Self.mask(UnsafeMutableRawBufferPointer(rebasing: bytes[start...]), with: key) }
        } else {
            buffer.writeBytes(payload)
        }
        try await connection.write(buffer)
    }

    /// Sends a close frame with a status code (1000: normal) and ends the connection.
    public func close(code: UInt16 = 1000, reason: String = "") async {
        await sendClose(code: code, reason: reason)
        connection.close()
    }

    /// Sends a close frame (once); the peer answers with its own and closes. Closing the
    /// connection before reading that answer can reset it and lose what the peer has not read
    /// yet, so a caller that keeps reading until ``next()`` returns nil closes cleanly.
    public func sendClose(code: UInt16 = 1000, reason: String = "") async {
        guard !closeSent.exchange(true, ordering: .relaxed) else { return }
        var payload = [UInt8(code >> 8), UInt8(code & 0xFF)]
        payload += Array(reason.utf8.prefix(123))
        try? await send(.close, payload)
    }

    /// Frames from the byte stream (one reader at a time).
    final class Reader: BufferedConnectionReader, @unchecked Sendable {
        struct Frame {
            var final: Bool
            var opcode: Opcode
            var payload: [UInt8]
        }

        func frame(expectMasked: Bool) async throws -> Frame? {
            guard try await fill(2) else { return nil }
            let first = pending.getInteger(at: pending.readerIndex, as: UInt8.self)!
            let second = pending.getInteger(at: pending.readerIndex + 1, as: UInt8.self)!
            guard first & 0x70 == 0 else { throw ProtocolError("reserved bits set (no extension was negotiated)") }
            guard let opcode = Opcode(rawValue: first & 0x0F) else { throw ProtocolError("unknown opcode \(first & 0x0F)") }
            let masked = second & 0x80 != 0
            guard masked == expectMasked else { throw ProtocolError(expectMasked ? "a client frame was not masked" : "a server frame was masked") }
            var header = 2
            var length = UInt64(second & 0x7F)
            if length == 126 {
                guard try await fill(4) else { return nil }
                length = UInt64(pending.getInteger(at: pending.readerIndex + 2, as: UInt16.self)!)
                header = 4
            } else if length == 127 {
                guard try await fill(10) else { return nil }
                length = pending.getInteger(at: pending.readerIndex + 2, as: UInt64.self)!
                header = 10
            }
            guard length <= UInt64(WebSocketStream.maximumMessageSize) else { throw ProtocolError("a frame of \(length) bytes") }
            if opcode.rawValue >= 8 && (length > 125 || first & 0x80 == 0) { throw ProtocolError("a control frame over 125 bytes or fragmented") }
            let total = header + (masked ? 4 : 0) + Int(length)
            guard try await fill(total) else { return nil }
            pending.moveReaderIndex(forwardBy: header)
            let mask = masked ? pending.readBytes(length: 4)! : []
            var payload = pending.readBytes(length: Int(length))!
            if masked { payload.withUnsafeMutableBytes { WebSocketStream.mask($0, with: mask) } }
            // Compacted now and then, not per frame (a read full of small frames would be
            // copied once per frame).
            if pending.readerIndex > 64 << 10 { pending.discardReadBytes() }
            return Frame(final: first & 0x80 != 0, opcode: opcode, payload: payload)
        }
    }
}
