import CRuntime
import HTTPServing
import KubeModel
import NIOCore
import SystemSupport

extension AgentEndpoint {
    /// `/portForward/<namespace>/<pod>[/<uid>]`: `kubectl port-forward` to ports on the pod's
    /// loopback, over SPDY/3.1 (`portforward.k8s.io`, which kube-apiserver speaks to kubelets and
    /// iotkube-server carries for WebSocket clients too; see ``PortForwardSession``) or the
    /// WebSocket channel protocol with the ports in the query (``WebSocketPortForward``). For
    /// the API server only, as exec is.
    func portForward(_ request: HTTPRequest) -> HTTPResponse {
        let failure = Self.refusal
        guard request.clientCertificate?.groups.contains("system:masters") == true else {
            return failure(403, "port-forward is served to the API server only")
        }
        guard request.method == "GET" || request.method == "POST" else { return failure(405, "port-forward is a POST with an upgrade") }
        guard let runtime else { return failure(404, "this agent runs no containers") }
        let parts = request.path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        guard parts.count == 3 || parts.count == 4 else { return failure(404, "use /portForward/<namespace>/<pod>[/<uid>]") }
        let (namespace, pod) = (parts[1], parts[2])
        let upgrade = request.headers["upgrade"]?.lowercased()
        guard request.headers["connection"]?.lowercased().contains("upgrade") == true, upgrade == "spdy/3.1" || upgrade == "websocket" else {
            return failure(400, "port-forward is served over SPDY/3.1 (Upgrade: SPDY/3.1, \(Self.portForwardProtocol)) or a WebSocket (\(WebSocketPortForward.protocols.joined(separator: ", ")))")
        }
        // A WebSocket names its ports in the query; SPDY opens a stream pair per connection.
        var ports: [UInt16] = []
        var channelProtocol: String?
        if upgrade == "websocket" {
            for item in request.queryItems where item.name == "port" {
                guard let port = UInt16(item.value), port > 0 else { return failure(400, "invalid port \"\(item.value)\": ports are 1 to 65535") }
                ports.append(port)
            }
            guard !ports.isEmpty else { return failure(400, "query parameter \"port\" is required") }
            guard ports.count <= WebSocketPortForward.maximumPorts else { return failure(400, "at most \(WebSocketPortForward.maximumPorts) ports per request") }
            guard request.headers["sec-websocket-version"] == "13", request.headers["sec-websocket-key"]?.utf8.count == 24 else {
                return failure(400, "a WebSocket upgrade needs Sec-WebSocket-Version 13 and a Sec-WebSocket-Key of 16 base64 bytes")
            }
            let offered = (request.headers["sec-websocket-protocol"] ?? "").split(separator: ",").map { String($0).trimmingWhitespace() }
            if !offered.isEmpty {
                guard let chosen = WebSocketPortForward.protocols.first(where: offered.contains) else {
                    return failure(400, "none of the offered protocols [\(offered.joined(separator: ", "))] is served; this agent speaks \(WebSocketPortForward.protocols.joined(separator: ", "))")
                }
                channelProtocol = chosen
            }
        } else {
            let offered = (request.headers["x-stream-protocol-version"] ?? "").split(separator: ",").map { String($0).trimmingWhitespace() }
            guard offered.contains(Self.portForwardProtocol) else {
                return failure(400, "none of the offered stream protocols [\(offered.joined(separator: ", "))] is served; this agent speaks \(Self.portForwardProtocol)")
            }
        }
        var uid = currentPodUID?(namespace, pod)
        if currentPodUID != nil, uid == nil { return failure(404, "pod \"\(namespace)/\(pod)\" does not run on this node") }
        if parts.count == 4 {
            guard uid == nil || uid == parts[3] else { return failure(404, "pod \"\(namespace)/\(pod)\" with UID \(parts[3]) does not run on this node") }
            uid = parts[3]
        }
        // Any running container of the pod: they share its network namespace.
        let running = runtime.list().first { state in
            let annotations = state.annotations ?? [:]
            return state.status == .running && annotations["io.kubernetes.pod.namespace"] == namespace && annotations["io.kubernetes.pod.name"] == pod
                && (uid == nil || annotations["io.kubernetes.pod.uid"] == uid)
        }
        guard let running, let spec = try? runtime.spec(bundle: running.bundle) else {
            return failure(404, "pod \"\(namespace)/\(pod)\" has no running container on this node")
        }
        // The sandbox's namespace file; no network namespace is the host's (hostNetwork).
        let network = spec.linux?.namespaces?.first { $0.type == "network" }
        if let network, network.path?.isEmpty != false {
            return failure(404, "pod \"\(namespace)/\(pod)\" has no network namespace this agent can enter")
        }
        let namespacePath = network?.path
        let label = "\(pod), uid \(uid ?? running.annotations?["io.kubernetes.pod.uid"] ?? "")"
        let dial: PortForwardSession.Dialer = { [namespacePath] port in await Self.dialLoopback(port, networkNamespace: namespacePath) }
        if upgrade == "websocket" {
            var headers = [
                ("Upgrade", "websocket"), ("Connection", "Upgrade"),
                ("Sec-WebSocket-Accept", WebSocketStream.acceptValue(forKey: request.headers["sec-websocket-key"] ?? "")),
            ]
            if let channelProtocol { headers.append(("Sec-WebSocket-Protocol", channelProtocol)) }
            let base64 = channelProtocol?.contains("base64") == true
            return HTTPResponse(status: 101, headers: headers, body: .upgrade { [idle, ports] connection in
                idle(connection)
                let socket = WebSocketStream(connection: connection, role: .server)
                await WebSocketPortForward(socket: socket, ports: ports, base64: base64, podLabel: label,
                                           stallLimit: .seconds(30), dial: dial).run()
            })
        }
        let headers = [("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1"), ("X-Stream-Protocol-Version", Self.portForwardProtocol)]
        return HTTPResponse(status: 101, headers: headers, body: .upgrade { [idle] connection in
            idle(connection)
            guard let spdy = try? SPDYSession(connection: connection) else {
                connection.close()
                return
            }
            await PortForwardSession(session: spdy, podLabel: label, dial: dial).run()
        })
    }

    /// The port-forward stream protocol (kubelet and kubectl speak only this one).
    static let portForwardProtocol = "portforward.k8s.io"

    /// A connection to `port` on the loopback of a network namespace (nil: the host's).
    static func dialLoopback(_ port: UInt16, networkNamespace: String?) async -> Result<ByteStreamConnection, PortForwardSession.Failure> {
        let connected: Result<CInt, PortForwardSession.Failure> = await DedicatedThread.run {
            var error = [CChar](repeating: 0, count: 512)
            let descriptor: CInt
            if let networkNamespace {
                descriptor = networkNamespace.withCString { iotkube_connect_loopback_in_netns($0, port, 10_000, &error, 512) }
            } else {
                descriptor = iotkube_connect_loopback_in_netns(nil, port, 10_000, &error, 512)
            }
            guard descriptor >= 0 else { return .failure(PortForwardSession.Failure(message: String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))) }
            return .success(descriptor)
        }
        switch connected {
        case .failure(let failure): return .failure(failure)
        case .success(let descriptor):
            do { return .success(try await ByteStreamConnection.wrap(descriptor: descriptor)) } catch {
                return .failure(PortForwardSession.Failure(message: "taking over the connection: \(error)"))
            }
        }
    }
}
