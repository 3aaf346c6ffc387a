import HTTPServing
import KubeModel

extension APIServer {
    /// `pods/<name>/exec` and `pods/<name>/attach` (the same without a command: the container's
    /// own process): a WebSocket (`v5`/`v4.channel.k8s.io`) or SPDY/3.1 upgrade proxied to
    /// the agent of the pod's node, which runs the command in the container. Only the validated
    /// options and the upgrade's handshake headers reach the agent; the agent's 101 answer (or its refusal,
    /// as this server's error) goes back to the client, and the two connections are spliced.
    func podExec(_ route: RequestRoute, _ request: HTTPRequest) async throws -> HTTPResponse {
        let kind = route.subresource == "attach" ? "attach" : "exec"
        guard request.method == "GET" || request.method == "POST" else {
            throw APIError.methodNotAllowed("\(kind) is a GET (WebSocket) or POST (SPDY) upgrade")
        }
        let (namespace, name, pod) = try routedPod(route)
        let container = try Self.container(request.query["container"], of: pod, name: name)
        if let phase = pod.status?.phase, phase == .succeeded || phase == .failed {
            throw APIError.badRequest("cannot \(kind == "exec" ? "exec into" : "attach to") a container in a completed pod; current phase is \(phase.rawValue)")
        }
        let command = kind == "exec" ? request.queryItems.filter { $0.name == "command" }.map(\.value) : []
        if kind == "exec" {
            guard !command.isEmpty, !command[0].isEmpty else { throw APIError.badRequest("you must specify a command (command=...)") }
        }
        let refusalKey = StreamRefusals.key(user: Self.requester?.user ?? "", namespace: namespace, pod: name)
        let upgrade = request.headers["upgrade"]?.lowercased()
        let spdy = upgrade == "spdy/3.1"
        // kubectl retries a refused WebSocket over SPDY: answer with the reason it was refused.
        if spdy, let refusal = streamRefusals.take(refusalKey) {
            throw APIError(code: refusal.status, reason: refusal.status == 404 ? "NotFound" : "BadRequest", message: refusal.message)
        }
        guard upgrade == "websocket" || spdy else {
            throw APIError.badRequest("\(kind) is served over WebSocket (v5.channel.k8s.io, v4.channel.k8s.io) or SPDY/3.1 (v4.channel.k8s.io): an upgrade is required")
        }
        func flag(_ name: String) -> Bool { request.query[name] == "true" || request.query[name] == "1" }
        var items = command.map { ("command", $0) }
        for (clientName, agentName) in [("stdin", "input"), ("stdout", "output"), ("stderr", "error"), ("tty", "tty")] where flag(clientName) {
            items.append((agentName, "1"))
        }
        let query = items.map { "\($0.0)=\(PodLogOptions.percentEncoded($0.1))" }.joined(separator: "&")
        let path = "/\(kind)/" + [namespace, name, container].map(PodLogOptions.percentEncoded).joined(separator: "/") + "?" + query
        // The handshake only: never the client's credentials or anything else it sent.
        var headers: [(String, String)] = [("Connection", "Upgrade"), ("Upgrade", spdy ? "SPDY/3.1" : "websocket")]
        for header in spdy ? ["X-Stream-Protocol-Version"] : ["Sec-WebSocket-Key", "Sec-WebSocket-Version", "Sec-WebSocket-Protocol"] {
            if let value = request.headers[header.lowercased()] { headers.append((header, value)) }
        }
        let stream = try await openAgentUpgrade(pod, name: name, method: spdy ? "POST" : "GET", path: path, headers: headers, refusalKey: refusalKey)
        var answer: [(String, String)] = [("Upgrade", spdy ? "SPDY/3.1" : "websocket"), ("Connection", "Upgrade")]
        for header in spdy ? ["X-Stream-Protocol-Version"] : ["Sec-WebSocket-Accept", "Sec-WebSocket-Protocol"] {
            if let value = stream.head.headers[header.lowercased()] { answer.append((header, value)) }
        }
        let agent = stream.connection, first = stream.head.rest
        return HTTPResponse(status: 101, headers: answer, body: .upgrade { client in
            await AgentStream.splice(client, agent, agentFirst: first)
        })
    }
}
