import NIOCore
import NIOPosix

/// The kubelet's gRPC probe: `grpc.health.v1.Health/Check` over cleartext HTTP/2 (prior
/// knowledge, as the kubelet dials it), passing only on a `SERVING` answer. A small client of
/// its own: one stream, HPACK literals for the request, and the answer read from the DATA
/// frames (the response headers and trailers are not decoded; a missing answer — unknown
/// service, a server that is not a gRPC health server — fails with what was seen).
public enum GRPCHealthProbe {
    public static func check(host: String, port: Int, service: String, timeoutSeconds: Int64) async -> ProbeActions.Outcome {
        let target = "\(host):\(port)"
        do {
            return try await withThrowingTaskGroup(of: ProbeActions.Outcome.self) { group in
                group.addTask { try await exchange(host: host, port: port, service: service, timeoutSeconds: timeoutSeconds) }
                group.addTask {
                    try await Task.sleep(for: .seconds(timeoutSeconds))
                    return .failure("timeout: health rpc did not complete within \(timeoutSeconds)s")
                }
                defer { group.cancelAll() }
                return try await group.next()!
            }
        } catch {
            return .failure("timeout: failed to connect service \"\(target)\" within \(timeoutSeconds)s: \(error)")
        }
    }

    enum FrameType: UInt8 {
        case data = 0, headers = 1, rstStream = 3, settings = 4, ping = 6, goAway = 7, windowUpdate = 8, continuation = 9
    }

