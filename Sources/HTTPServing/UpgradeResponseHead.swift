import KubeModel
import NIOCore

/// The head of an HTTP/1.1 response read off a raw byte stream (an upgrade answer from a peer
/// that is not trusted to be small or well formed).
public struct UpgradeResponseHead: Sendable {
    /// A head larger than this is refused.
    public static let maximumSize = 16 << 10

    public var status: Int
    /// Names lower-cased.
    public var headers: [String: String]
    /// Bytes that arrived after the head (the start of the stream or of an error body).
    public var rest: ByteBuffer

    public struct BadResponse: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// Reads up to the blank line that ends the head; `peer` names the other side in errors.
    public static func read(from connection: ByteStreamConnection, peer: String) async throws -> UpgradeResponseHead {
        var buffer = ByteBuffer()
        let terminator: [UInt8] = [13, 10, 13, 10]
        while true {
            let bytes = buffer.readableBytesView
            if let end = bytes.firstRange(of: terminator) {
                let headText = String(decoding: bytes[bytes.startIndex..<end.lowerBound], as: UTF8.self)
                buffer.moveReaderIndex(to: end.upperBound)
                var lines = headText.split(separator: "\r\n", omittingEmptySubsequences: false).map(String.init)
                let statusLine = lines.removeFirst().split(separator: " ", maxSplits: 2)
                guard statusLine.count >= 2, statusLine[0].hasPrefix("HTTP/1."), let status = Int(statusLine[1]), (100...599).contains(status) else {
                    throw BadResponse(description: "\(peer)'s answer is not HTTP/1.1")
                }
                var headers: [String: String] = [:]
                for line in lines {
                    guard let colon = line.firstIndex(of: ":") else { continue }
                    headers[line[..<colon].lowercased()] = String(line[line.index(after: colon)...]).trimmingWhitespace()
                }
                return UpgradeResponseHead(status: status, headers: headers, rest: buffer.slice())
            }
            guard buffer.readableBytes < maximumSize else { throw BadResponse(description: "\(peer)'s response head exceeds \(maximumSize) bytes") }
            guard var more = try await connection.read() else { throw BadResponse(description: "\(peer) closed the connection before answering") }
            buffer.writeBuffer(&more)
        }
    }

    /// The body of a refusal (up to its Content-Length, at most 64 KiB, within 10 s); closes the connection.
    public func refusalBody(_ connection: ByteStreamConnection) async -> [UInt8] {
        let deadline = connection.closeAfter(.seconds(10))
        defer { deadline.cancel() }
        var body = rest
        let length = min(Int(headers["content-length"] ?? "") ?? 0, 64 << 10)
        while body.readableBytes < length, var more = try? await connection.read() { body.writeBuffer(&more) }
        connection.close()
        return body.readBytes(length: min(length, body.readableBytes)) ?? []
    }
}
