import FoundationEssentials
import HTTPClientCore
import HTTPServing
import KubeClient
import KubeModel
import Logging
import NIOCore
import ServiceLifecycle

/// Keeps one outbound tunnel to the API server the node joined, so the server reaches this
/// agent's endpoint (logs, exec) when the board cannot be dialled: behind NAT, carrier-grade
/// NAT or a firewall that drops inbound connections. The connection is TLS with the node's
/// client certificate to the server its kubeconfig names and trusts; only that server opens
/// streams, and each stream is connected to the endpoint on this machine, where the usual
/// client-certificate check applies. Reconnects with a jittered back-off (1 s doubling to 60 s);
/// a server without tunnels (a real kube-apiserver) is asked again every 10 minutes.
public struct AgentTunnelService: Service {
    /// The client with the node's current credentials (they rotate).
    let client: @Sendable () -> KubeAPIClient?
    /// The agent endpoint's port on this machine.
    let endpointPort: Int
    let logger: Logger

    public init(client: @escaping @Sendable () -> KubeAPIClient?, endpointPort: Int, logger: Logger) {
        self.client = client
        self.endpointPort = endpointPort
        self.logger = logger
    }

    static let firstDelay = Duration.seconds(1)
    static let longestDelay = Duration.seconds(60)
    static let notOfferedDelay = Duration.seconds(600)

    enum Outcome {
        case ended(String)
        case notOffered
        case failed(String)
    }

    public func run() async throws {
        var delay = Self.firstDelay
        var lastProblem = ""
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let began = ContinuousClock.now
            let outcome = await cancelWhenGracefulShutdown { await self.connectOnce() }
            if Task.isShuttingDownGracefully || Task.isCancelled { return }
            var wait = delay
            switch outcome {
            case .ended(let reason):
                // A tunnel that lasted counts as a success; one that ends at once (a second
                // board with this identity, a server that drops it) backs off like a failure.
                let lasted = ContinuousClock.now - began > Self.longestDelay
                if lasted || lastProblem != reason { logger.warning("the tunnel to the API server ended: \(reason) (reconnecting)") }
                lastProblem = lasted ? "" : reason
                if lasted {
                    delay = Self.firstDelay
                    wait = delay
                } else {
                    delay = min(delay * 2, Self.longestDelay)
                }
            case .notOffered:
                if lastProblem != "not offered" {
                    logger.notice("the API server offers no tunnel (not iotkube-server): it must reach this node's port \(endpointPort) directly")
                }
                lastProblem = "not offered"
                wait = Self.notOfferedDelay
            case .failed(let problem):
                if problem != lastProblem { logger.warning("the tunnel to the API server: \(problem) (retrying)") }
                lastProblem = problem
            }
            // Jittered, so boards that lost the server together do not all return at once.
            let jittered = wait * Double.random(in: 0.8...1.2)
            do { try await cancelWhenGracefulShutdown { try await Task.sleep(for: jittered) } } catch { return }
            if case .failed = outcome { delay = min(delay * 2, Self.longestDelay) }
        }
    }

    /// One tunnel: connect, upgrade, serve streams until it ends.
    func connectOnce() async -> Outcome {
        guard let configuration = client()?.configuration else { return .failed("no client credentials yet") }
        let connection: ByteStreamConnection
        let head: UpgradeResponseHead
        let host: String, port: Int
        do {
            (host, port) = try configuration.hostAndPort()
            let check = configuration.serverCertificateCheck
            connection = try await ByteStreamConnection.connect(
                host: host, port: port, tls: try configuration.tlsContext(), serverHostname: HTTPClientConnection.serverName(for: host),
                connectTimeout: .seconds(10),
                configure: { pipeline in
                    if let check { try pipeline.addHandler(ServerCertificateCheck(check: check)) }
                })
        } catch {
            return .failed("connecting to \(configuration.server): \(error)")
        }
        // A server that accepts and never answers is dropped.
        let deadline = connection.closeAfter(.seconds(30))
        let key = Data((0..<16).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
        do {
            let authority = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
            let request = "GET \(TunnelMux.path) HTTP/1.1\r\nHost: \(authority)\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                + "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: \(key)\r\nSec-WebSocket-Protocol: \(TunnelMux.subprotocol)\r\n\r\n"
            try await connection.write(Array(request.utf8))
            head = try await UpgradeResponseHead.read(from: connection, peer: "the API server")
            deadline.cancel()
        } catch {
            deadline.cancel()
            connection.close()
            return .failed("the tunnel handshake with \(configuration.server): \(error)")
        }
        guard head.status == 101 else {
            let body = await head.refusalBody(connection)
            if head.status == 404 { return .notOffered }
            let message = (try? KubeJSON.decode(Status.self, from: body))?.message ?? String(decoding: body.prefix(200), as: UTF8.self)
            return .failed("the API server refused the tunnel (HTTP \(head.status)): \(message)")
        }
        guard head.headers["sec-websocket-accept"] == WebSocketStream.acceptValue(forKey: key),
              head.headers["sec-websocket-protocol"] == TunnelMux.subprotocol else {
            connection.close()
            return .failed("the API server's tunnel answer does not complete the WebSocket handshake")
        }
        logger.info("the tunnel to the API server is up")
        let mux = TunnelMux(socket: WebSocketStream(connection: connection, role: .client, received: head.rest), role: .acceptor)
        let endpointPort = self.endpointPort
        return .ended(await mux.run { stream in
            let local: ByteStreamConnection
            do {
                local = try await ByteStreamConnection.connect(
                    host: "127.0.0.1", port: endpointPort, tls: nil, serverHostname: nil, connectTimeout: .seconds(5))
            } catch {
                stream.reset("the agent could not connect the stream to its endpoint: \(error)")
                return
            }
            do { try await stream.confirmOpened() } catch {
                local.close()
                stream.reset("\(error)")
                return
            }
            await TunnelPump.splice(stream, local)
        })
    }
}
