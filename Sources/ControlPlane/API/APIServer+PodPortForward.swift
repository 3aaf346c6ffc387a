import HTTPServing
import KubeModel
import NIOCore

extension APIServer {
    /// The WebSocket subprotocol prefix of SPDY carried in WebSocket binary messages (kubectl
    /// 1.30 and later: `SPDY/3.1+portforward.k8s.io`).
    static let spdyTunnelingPrefix = "SPDY/3.1+"

    /// `pods/<name>/portforward`: the agent of the pod's node speaks SPDY/3.1
    /// (`portforward.k8s.io`) as a kubelet does. A SPDY client (kubectl before 1.30) is spliced
    /// to it; a WebSocket client offering `SPDY/3.1+portforward.k8s.io` gets the same SPDY bytes
    /// inside binary messages, as kube-apiserver tunnels them. Only the handshake reaches the
    /// agent; its refusal comes back as this server's error.
    func podPortForward(_ route: RequestRoute, _ request: HTTPRequest) async throws -> HTTPResponse {
        guard request.method == "GET" || request.method == "POST" else {
            throw APIError.methodNotAllowed("port-forward is a GET (WebSocket) or POST (SPDY) upgrade")
        }
        let (namespace, name, pod) = try routedPod(route)
        var ports: [UInt16] = []
        for item in request.queryItems where item.name == "ports" {
            for text in item.value.split(separator: ",", omittingEmptySubsequences: false) {
                guard let port = UInt16(String(text).trimmingWhitespace()), port > 0 else {
                    throw APIError.invalid(.pods, name, [StatusCause(reason: "FieldValueInvalid", message: "Invalid value: \"\(text)\": must be between 1 and 65535, inclusive", field: "ports")])
                }
                ports.append(port)
            }
            guard ports.count <= 64 else { throw APIError.badRequest("at most 64 ports may be forwarded at once") }
        }
        if let phase = pod.status?.phase, phase == .succeeded || phase == .failed {
            throw APIError.badRequest("cannot port-forward to a completed pod; current phase is \(phase.rawValue)")
        }
        let refusalKey = StreamRefusals.key(user: Self.requester?.user ?? "", namespace: namespace, pod: name)
        let upgrade = request.headers["upgrade"]?.lowercased()
        let spdy = upgrade == "spdy/3.1"
        // kubectl retries a refused WebSocket over SPDY: answer with the reason it was refused.
        if spdy, let refusal = streamRefusals.take(refusalKey) {
            throw APIError(code: refusal.status, reason: refusal.status == 404 ? "NotFound" : "BadRequest", message: refusal.message)
        }
        let offered: [String]
        if spdy {
            offered = (request.headers["x-stream-protocol-version"] ?? "").split(separator: ",").map { String($0).trimmingWhitespace() }
        } else {
            guard upgrade == "websocket" else {
                throw APIError.badRequest("port-forward is served over WebSocket (\(Self.spdyTunnelingPrefix)portforward.k8s.io) or SPDY/3.1 (portforward.k8s.io): an upgrade is required")
            }
            guard request.headers["sec-websocket-version"] == "13", let key = request.headers["sec-websocket-key"], key.utf8.count == 24 else {
                throw APIError.badRequest("a WebSocket upgrade needs Sec-WebSocket-Version 13 and a Sec-WebSocket-Key of 16 base64 bytes")
            }
            let protocols = (request.headers["sec-websocket-protocol"] ?? "").split(separator: ",").map { String($0).trimmingWhitespace() }
            offered = protocols.filter { $0.hasPrefix(Self.spdyTunnelingPrefix) && $0.hasSuffix(".k8s.io") }.map { String($0.dropFirst(Self.spdyTunnelingPrefix.count)) }
            if offered.isEmpty {
                // The WebSocket channel protocol (Python and JavaScript clients): the agent
                // speaks it itself, as a kubelet does; the ports come in the query.
                return try await podPortForwardChannels(namespace: namespace, name: name, pod: pod, ports: ports, request: request, protocols: protocols)
            }
        }
        guard !offered.isEmpty, offered.count <= 8, offered.allSatisfy({ !$0.isEmpty && $0.utf8.count <= 64 && !$0.contains("\r") && !$0.contains("\n") }) else {
            throw APIError.badRequest("port-forward needs X-Stream-Protocol-Version: portforward.k8s.io")
        }
        // With the UID: a pod recreated under the same name meanwhile is not the one reached.
        let uid = pod.metadata.uid ?? ""
        var path = "/portForward/" + ([namespace, name] + (uid.isEmpty ? [] : [uid])).map(PodLogOptions.percentEncoded).joined(separator: "/")
        if !ports.isEmpty { path += "?" + ports.map { "port=\($0)" }.joined(separator: "&") }
        // The handshake only: never the client's credentials or anything else it sent.
        let headers = [("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1"), ("X-Stream-Protocol-Version", offered.joined(separator: ", "))]
        let stream = try await openAgentUpgrade(pod, name: name, method: "POST", path: path, headers: headers, refusalKey: refusalKey)
        let chosen = stream.head.headers["x-stream-protocol-version"] ?? ""
        guard stream.head.headers["upgrade"]?.lowercased() == "spdy/3.1", offered.contains(chosen) else {
            stream.connection.close()
            throw APIError(code: 502, reason: "BadGateway", message: "the agent of node \(pod.spec?.nodeName ?? "") answered the port-forward upgrade without SPDY/3.1 and an offered stream protocol")
        }
        let agent = stream.connection, first = stream.head.rest
        if spdy {
            let answer = [("Upgrade", "SPDY/3.1"), ("Connection", "Upgrade"), ("X-Stream-Protocol-Version", chosen)]
            return HTTPResponse(status: 101, headers: answer, body: .upgrade { client in
                await AgentStream.splice(client, agent, agentFirst: first)
            })
        }
        let answer = [
            ("Upgrade", "websocket"), ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", WebSocketStream.acceptValue(forKey: request.headers["sec-websocket-key"] ?? "")),
            ("Sec-WebSocket-Protocol", Self.spdyTunnelingPrefix + chosen),
        ]
        return HTTPResponse(status: 101, headers: answer, body: .upgrade { client in
            await AgentStream.spliceTunneled(WebSocketStream(connection: client, role: .server), agent, agentFirst: first)
        })
    }
}

