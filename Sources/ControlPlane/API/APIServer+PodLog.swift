import HTTPServing
import KubeClient
import KubeModel

extension APIServer {
    /// `pods/<name>/log`: proxied to the agent of the pod's node (its InternalIP and kubelet
    /// port from the Node), which authenticates this server by its kubelet client certificate.
    /// The agent must prove it is that node: its serving certificate chains to the cluster CA,
    /// covers the address and names `system:node:<node>` (as kube-apiserver with
    /// `--kubelet-certificate-authority`); a self-signed or another node's certificate is a 502.
    /// Only validated options reach the agent, in a URL built from escaped segments. With
    /// `follow` the lines are streamed as the agent sends them.
    func podLog(_ route: RequestRoute, _ request: HTTPRequest) async throws -> HTTPResponse {
        let namespace = try Self.namespace(of: route)
        let name = route.name ?? ""
        let options = try PodLogOptions(query: request.query, pod: name)
        guard let tree = try store.get(.pods, namespace: namespace, name: name) else { throw APIError.notFound(.pods, name) }
        let pod = try KubeJSON.decode(Pod.self, from: tree)
        let all = ((pod.spec?.initContainers ?? []) + (pod.spec?.containers ?? [])).map(\.name)
        let apps = (pod.spec?.containers ?? []).map(\.name)
        guard let container = options.container ?? (apps.count == 1 ? apps[0] : nil) else {
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
        guard let kubeletClient, let clusterCA = try? signer?.authority.certificatePEM else {
            throw APIError(code: 503, reason: "ServiceUnavailable", message: "this server has no client certificate for the nodes' agents")
        }
        var configuration = ClientConfiguration(
            server: "https://\(address.contains(":") ? "[\(address)]" : address):\(port)", certificateAuthorityPEM: Array(clusterCA.utf8),
            clientCertificatePEM: kubeletClient.certificatePEM, clientKeyPEM: kubeletClient.keyPEM)
        configuration.serverCertificateCheck = { KubeletServingIdentity.problem($0, node: nodeName) }
        let client = try KubeAPIClient(configuration: configuration)
        let segments = [namespace, name, container].map(PodLogOptions.percentEncoded)
        let query = options.agentQuery
        let path = "/containerLogs/" + segments.joined(separator: "/") + (query.isEmpty ? "" : "?" + query)
        let unreachable = { @Sendable (error: any Error) in
            APIError(code: 502, reason: "BadGateway", message: Self.agentFailure(nodeName, "\(address):\(port)", error))
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

    /// Why the agent could not be used, saying what to do when it is its certificate.
    static func agentFailure(_ node: String, _ endpoint: String, _ error: any Error) -> String {
        let text = "\(error)"
        if text.contains("CERTIFICATE_VERIFY_FAILED") || text.contains("refused the server's certificate") {
            return "the agent of node \(node) at \(endpoint) did not prove it is that node: its serving certificate must be signed by the cluster CA for system:node:\(node) and this address (a kubernetes.io/kubelet-serving CSR; see kubectl get csr): \(text)"
        }
        return "the agent of node \(node) at \(endpoint) cannot be reached: \(text)"
    }

    static func agentMessage(_ status: Int, _ body: [UInt8]) -> String {
        (try? KubeJSON.decode(Status.self, from: body))?.message ?? "the agent answered HTTP \(status)"
    }
}
