import HTTPServing
import KubeClient
import KubeModel

extension APIServer {
    /// `pods/<name>/log`: proxied to the agent of the pod's node (``agentTarget(of:name:)``),
    /// which authenticates this server by its kubelet client certificate.
    /// Only validated options reach the agent, in a URL built from escaped segments. With
    /// `follow` the lines are streamed as the agent sends them.
    func podLog(_ route: RequestRoute, _ request: HTTPRequest) async throws -> HTTPResponse {
        let (namespace, name, pod) = try routedPod(route)
        let options = try PodLogOptions(query: request.query, pod: name)
        let container = try Self.container(options.container, of: pod, name: name)
        let target = try agentTarget(of: pod, name: name)
        let (nodeName, agentRoute, configuration) = (target.nodeName, target.route, target.configuration)
        let client = try KubeAPIClient(configuration: configuration)
        let segments = [namespace, name, container].map(PodLogOptions.percentEncoded)
        let query = options.agentQuery
        let path = "/containerLogs/" + segments.joined(separator: "/") + (query.isEmpty ? "" : "?" + query)
        let unreachable = { @Sendable (error: any Error) in
            APIError(code: 502, reason: "BadGateway", message: Self.agentFailure(nodeName, agentRoute, error))
        }
        let headers = [("Content-Type", "text/plain")]
        if options.follow {
            return HTTPResponse(status: 200, headers: headers, body: .stream { writer in
                let status: Int, errorBody: [UInt8]
                do {
                    (status, errorBody) = try await client.streamLines(path) { line in try await writer.write(line + [0x0A]) }
                } catch {
                    try await writer.write(Array(unreachable(error).message.utf8) + [0x0A])
                    return
                }
                if status != 200 { try await writer.write(Array(Self.agentMessage(status, errorBody).utf8) + [0x0A]) }
            })
        }
        let status: Int, body: [UInt8]
        do { (status, body) = try await client.getRaw(path) } catch { throw unreachable(error) }
        guard status == 200 else { throw APIError(code: status, reason: status == 404 ? "NotFound" : "BadRequest", message: Self.agentMessage(status, body)) }
        return HTTPResponse(status: 200, headers: headers, body: .bytes(body))
    }
}