    static func exchange(host: String, port: Int, service: String, timeoutSeconds: Int64) async throws -> ProbeActions.Outcome {
        let connection = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(timeoutSeconds))
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
            }
        return try await connection.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(bytes: request(authority: "\(host):\(port)", service: service)))
            var reader = FrameReader()
            var message: [UInt8] = []
            for try await chunk in inbound {
                reader.append(chunk)
                // A health answer is a few bytes: a pod that sends more is not a health server.
                if reader.pendingCount > 64 << 10 || message.count > 64 << 10 {
                    return .failure("rpc error: the server sent more than a health answer (64 KiB)")
                }
                while let frame = reader.next() {
                    switch FrameType(rawValue: frame.type) {
                    case .settings where frame.flags & 0x1 == 0:
                        try await outbound.write(ByteBuffer(bytes: Self.frame(.settings, flags: 0x1, stream: 0, payload: [])))
                    case .ping where frame.flags & 0x1 == 0:
                        try await outbound.write(ByteBuffer(bytes: Self.frame(.ping, flags: 0x1, stream: 0, payload: frame.payload)))
                    case .data where frame.stream == 1:
                        message += unpadded(frame)
                        if let outcome = decode(message) { return outcome }
                    case .headers where frame.stream == 1 && frame.flags & 0x1 != 0:
                        // Trailers (or a trailers-only error) ended the stream without an answer.
                        return decode(message) ?? .failure("rpc error: the server ended the call without a health status (unknown service \"\(service)\"?)")
                    case .rstStream where frame.stream == 1:
                        return .failure("rpc error: the server reset the stream")
                    case .goAway:
                        return .failure("rpc error: the server closed the connection (GOAWAY)")
                    default:
                        break
                    }
                }
            }
            return .failure("rpc error: the connection closed without an answer")
        }
    }

    /// `SERVING` (1) passes; other statuses fail naming them; nil while the message is incomplete.
    static func decode(_ message: [UInt8]) -> ProbeActions.Outcome? {
        guard message.count >= 5 else { return nil }
        // Built as UInt32 and bounded before it becomes an Int (on 32-bit boards a high first byte
        // would be a negative Int).
        let declared = UInt32(message[1]) << 24 | UInt32(message[2]) << 16 | UInt32(message[3]) << 8 | UInt32(message[4])
        guard declared <= 64 << 10 else { return .failure("rpc error: a health answer of \(declared) bytes") }
        let length = Int(declared)
        guard message.count >= 5 + length else { return nil }
        if message[0] != 0 { return .failure("rpc error: the health answer is compressed") }
        // HealthCheckResponse { ServingStatus status = 1; } — field 1, varint; absent means UNKNOWN (0).
        var status: UInt64 = 0
        var index = 5
        while index < 5 + length {
            let key = message[index]
            index += 1
            guard key == 0x08 else { break }
            var value: UInt64 = 0, shift: UInt64 = 0
            while index < 5 + length {
                let byte = message[index]
                index += 1
                value |= UInt64(byte & 0x7f) << shift
                shift += 7
                if byte & 0x80 == 0 { break }
            }
            status = value
        }
        let names: [UInt64: String] = [0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"]
        return status == 1 ? .success : .failure("service unhealthy (responded with \"\(names[status] ?? "\(status)")\")")
    }

    /// The connection preface, SETTINGS, and the Check call on stream 1.
    static func request(authority: String, service: String) -> [UInt8] {
        var bytes = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
        bytes += frame(.settings, flags: 0, stream: 0, payload: [])
        var block: [UInt8] = [0x83, 0x86]  // :method POST, :scheme http (static table)
        block += literal(nameIndex: 4, value: "/grpc.health.v1.Health/Check")  // :path
        block += literal(nameIndex: 1, value: authority)  // :authority
        block += literal(name: "content-type", value: "application/grpc")
        block += literal(name: "te", value: "trailers")
        block += literal(name: "user-agent", value: ProbeActions.userAgent)
        bytes += frame(.headers, flags: 0x4, stream: 1, payload: block)  // END_HEADERS
        // HealthCheckRequest { string service = 1; }
        let serviceBytes = Array(service.utf8)
        var body: [UInt8] = serviceBytes.isEmpty ? [] : [0x0a] + varint(UInt64(serviceBytes.count)) + serviceBytes
        body = [0, UInt8(body.count >> 24 & 0xff), UInt8(body.count >> 16 & 0xff), UInt8(body.count >> 8 & 0xff), UInt8(body.count & 0xff)] + body
        bytes += frame(.data, flags: 0x1, stream: 1, payload: body)  // END_STREAM
        return bytes
    }

    static func frame(_ type: FrameType, flags: UInt8, stream: UInt32, payload: [UInt8]) -> [UInt8] {
        let length = payload.count
        return [UInt8(length >> 16 & 0xff), UInt8(length >> 8 & 0xff), UInt8(length & 0xff), type.rawValue, flags,
                UInt8(stream >> 24 & 0x7f), UInt8(stream >> 16 & 0xff), UInt8(stream >> 8 & 0xff), UInt8(stream & 0xff)] + payload
    }

    /// HPACK integer with an N-bit prefix whose high bits are `pattern`.
    static func integer(_ value: Int, prefixBits: Int, pattern: UInt8) -> [UInt8] {
        let limit = (1 << prefixBits) - 1
        if value < limit { return [pattern | UInt8(value)] }
        var bytes = [pattern | UInt8(limit)]
        var rest = value - limit
        while rest >= 128 {
            bytes.append(UInt8(rest % 128 + 128))
            rest /= 128
        }
        bytes.append(UInt8(rest))
        return bytes
    }

    static func string(_ text: String) -> [UInt8] {
        let bytes = Array(text.utf8)
        return integer(bytes.count, prefixBits: 7, pattern: 0) + bytes  // no Huffman coding
    }

    /// Literal header field without indexing, name from the static table.
    static func literal(nameIndex: Int, value: String) -> [UInt8] { integer(nameIndex, prefixBits: 4, pattern: 0) + string(value) }

    /// Literal header field without indexing, new name.
    static func literal(name: String, value: String) -> [UInt8] { [0] + string(name) + string(value) }

    static func varint(_ value: UInt64) -> [UInt8] {
        var bytes: [UInt8] = []
        var rest = value
        while rest >= 0x80 {
            bytes.append(UInt8(rest & 0x7f) | 0x80)
            rest >>= 7
        }
        bytes.append(UInt8(rest))
        return bytes
    }

    static func unpadded(_ frame: FrameReader.Frame) -> [UInt8] {
        guard frame.flags & 0x8 != 0, let padding = frame.payload.first.map(Int.init), frame.payload.count > padding else { return frame.payload }
        return Array(frame.payload[1..<(frame.payload.count - padding)])
    }

    /// Splits the byte stream into HTTP/2 frames.
    struct FrameReader {
        struct Frame {
            var type: UInt8
            var flags: UInt8
            var stream: UInt32
            var payload: [UInt8]
        }

        /// Bytes received; those before `start` are already read (dropped in bulk, not per frame).
        private var pending: [UInt8] = []
        private var start = 0

        /// Bytes received and not yet returned as frames.
        var pendingCount: Int { pending.count - start }

        mutating func append(_ buffer: ByteBuffer) {
            if start > 0 && start >= pending.count / 2 {
                pending.removeFirst(start)
                start = 0
            }
            pending += buffer.readableBytesView
        }

        mutating func next() -> Frame? {
            guard pending.count - start >= 9 else { return nil }
            let length = Int(pending[start]) << 16 | Int(pending[start + 1]) << 8 | Int(pending[start + 2])
            guard pending.count - start >= 9 + length else { return nil }
            let stream = UInt32(pending[start + 5] & 0x7f) << 24 | UInt32(pending[start + 6]) << 16 | UInt32(pending[start + 7]) << 8 | UInt32(pending[start + 8])
            let frame = Frame(type: pending[start + 3], flags: pending[start + 4], stream: stream, payload: Array(pending[(start + 9)..<(start + 9 + length)]))
            start += 9 + length
            return frame
        }
    }
}
