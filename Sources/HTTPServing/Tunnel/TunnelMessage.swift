/// One message of the agent tunnel, carried as one binary WebSocket message: a type byte, a
/// big-endian stream number, and the payload. Only the server opens streams; the agent connects
/// each into its own endpoint.
public enum TunnelMessage: Equatable, Sendable {
    /// The server asks for a new stream.
    case open(UInt32)
    /// The agent connected the stream.
    case opened(UInt32)
    /// Bytes of a stream (at most ``maximumData``, within the receiver's credit).
    case data(UInt32, [UInt8])
    /// The receiver took `count` more bytes off the stream: the sender may send that many more.
    case credit(UInt32, UInt32)
    /// The sender will send nothing more on the stream (its end of the byte stream).
    case close(UInt32)
    /// The stream is over at once, with the reason.
    case reset(UInt32, String)
    /// Sent by both sides while idle, so a dead connection is noticed.
    case keepalive

    /// The most data bytes in one message.
    public static let maximumData = 32 << 10
    /// The most bytes of a reset reason that are kept.
    static let maximumReason = 256

    public struct DecodingError: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    public var encoded: [UInt8] {
        func header(_ type: UInt8, _ stream: UInt32) -> [UInt8] {
            [type, UInt8(stream >> 24), UInt8((stream >> 16) & 0xFF), UInt8((stream >> 8) & 0xFF), UInt8(stream & 0xFF)]
        }
        switch self {
        case .open(let stream): return header(1, stream)
        case .opened(let stream): return header(2, stream)
        case .data(let stream, let bytes): return header(3, stream) + bytes
        case .credit(let stream, let count): return header(4, stream) + header(0, count).dropFirst()
        case .close(let stream): return header(5, stream)
        case .reset(let stream, let reason): return header(6, stream) + Array(reason.utf8.prefix(Self.maximumReason))
        case .keepalive: return [7]
        }
    }

    public init(decoding bytes: [UInt8]) throws(DecodingError) {
        guard let type = bytes.first else { throw DecodingError(description: "an empty tunnel message") }
        if type == 7 {
            guard bytes.count == 1 else { throw DecodingError(description: "a keepalive with a payload") }
            self = .keepalive
            return
        }
        guard bytes.count >= 5 else { throw DecodingError(description: "a tunnel message of \(bytes.count) bytes has no stream number") }
        func number(at offset: Int) -> UInt32 {
            bytes[offset..<offset + 4].reduce(0) { $0 << 8 | UInt32($1) }
        }
        let stream = number(at: 1)
        let payload = bytes[5...]
        func empty() throws(DecodingError) {
            guard payload.isEmpty else { throw DecodingError(description: "tunnel message type \(type) with a payload") }
        }
        switch type {
        case 1: try empty(); self = .open(stream)
        case 2: try empty(); self = .opened(stream)
        case 3:
            guard !payload.isEmpty, payload.count <= Self.maximumData else {
                throw DecodingError(description: "a data message of \(payload.count) bytes (1 to \(Self.maximumData))")
            }
            self = .data(stream, Array(payload))
        case 4:
            guard payload.count == 4 else { throw DecodingError(description: "a credit message without a 4-byte count") }
            self = .credit(stream, number(at: 5))
        case 5: try empty(); self = .close(stream)
        case 6: self = .reset(stream, String(decoding: payload.prefix(Self.maximumReason), as: UTF8.self))
        default: throw DecodingError(description: "unknown tunnel message type \(type)")
        }
    }

    /// The stream the message is about (0 for keepalives).
    public var stream: UInt32 {
        switch self {
        case .open(let stream), .opened(let stream), .data(let stream, _), .credit(let stream, _), .close(let stream), .reset(let stream, _): stream
        case .keepalive: 0
        }
    }
}
