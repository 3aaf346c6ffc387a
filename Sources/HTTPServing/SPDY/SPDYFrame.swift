/// The SPDY/3.1 frames a Kubernetes stream connection uses (the kubelet's exec, attach and
/// port-forward for clients that speak SPDY). Control frames carry version 3; SETTINGS,
/// HEADERS and WINDOW_UPDATE are read and ignored, as spdystream ignores flow control.
public enum SPDYFrame: Equatable, Sendable {
    case synStream(stream: UInt32, headerBlock: [UInt8], fin: Bool)
    case synReply(stream: UInt32, headerBlock: [UInt8], fin: Bool)
    case rstStream(stream: UInt32, status: UInt32)
    case ping(UInt32)
    case goAway(lastStream: UInt32, status: UInt32)
    case data(stream: UInt32, bytes: [UInt8], fin: Bool)
    case ignored(type: UInt16)

    /// A frame longer than this ends the session (the protocol allows 16 MiB; Go's clients
    /// write at most 32 KiB at a time).
    public static let maximumLength = 128 << 10
    static let fin: UInt8 = 1
    /// RST_STREAM statuses: the stream is refused (not processed), or cancelled.
    public static let refusedStream: UInt32 = 3
    public static let cancel: UInt32 = 5

    public struct ProtocolError: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    static func word(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
    }

    private static func control(_ type: UInt16, flags: UInt8, _ payload: [UInt8]) -> [UInt8] {
        [0x80, 0x03, UInt8(type >> 8), UInt8(type & 0xFF), flags] + word(UInt32(payload.count)).dropFirst() + payload
    }

    public var encoded: [UInt8] {
        switch self {
        case .synStream(let stream, let block, let fin):
            return Self.control(1, flags: fin ? Self.fin : 0, Self.word(stream) + Self.word(0) + [0, 0] + block)
        case .synReply(let stream, let block, let fin):
            return Self.control(2, flags: fin ? Self.fin : 0, Self.word(stream) + block)
        case .rstStream(let stream, let status):
            return Self.control(3, flags: 0, Self.word(stream) + Self.word(status))
        case .ping(let id):
            return Self.control(6, flags: 0, Self.word(id))
        case .goAway(let last, let status):
            return Self.control(7, flags: 0, Self.word(last) + Self.word(status))
        case .data(let stream, let bytes, let fin):
            return Self.word(stream & 0x7FFF_FFFF) + [fin ? Self.fin : 0] + Self.word(UInt32(bytes.count)).dropFirst() + bytes
        case .ignored:
            return []
        }
    }

    /// Decodes a frame from its 8-byte header and payload.
    public static func decode(header: [UInt8], payload: [UInt8]) throws(ProtocolError) -> SPDYFrame {
        func number(_ bytes: ArraySlice<UInt8>) -> UInt32 { bytes.reduce(0) { $0 << 8 | UInt32($1) } }
        let flags = header[4]
        let fin = flags & Self.fin != 0
        guard header[0] & 0x80 != 0 else {
            return .data(stream: number(header[0..<4]) & 0x7FFF_FFFF, bytes: payload, fin: fin)
        }
        let version = UInt16(header[0] & 0x7F) << 8 | UInt16(header[1])
        guard version == 3 else { throw ProtocolError(description: "SPDY version \(version) (3 is spoken)") }
        let type = UInt16(header[2]) << 8 | UInt16(header[3])
        func stream() throws(ProtocolError) -> UInt32 {
            guard payload.count >= 4 else { throw ProtocolError(description: "a control frame of type \(type) without a stream") }
            return number(payload[0..<4]) & 0x7FFF_FFFF
        }
        switch type {
        case 1:
            guard payload.count >= 10 else { throw ProtocolError(description: "a SYN_STREAM of \(payload.count) bytes") }
            return .synStream(stream: try stream(), headerBlock: Array(payload[10...]), fin: fin)
        case 2:
            return .synReply(stream: try stream(), headerBlock: Array(payload.dropFirst(4)), fin: fin)
        case 3:
            guard payload.count == 8 else { throw ProtocolError(description: "a RST_STREAM of \(payload.count) bytes") }
            return .rstStream(stream: try stream(), status: number(payload[4..<8]))
        case 6:
            guard payload.count == 4 else { throw ProtocolError(description: "a PING of \(payload.count) bytes") }
            return .ping(number(payload[0..<4]))
        case 7:
            guard payload.count == 8 else { throw ProtocolError(description: "a GOAWAY of \(payload.count) bytes") }
            return .goAway(lastStream: try stream(), status: number(payload[4..<8]))
        default:
            return .ignored(type: type)
        }
    }
}
