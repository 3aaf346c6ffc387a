import HTTPServing
import KubeModel

/// What `/exec/<namespace>/<pod>/<container>` asks for (the kubelet's streaming endpoint, as
/// kube-apiserver and iotkube-server call it): the command, which streams, a terminal, and the
/// channel protocol to speak over the upgraded WebSocket.
struct RemoteCommandRequest: Sendable {
    var namespace: String
    var pod: String
    var container: String
    var command: [String]
    var stdin: Bool
    var stdout: Bool
    var stderr: Bool
    var tty: Bool
    /// The negotiated `Sec-WebSocket-Protocol` (or `X-Stream-Protocol-Version` over SPDY).
    var channelProtocol: String
    /// SPDY/3.1 streams (older clients, and kube-apiserver toward kubelets) instead of a WebSocket.
    var spdy = false

    /// The channel protocols served, newest first: v5 adds the close signal for stdin.
    static let channelProtocols = ["v5.channel.k8s.io", "v4.channel.k8s.io"]
    /// The stream protocol served over SPDY (v4: the final status as JSON on the error stream).
    static let spdyChannelProtocol = "v4.channel.k8s.io"
    /// At most this many command words and bytes (kube-apiserver bounds the URL, so do we).
    static let maximumCommandBytes = 64 << 10

    struct Refusal: Error, Sendable {
        var status: Int
        var message: String
        init(_ status: Int, _ message: String) {
            self.status = status
            self.message = message
        }
    }

    /// `/exec/...` with a command, or `/attach/...` (the container's own process) without one.
    init(_ request: HTTPRequest) throws(Refusal) {
        let parts = request.path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        let attach = parts.first == "attach"
        guard parts.count == 4 else { throw Refusal(404, "use /\(attach ? "attach" : "exec")/<namespace>/<pod>/<container>") }
        (namespace, pod, container) = (parts[1], parts[2], parts[3])
        func flag(_ name: String) -> Bool { request.query[name] == "1" || request.query[name] == "true" }
        command = request.queryItems.filter { $0.name == "command" }.map(\.value)
        if attach {
            guard command.isEmpty else { throw Refusal(400, "attach takes no command") }
        } else {
            guard !command.isEmpty, !command[0].isEmpty else { throw Refusal(400, "a command is required (command=...)") }
        }
        guard command.reduce(0, { $0 + $1.utf8.count + 1 }) <= Self.maximumCommandBytes else {
            throw Refusal(400, "the command is longer than \(Self.maximumCommandBytes) bytes")
        }
        guard !command.contains(where: { $0.utf8.contains(0) }) else { throw Refusal(400, "the command contains a NUL byte") }
        tty = flag("tty")
        stdin = flag("input") || flag("stdin")
        stdout = flag("output") || flag("stdout")
        // With a terminal, stderr is the terminal (the kubelet refuses both; kubectl never asks).
        stderr = (flag("error") || flag("stderr")) && !tty
        guard stdin || stdout || stderr || tty else { throw Refusal(400, "you must specify at least 1 of stdin, stdout, stderr") }
        (channelProtocol, spdy) = try Self.negotiate(request)
    }

    /// The SPDY stream types the client opens for this request.
    var spdyStreams: Set<String> {
        var types: Set = ["error"]
        if stdin { types.insert("stdin") }
        if stdout { types.insert("stdout") }
        if stderr { types.insert("stderr") }
        if tty { types.insert("resize") }
        return types
    }

    /// The WebSocket handshake's checks (RFC 6455 §4.2.1) and the channel protocol both sides speak.
    static func negotiate(_ request: HTTPRequest) throws(Refusal) -> (String, spdy: Bool) {
        let upgrade = request.headers["upgrade"]?.lowercased() ?? ""
        guard request.headers["connection"]?.lowercased().contains("upgrade") == true else { throw Refusal(400, "the Connection header must include Upgrade") }
        if upgrade == "spdy/3.1" {
            let offered = (request.headers["x-stream-protocol-version"] ?? "").split(separator: ",").map { String($0).trimmingWhitespace() }
            guard offered.contains(spdyChannelProtocol) else {
                throw Refusal(400, "none of the offered stream protocols [\(offered.joined(separator: ", "))] is served over SPDY; this agent speaks \(spdyChannelProtocol)")
            }
            return (spdyChannelProtocol, true)
        }
        guard upgrade == "websocket" else {
            throw Refusal(400, "exec needs a WebSocket (Upgrade: websocket) or SPDY/3.1 (Upgrade: SPDY/3.1) upgrade")
        }
        guard request.headers["sec-websocket-version"] == "13" else { throw Refusal(400, "only WebSocket version 13 is served") }
        guard request.headers["sec-websocket-key"]?.utf8.count == 24 else { throw Refusal(400, "a Sec-WebSocket-Key of 16 base64 bytes is required") }
        let offered = (request.headers["sec-websocket-protocol"] ?? "").split(separator: ",").map { String($0).trimmingWhitespace() }
        guard let chosen = channelProtocols.first(where: offered.contains) else {
            throw Refusal(400, "none of the offered protocols [\(offered.joined(separator: ", "))] is served; this agent speaks \(channelProtocols.joined(separator: ", "))")
        }
        return (chosen, false)
    }
}

