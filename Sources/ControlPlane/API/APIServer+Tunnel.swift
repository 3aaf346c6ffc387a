import HTTPServing
import KubeModel

extension APIServer {
    /// `GET /iotkube/v1/tunnel`: an agent's tunnel (a WebSocket with the tunnel subprotocol),
    /// for nodes only (a `system:node:<name>` client certificate in `system:nodes`). Through it
    /// this server reaches the node's endpoint for logs, exec and the rest when the board
    /// cannot be dialled (NAT). The tunnel is filed under the authenticated node name, so a
    /// node can carry only its own pods' streams.
    func agentTunnel(_ request: HTTPRequest, identity: RequestIdentity) throws -> HTTPResponse {
        guard request.method == "GET" else { throw APIError.methodNotAllowed("the tunnel is a GET (WebSocket) upgrade") }
        guard let node = NodeRestriction.nodeName(of: identity), !node.isEmpty else {
            throw APIError(code: 403, reason: "Forbidden", message: "forbidden: User \"\(identity.user)\" cannot open a node tunnel: only nodes (system:node:<name> in system:nodes) can",
                           details: StatusDetails())
        }
        let protocols = (request.headers["sec-websocket-protocol"] ?? "").split(separator: ",").map { String($0).trimmingWhitespace() }
        guard request.headers["upgrade"]?.lowercased() == "websocket", let key = request.headers["sec-websocket-key"], !key.isEmpty,
              protocols.contains(TunnelMux.subprotocol) else {
            throw APIError.badRequest("the tunnel is a WebSocket upgrade with the subprotocol \(TunnelMux.subprotocol)")
        }
        let headers = [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", WebSocketStream.acceptValue(forKey: key)),
                       ("Sec-WebSocket-Protocol", TunnelMux.subprotocol)]
        let tunnels = agentTunnels, logger = self.logger
        return HTTPResponse(status: 101, headers: headers, body: .upgrade { connection in
            let mux = TunnelMux(socket: WebSocketStream(connection: connection, role: .server), role: .opener)
            if let older = tunnels.register(node, mux) {
                older.end("the node connected a newer tunnel")
                logger.warning("node \(node) connected a tunnel while its older one was open: the older one is closed (a board that reconnected before its old connection was noticed dead, two boards with one identity, or a copied certificate)")
            } else {
                logger.info("node \(node) connected its tunnel")
            }
            let reason = await mux.run()
            tunnels.unregister(node, mux)
            logger.info("the tunnel of node \(node) ended: \(reason)")
        })
    }
}
