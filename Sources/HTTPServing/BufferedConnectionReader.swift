import NIOCore

/// A byte stream's bytes buffered for a frame parser (WebSocket, SPDY): one reader at a time.
class BufferedConnectionReader: @unchecked Sendable {
    let connection: ByteStreamConnection
    var pending: ByteBuffer

    init(connection: ByteStreamConnection, pending: ByteBuffer) {
        self.connection = connection
        self.pending = pending
    }

    /// Reads until `count` bytes wait; false when the connection ended first.
    func fill(_ count: Int) async throws -> Bool {
        while pending.readableBytes < count {
            guard var more = try await connection.read() else { return false }
            pending.writeBuffer(&more)
        }
        return true
    }
}
