import HTTPServing
import KubeClient
import KubeModel

/// Where the agent of a pod's node listens, and how this server reaches it.
struct AgentTarget: Sendable {
    var nodeName: String
    var address: String
    var port: Int
    /// The cluster CA, this server's kubelet client certificate, and the check that the agent's
    /// serving certificate names `system:node:<node>`.
    var configuration: ClientConfiguration

    /// How the agent is reached, for messages: "at <address>:<port>" or "through its tunnel".
    var route: String { configuration.dialer == nil ? "at \(address):\(port)" : "through its tunnel" }
}

extension APIServer {
    /// The pod named by the route (404 when missing).
    func routedPod(_ route: RequestRoute) throws -> (namespace: String, name: String, pod: Pod) {
        let namespace = try Self.namespace(of: route)
        let name = route.name ?? ""
        guard let tree = try store.get(.pods, namespace: namespace, name: name) else { throw APIError.notFound(.pods, name) }
        return (namespace, name, try KubeJSON.decode(Pod.self, from: tree))
    }

    /// The container a log or stream asks for: the one named, or the pod's only app container.
    static func container(_ requested: String?, of pod: Pod, name: String) throws -> String {
        let all = ((pod.spec?.initContainers ?? []) + (pod.spec?.containers ?? [])).map(\.name)
        let apps = (pod.spec?.containers ?? []).map(\.name)
        guard let container = requested.flatMap({ $0.isEmpty ? nil : $0 }) ?? (apps.count == 1 ? apps[0] : nil) else {
            throw APIError.badRequest("a container name must be specified for pod \(name), choose one of: [\(apps.joined(separator: " "))]")
        }
        guard all.contains(container) else { throw APIError.badRequest("container \(container) is not valid for pod \(name)") }
        return container
    }

    /// The agent of the node `pod` is bound to (its InternalIP and kubelet port from the Node).
    /// The agent must prove it is that node: its serving certificate chains to the cluster CA,
    /// covers the address and names `system:node:<node>` (as kube-apiserver with
    /// `--kubelet-certificate-authority`); a self-signed or another node's certificate is a 502.
    func agentTarget(of pod: Pod, name: String) throws -> AgentTarget {
        guard let nodeName = pod.spec?.nodeName, !nodeName.isEmpty else {
            throw APIError.badRequest("pod \(name) is not scheduled to a node yet")
        }
        return try agentTarget(node: nodeName, of: "pod \(name)")
    }

    /// The agent of node `nodeName` (``agentTarget(of:name:)``); `what` names the node's role in errors.
    func agentTarget(node nodeName: String, of what: String?) throws -> AgentTarget {
        guard let nodeTree = try store.get(.nodes, namespace: "", name: nodeName), let node = try? KubeJSON.decode(Node.self, from: nodeTree) else {
            throw APIError(code: 404, reason: "NotFound", message: "node \"\(nodeName)\"\(what.map { " of \($0)" } ?? "") is not registered")
        }
        let addresses = node.status?.addresses ?? []
        let dialer = agentTunnels.dialer(for: nodeName)
        var address = (addresses.first { $0.type == "InternalIP" } ?? addresses.first)?.address
        var port = node.status?.daemonEndpoints?.kubeletEndpoint?.port
        if dialer != nil, address == nil || port == nil { (address, port) = ("127.0.0.1", 10250) }  // names only: the tunnel is the way
        guard let address, let port, port > 0, port <= 65535 else {
            throw APIError(code: 503, reason: "ServiceUnavailable", message: "node \"\(nodeName)\" reports no address and port for its agent, and has no tunnel")
        }
        guard let kubeletClient, let clusterCA = try? signer?.authority.certificatePEM else {
            throw APIError(code: 503, reason: "ServiceUnavailable", message: "this server has no client certificate for the nodes' agents")
        }
        var configuration = ClientConfiguration(
            server: "https://\(address.contains(":") ? "[\(address)]" : address):\(port)", certificateAuthorityPEM: Array(clusterCA.utf8),
            clientCertificatePEM: kubeletClient.certificatePEM, clientKeyPEM: kubeletClient.keyPEM)
        configuration.serverCertificateCheck = { KubeletServingIdentity.problem($0, node: nodeName) }
        configuration.dialer = dialer
        return AgentTarget(nodeName: nodeName, address: address, port: Int(port), configuration: configuration)
    }

    /// Why the agent could not be used, saying what to do when it is its certificate.
    static func agentFailure(_ node: String, _ route: String, _ error: any Error) -> String {
        let text = "\(error)"
        if text.contains("CERTIFICATE_VERIFY_FAILED") || text.contains("refused the server's certificate") {
            return "the agent of node \(node) \(route) did not prove it is that node: its serving certificate must be signed by the cluster CA for system:node:\(node) and this address (a kubernetes.io/kubelet-serving CSR; see kubectl get csr): \(text)"
        }
        return "the agent of node \(node) \(route) cannot be reached: \(text)"
    }

    static func agentMessage(_ status: Int, _ body: [UInt8]) -> String {
        (try? KubeJSON.decode(Status.self, from: body))?.message ?? "the agent answered HTTP \(status)"
    }
}

extension APIServer {
    /// Opens an upgrade to the agent of `pod`'s node and reads its answer: the stream after a
    /// 101; the agent's refusal (or a failure to reach it) as this server's error, remembered
    /// under `refusalKey` for kubectl's retry over SPDY. Only a 4xx/5xx refusal passes
    /// through; anything else from the agent is a bad gateway.
    func openAgentUpgrade(_ pod: Pod, name: String, method: String, path: String, headers: [(String, String)], refusalKey: String?) async throws -> AgentStream {
        let target = try agentTarget(of: pod, name: name)
        let stream: AgentStream
        do {
            stream = try await AgentStream.open(target, method: method, path: path, headers: headers)
        } catch {
            let message = Self.agentFailure(target.nodeName, target.route, error)
            if let refusalKey { streamRefusals.record(refusalKey, status: 502, message: message) }
            throw APIError(code: 502, reason: "BadGateway", message: message)
        }
        guard stream.head.status == 101 else {
            let body = await stream.refusalBody()
            let status = (400...599).contains(stream.head.status) ? stream.head.status : 502
            let message = Self.agentMessage(status, body)
            if let refusalKey { streamRefusals.record(refusalKey, status: status, message: message) }
            throw APIError(code: status, reason: status == 404 ? "NotFound" : status == 403 ? "Forbidden" : "BadRequest", message: message)
        }
        return stream
    }
}
