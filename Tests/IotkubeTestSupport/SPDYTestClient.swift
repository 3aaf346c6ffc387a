import HTTPServing
import NIOCore

/// A SPDY client for the tests, with its own header compression context.
public struct SPDYTestClient {
    public let connection: ByteStreamConnection
    let deflater: SPDYHeaderCompression

    public init(connection: ByteStreamConnection) throws {
        self.connection = connection
        deflater = try SPDYHeaderCompression(compress: true)
    }

    public func open(_ id: UInt32, _ type: String, padding: Int = 0) async throws {
        var headers = [("streamtype", type)]
        if padding > 0 { headers.append(("x-padding", String(repeating: "a", count: padding))) }
        try await open(id, headers: headers)
    }

    /// Opens a stream with these headers.
    public func open(_ id: UInt32, headers: [(String, String)]) async throws {
        try await open(id, rawBlock: SPDYHeaderCompression.encode(headers))
    }

    /// Opens a stream with `rawBlock` as its (uncompressed) header block.
    public func open(_ id: UInt32, rawBlock: [UInt8]) async throws {
        let block = try deflater.run(rawBlock)
        try await connection.write(ByteBuffer(bytes: SPDYFrame.synStream(stream: id, headerBlock: block, fin: false).encoded))
    }

    private let reader = Buffered()

    public func frame() async throws -> SPDYFrame? {
        while true {
            if let frame = try reader.take() { return frame }
            guard let more = try await connection.read() else { return nil }
            reader.append(more)
        }
    }

    /// The stream numbers of the next `count` SYN_REPLY frames.
    public func replies(_ count: Int) async throws -> [UInt32] {
        var ids: [UInt32] = []
        while ids.count < count, let frame = try await frame() {
            if case .synReply(let id, _, _) = frame { ids.append(id) }
        }
        return ids
    }

    final class Buffered: @unchecked Sendable {
        var pending = ByteBuffer()
        func append(_ buffer: ByteBuffer) {
            var buffer = buffer
            pending.writeBuffer(&buffer)
        }
        func take() throws -> SPDYFrame? {
            guard pending.readableBytes >= 8, let header = pending.getBytes(at: pending.readerIndex, length: 8) else { return nil }
            let length = Int(header[5]) << 16 | Int(header[6]) << 8 | Int(header[7])
            guard pending.readableBytes >= 8 + length else { return nil }
            pending.moveReaderIndex(forwardBy: 8)
            let payload = pending.readBytes(length: length)!
            return try SPDYFrame.decode(header: header, payload: payload)
        }
    }
}
