import HTTPClientCore
import HTTPServing
import KubeClient
import KubeModel
import NIOCore

/// An upgrade request to an agent's streaming endpoint (exec, attach, port-forward) over a raw
/// TLS connection: the request head goes out, the response head comes back, and after a 101 the
/// connection is a byte stream to splice with the client's.
struct AgentStream: Sendable {
    typealias ResponseHead = UpgradeResponseHead

    let connection: ByteStreamConnection
    let head: ResponseHead

    /// Connects to the agent, sends `method path` (GET for WebSocket, POST for SPDY) with the upgrade `headers`, and reads the answer's head.
    static func open(_ target: AgentTarget, method: String = "GET", path: String, headers: [(String, String)]) async throws -> AgentStream {
        let (host, port) = try target.configuration.hostAndPort()
        let check = target.configuration.serverCertificateCheck
        let connection = try await ByteStreamConnection.connect(
            host: host, port: port, tls: try target.configuration.tlsContext(), serverHostname: HTTPClientConnection.serverName(for: host),
            connectTimeout: .seconds(10), dialer: target.configuration.dialer
        ) { pipeline in
            if let check { try pipeline.addHandler(ServerCertificateCheck(check: check)) }
        }
        // An agent that accepts and never finishes TLS or never answers is dropped.
        let deadline = connection.closeAfter(.seconds(30))
        defer { deadline.cancel() }
        do {
            let host = target.address.contains(":") ? "[\(target.address)]:\(target.port)" : "\(target.address):\(target.port)"
            var request = "\(method) \(path) HTTP/1.1\r\nHost: \(host)\r\n"
            for (name, value) in headers { request += "\(name): \(value)\r\n" }
            request += "\r\n"
            try await connection.write(Array(request.utf8))
            let head = try await UpgradeResponseHead.read(from: connection, peer: "the agent")
            return AgentStream(connection: connection, head: head)
        } catch {
            connection.close()
            throw error
        }
    }

    /// The body of a refusal, for the error message.
    func refusalBody() async -> [UInt8] { await head.refusalBody(connection) }

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

