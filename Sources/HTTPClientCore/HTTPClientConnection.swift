import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// The connection core every HTTP/1.1 client of iotkube shares (the Kubernetes API client, the
/// registry client and httpGet probes): one connection per exchange over SwiftNIO, TLS when a
/// context is given, a connect timeout, an optional idle-read timeout, and request writing that
/// reports why the connection failed instead of "I/O on closed channel".
public struct HTTPClientConnection: Sendable {
    public typealias Channel = NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>

    public let channel: Channel
    /// Whether the idle-read timeout closed the connection.
    public let idle: IdleReadState

    /// Connects to `host:port`. With `tls`, the server name sent and checked is the host, unless
    /// it is an IP literal (NIOSSL checks that against the certificate's IP SANs). `configure` adds handlers between TLS and HTTP. With
    /// `idleReadTimeout`, a server that stops sending closes the connection (see ``idle``). With
    /// `closeOnError`, any error in the pipeline closes it.
    public static func connect(
        host: String, port: Int, tls: NIOSSLContext? = nil, connectTimeout: TimeAmount,
        idleReadTimeout: TimeAmount? = nil, dialer: StreamDialer? = nil, closeOnError: Bool = false,
        configure: (@Sendable (ChannelPipeline.SynchronousOperations) throws -> Void)? = nil
    ) async throws -> HTTPClientConnection {
        let name = Self.serverName(for: host)
        let idle = IdleReadState()
        let initialize: @Sendable (any NIOCore.Channel) -> EventLoopFuture<Channel> = { channel in
            channel.eventLoop.makeCompletedFuture {
                let pipeline = channel.pipeline.syncOperations
                if let tls { try pipeline.addHandler(NIOSSLClientHandler(context: tls, serverHostname: name)) }
                if let idleReadTimeout {
                    try pipeline.addHandler(IdleStateHandler(readTimeout: idleReadTimeout))
                    try pipeline.addHandler(CloseOnIdleHandler(state: idle))
                }
                try configure?(pipeline)
                try pipeline.addHTTPClientHandlers()
                // A kept-alive connection that saw an error (a response nobody asked for) must
                // not look open to the next exchange.
                if closeOnError { try pipeline.addHandler(NIOCloseOnErrorHandler()) }
                return try Channel(wrappingChannelSynchronously: channel)
            }
        }
        let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connectTimeout(connectTimeout)
        let channel: Channel
        if let dialer {
            channel = try await bootstrap.withConnectedSocket(try await dialer(), channelInitializer: initialize)
        } else {
            channel = try await bootstrap.channelOption(.socketOption(.tcp_nodelay), value: 1)
                .connect(host: host, port: port, channelInitializer: initialize)
        }
        return HTTPClientConnection(channel: channel, idle: idle)
    }

    /// The TLS server name for `host`: none for an IP literal (SNI carries names only).
    public static func serverName(for host: String) -> String? { isIPAddress(host) ? nil : host }

    /// An IPv6 literal (it has a colon) or a dotted-quad IPv4 address.
    public static func isIPAddress(_ host: String) -> Bool {
        if host.contains(":") { return true }
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { !$0.isEmpty && $0.count <= 3 && UInt8($0) != nil }
    }

    /// Writes a request. A failed TLS handshake (or a reset) closes the channel under the write;
    /// the inbound stream then ends with the reason (an untrusted certificate, say), which is
    /// thrown instead of the write's error.
    public static func write(
        _ parts: [HTTPClientRequestPart], to outbound: NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>,
        reasonFrom inbound: NIOAsyncChannelInboundStream<HTTPClientResponsePart>
    ) async throws {
        do {
            for part in parts { try await outbound.write(part) }
        } catch {
            for try await _ in inbound {}
            throw error
        }
    }
}
