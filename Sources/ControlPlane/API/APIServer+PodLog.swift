import HTTPServing
import KubeClient
import KubeModel

extension APIServer {
    /// `pods/<name>/log`: proxied to the agent of the pod's node (its InternalIP and kubelet
    /// port from the Node), which authenticates this server by its kubelet client certificate.
    /// With `follow` the lines are streamed as the agent sends them.
    func podLog(_ route: RequestRoute, _ request: HTTPRequest) async throws -> HTTPResponse {
        let namespace = try Self.namespace(of: route)
        let name = route.name ?? ""
        guard let tree = try store.get(.pods, namespace: namespace, name: name) else { throw APIError.notFound(.pods, name) }
        let pod = try KubeJSON.decode(Pod.self, from: tree)
        let all = ((pod.spec?.initContainers ?? []) + (pod.spec?.containers ?? [])).map(\.name)
        let apps = (pod.spec?.containers ?? []).map(\.name)
        guard let container = request.query["container"] ?? (apps.count == 1 ? apps[0] : nil) else {
            throw APIError.badRequest("a container name must be specified for pod \(name), choose one of: [\(apps.joined(separator: " "))]")
        }
        guard all.contains(container) else { throw APIError.badRequest("container \(container) is not valid for pod \(name)") }
        guard let nodeName = pod.spec?.nodeName, !nodeName.isEmpty else {
            throw APIError.badRequest("pod \(name) is not scheduled to a node yet")
        }
        guard let nodeTree = try store.get(.nodes, namespace: "", name: nodeName), let node = try? KubeJSON.decode(Node.self, from: nodeTree) else {
            throw APIError(code: 404, reason: "NotFound", message: "node \"\(nodeName)\" of pod \(name) is not registered")
        }
        let addresses = node.status?.addresses ?? []
        guard let address = (addresses.first { $0.type == "InternalIP" } ?? addresses.first)?.address,
              let port = node.status?.daemonEndpoints?.kubeletEndpoint?.port, port > 0 else {
            throw APIError(code: 503, reason: "ServiceUnavailable", message: "node \"\(nodeName)\" reports no address and port for its agent")
        }
        guard let kubeletClient else {
            throw APIError(code: 503, reason: "ServiceUnavailable", message: "this server has no client certificate for the nodes' agents")
        }
        var configuration = ClientConfiguration(
            server: "https://\(address.contains(":") ? "[\(address)]" : address):\(port)",
            clientCertificatePEM: kubeletClient.certificatePEM, clientKeyPEM: kubeletClient.keyPEM)
        // As the kube-apiserver without --kubelet-certificate-authority: the agents' serving
        // certificates are their own; this server proves who it is with its client certificate.
        configuration.insecureSkipVerify = true
        let client = try KubeAPIClient(configuration: configuration)
        var query: [String] = []
        for key in ["follow", "previous", "timestamps", "tailLines", "limitBytes", "sinceSeconds"] {
            if let value = request.query[key] { query.append("\(key)=\(value)") }
        }
        let path = "/containerLogs/\(namespace)/\(name)/\(container)" + (query.isEmpty ? "" : "?" + query.joined(separator: "&"))
        let headers = [("Content-Type", "text/plain")]
        if request.query["follow"] == "true" || request.query["follow"] == "1" {
            return HTTPResponse(status: 200, headers: headers, body: .stream { writer in
                let (status, errorBody) = try await client.streamLines(path) { line in try await writer.write(line + [0x0A]) }
                if status != 200 { try await writer.write(Array(Self.agentMessage(status, errorBody).utf8) + [0x0A]) }
            })
        }
        let status: Int, body: [UInt8]
        do { (status, body) = try await client.getRaw(path) } catch {
            throw APIError(code: 502, reason: "BadGateway", message: "the agent of node \(nodeName) at \(address):\(port) cannot be reached: \(error)")
        }
        guard status == 200 else { throw APIError(code: status, reason: status == 404 ? "NotFound" : "BadRequest", message: Self.agentMessage(status, body)) }
        return HTTPResponse(status: 200, headers: headers, body: .bytes(body))
    }

    static func agentMessage(_ status: Int, _ body: [UInt8]) -> String {
        (try? KubeJSON.decode(Status.self, from: body))?.message ?? "the agent answered HTTP \(status)"
    }
}