extension APIServer {
    /// `pods/<name>/portforward` over the WebSocket channel protocol (`v4.channel.k8s.io`, its
    /// base64 variant, or none): the upgrade goes to the agent with the ports and only the
    /// handshake's headers, and the two connections are spliced.
    func podPortForwardChannels(namespace: String, name: String, pod: Pod, ports: [UInt16], request: HTTPRequest, protocols: [String]) async throws -> HTTPResponse {
        guard !ports.isEmpty else { throw APIError.badRequest("a WebSocket port-forward names its ports: ports=8080[,...]") }
        // The raw header goes to the agent: no control characters in it at all.
        let raw = request.headers["sec-websocket-protocol"] ?? ""
        guard protocols.count <= 8, raw.utf8.count <= 600, !raw.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) else {
            throw APIError.badRequest("too many or too long WebSocket protocols")
        }
        let uid = pod.metadata.uid ?? ""
        let path = "/portForward/" + ([namespace, name] + (uid.isEmpty ? [] : [uid])).map(PodLogOptions.percentEncoded).joined(separator: "/")
            + "?" + ports.map { "port=\($0)" }.joined(separator: "&")
        var headers: [(String, String)] = [("Connection", "Upgrade"), ("Upgrade", "websocket")]
        for header in ["Sec-WebSocket-Key", "Sec-WebSocket-Version", "Sec-WebSocket-Protocol"] {
            if let value = request.headers[header.lowercased()] { headers.append((header, value)) }
        }
        let stream = try await openAgentUpgrade(pod, name: name, method: "GET", path: path, headers: headers, refusalKey: nil)
        var answer: [(String, String)] = [("Upgrade", "websocket"), ("Connection", "Upgrade")]
        for header in ["Sec-WebSocket-Accept", "Sec-WebSocket-Protocol"] {
            if let value = stream.head.headers[header.lowercased()] { answer.append((header, value)) }
        }
        let agent = stream.connection, first = stream.head.rest
        return HTTPResponse(status: 101, headers: answer, body: .upgrade { client in
            await AgentStream.splice(client, agent, agentFirst: first)
        })
    }
}

extension AgentStream {
    /// Copies a byte stream inside a WebSocket's binary messages (one message per read, as
    /// kube-apiserver's tunneling connection does) to the agent's plain byte stream and back.
    /// Either end closing closes the other.
    static func spliceTunneled(_ client: WebSocketStream, _ agent: ByteStreamConnection, agentFirst: ByteBuffer) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                if agentFirst.readableBytes > 0 { try? await client.send(.binary, Array(agentFirst.readableBytesView)) }
                while let buffer = try? await agent.read() {
                    do { try await client.send(.binary, Array(buffer.readableBytesView)) } catch { break }
                }
                // The agent ended: a closing handshake, then the client's answer ends the reader.
                await client.sendClose()
                client.connection.closeAfter(.seconds(5)).futureResult.whenComplete { _ in }
                agent.close()
            }
            group.addTask {
                do {
                    while let message = try await client.next() {
                        // Only binary messages carry the tunneled bytes (kubectl sends nothing else).
                        guard message.opcode == .binary else { break }
                        try await agent.write(message.payload)
                    }
                } catch {
                    // A broken or malformed WebSocket is the client going away.
                }
                agent.close()
                client.connection.close()
            }
        }
    }
}
