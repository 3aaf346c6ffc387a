import HTTPServing
import KubeClient
import KubeModel

extension APIServer {
    /// `nodes/<name>/proxy/<path>`: a GET passed to the node's agent endpoint (`/metrics`,
    /// `/metrics/resource`, `/stats/summary`, `/healthz`, `/containerLogs/...`), through the
    /// node's tunnel when it has one. Only GET: the kubelet API's upgrades (exec, attach) are not
    /// reachable this way. The path's segments are passed percent-encoded, `..` refused.
    func nodeProxy(_ route: RequestRoute, _ request: HTTPRequest) async throws -> HTTPResponse {
        guard request.method == "GET" else { throw APIError.methodNotAllowed("the node proxy serves GET only") }
        guard let node = route.name, !node.isEmpty else { throw APIError.notFound(.nodes, "") }
        guard !route.proxyPath.contains(where: { $0 == ".." || $0 == "." }) else {
            throw APIError.badRequest("the proxied path may not contain . or .. segments")
        }
        let target = try agentTarget(node: node, of: nil)
        let client = try KubeAPIClient(configuration: target.configuration)
        var path = "/" + route.proxyPath.map(PodLogOptions.percentEncoded).joined(separator: "/")
        let query = request.queryItems.map { "\(PodLogOptions.percentEncoded($0.name))=\(PodLogOptions.percentEncoded($0.value))" }
        if !query.isEmpty { path += "?" + query.joined(separator: "&") }
        let status: Int, body: [UInt8]
        do { (status, body) = try await client.getRaw(path) } catch {
            throw APIError(code: 502, reason: "BadGateway", message: Self.agentFailure(node, target.route, error))
        }
        // The agent answers JSON (status objects, /stats/summary) or text (metrics, logs).
        let type = body.first == UInt8(ascii: "{") ? "application/json" : "text/plain; charset=utf-8"
        // The node chooses the status: only final answers pass (a 101 or 1xx is a bad gateway).
        return HTTPResponse(status: (200...599).contains(status) ? status : 502, headers: [("Content-Type", type)], body: .bytes(body))
    }
}
