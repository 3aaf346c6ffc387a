import HTTPClientCore
import HTTPServing
import KubeClient
import KubeModel
import NIOCore

/// An upgrade request to an agent's streaming endpoint (exec, attach, port-forward) over a raw
/// TLS connection: the request head goes out, the response head comes back, and after a 101 the
/// connection is a byte stream to splice with the client's.
struct AgentStream: Sendable {
    /// A response head larger than this is refused (the agent is not trusted to be small).
    static let maximumHeadSize = 16 << 10

    struct ResponseHead: Sendable {
        var status: Int
        /// Names lower-cased.
        var headers: [String: String]
        /// Bytes that arrived after the head (the start of the stream or of an error body).
        var rest: ByteBuffer
    }

    let connection: ByteStreamConnection
    let head: ResponseHead

    /// Connects to the agent, sends `GET path` with the upgrade `headers`, and reads the answer's head.
    static func open(_ target: AgentTarget, path: String, headers: [(String, String)]) async throws -> AgentStream {
        let (host, port) = try target.configuration.hostAndPort()
        let check = target.configuration.serverCertificateCheck
        let connection = try await ByteStreamConnection.connect(
            host: host, port: port, tls: try target.configuration.tlsContext(), serverHostname: HTTPClientConnection.serverName(for: host),
            connectTimeout: .seconds(10)
        ) { pipeline in
            if let check { try pipeline.addHandler(ServerCertificateCheck(check: check)) }
        }
        // An agent that accepts and never finishes TLS or never answers is dropped.
        let deadline = connection.closeAfter(.seconds(30))
        defer { deadline.cancel() }
        do {
            let host = target.address.contains(":") ? "[\(target.address)]:\(target.port)" : target.endpoint
            var request = "GET \(path) HTTP/1.1\r\nHost: \(host)\r\n"
            for (name, value) in headers { request += "\(name): \(value)\r\n" }
            request += "\r\n"
            try await connection.write(Array(request.utf8))
            let head = try await readHead(connection)
            return AgentStream(connection: connection, head: head)
        } catch {
            connection.close()
            throw error
        }
    }

    struct BadResponse: Error, CustomStringConvertible {
        var description: String
    }

    /// Reads up to the blank line that ends the head; the status and headers.
    static func readHead(_ connection: ByteStreamConnection) async throws -> ResponseHead {
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
                    throw BadResponse(description: "the agent's answer is not HTTP/1.1")
                }
                var headers: [String: String] = [:]
                for line in lines {
                    guard let colon = line.firstIndex(of: ":") else { continue }
                    headers[line[..<colon].lowercased()] = String(line[line.index(after: colon)...]).trimmingWhitespace()
                }
                return ResponseHead(status: status, headers: headers, rest: buffer.slice())
            }
            guard buffer.readableBytes < maximumHeadSize else { throw BadResponse(description: "the agent's response head exceeds \(maximumHeadSize) bytes") }
            guard var more = try await connection.read() else { throw BadResponse(description: "the agent closed the connection before answering") }
            buffer.writeBuffer(&more)
        }
    }

    /// The body of a refusal (up to its Content-Length, bounded), for the error message.
    func refusalBody() async -> [UInt8] {
        let deadline = connection.closeAfter(.seconds(10))
        defer { deadline.cancel() }
        var body = head.rest
        let length = min(Int(head.headers["content-length"] ?? "") ?? 0, 64 << 10)
        while body.readableBytes < length, var more = try? await connection.read() { body.writeBuffer(&more) }
        connection.close()
        return body.readBytes(length: min(length, body.readableBytes)) ?? []
    }

    /// Copies both ways. The client ending (or failing) closes the agent's side; what the agent
    /// already sent still reaches the client (its last message is the exit status), and the
    /// agent's end closes the client.
    static func splice(_ client: ByteStreamConnection, _ agent: ByteStreamConnection, agentFirst: ByteBuffer) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                if agentFirst.readableBytes > 0 { try? await client.write(agentFirst) }
                while let buffer = try? await agent.read() { do { try await client.write(buffer) } catch { break } }
                client.close()
                agent.close()
            }
            group.addTask {
                while let buffer = try? await client.read() { do { try await agent.write(buffer) } catch { return } }
                agent.close()
            }
        }
    }
}

